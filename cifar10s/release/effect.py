"""A short training run that checks a training set is unlearnable: the paper's effect, in minutes.

Trains a small CNN (three conv-BN-ReLU-pool blocks) with per-image random horizontal flips on the
given training set, through the package's one training loop (:func:`cifar10s.training.trainer.train`),
and returns its accuracy on the clean test set. On the 10,000-image CIFAR-10 subset, 3 CPU epochs
gave 0.41 / 0.29 / 0.41 when trained on clean images and 0.20 / 0.15 / 0.20 on the OPS variant
(seeds 0 / 1 / 2). Used by ``cifar10s verify`` (effect check) and by the tests.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..runtime import derive_seed


def small_cnn(num_classes: int = 10, width: int = 12) -> nn.Module:
    """conv(3->w)->conv(w->2w)->conv(2w->4w), each BN+ReLU+2x2 max-pool, then GAP + linear."""

    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 4 * width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))


def train_and_test(
    train_images: np.ndarray,
    train_labels: np.ndarray | list[int],
    test_images: np.ndarray,
    test_labels: np.ndarray | list[int],
    *,
    epochs: int = 3,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 0.05,
    device: str | torch.device | None = None,
) -> float:
    """Clean test accuracy of the small CNN after ``epochs`` epochs on the training set.

    SGD (momentum 0.9, weight decay 5e-4) at a constant ``lr``, flips only (no crop), float32,
    evaluated once after the last epoch.
    """
    from ..training.augment import AugmentationPipeline, RandomCropFlip
    from ..training.config import TrainConfig
    from ..training.trainer import train

    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9, weight_decay=5e-4,
                         schedule="constant", augmentation="none", seed=seed, eval_every=max(epochs, 1))
    # the flips are passed as the augmentation object ("none" names no built-in one for them)
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(derive_seed(seed, "effect-init"))
        model = small_cnn()
    flips = AugmentationPipeline((RandomCropFlip(padding=0),), num_classes=10, name="flip")
    result = train(model, train_images, train_labels, test_images, test_labels, config, device=device,
                   progress=False, augmentation=flips)
    return float(result.final_test_acc if result.final_test_acc is not None else float("nan"))
