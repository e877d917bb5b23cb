"""A short training run that checks a training set is unlearnable: the paper's effect, in minutes.

Trains a small CNN (three conv-BN-ReLU-pool blocks) with per-image random horizontal flips on the
given training set and returns its accuracy on the clean test set. On the 10,000-image CIFAR-10
subset, 3 CPU epochs give ~0.42-0.47 when trained on clean images and ~0.12-0.16 on the OPS
variant. Used by ``cifar10s verify`` (effect check) and by the tests.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def small_cnn(num_classes: int = 10, width: int = 12) -> nn.Module:
    """conv(3->w)->conv(w->2w)->conv(2w->4w), each BN+ReLU+2x2 max-pool, then GAP + linear."""

    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 4 * width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))


def _nchw(images: np.ndarray, device: torch.device) -> torch.Tensor:
    # .contiguous(): NCHW memory (channels-last inputs crash some small-conv backward passes on CPU)
    return torch.from_numpy(np.array(images)).to(device).permute(0, 3, 1, 2).contiguous().float().div_(255)


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
    """Clean test accuracy of the small CNN after ``epochs`` epochs on the training set."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = small_cnn().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    x, y = _nchw(train_images, dev), torch.as_tensor(np.array(train_labels), device=dev)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=g).split(batch_size):
            idx = idx.to(dev)
            xb = x[idx]
            flip = (torch.rand(len(idx), generator=g) < 0.5).to(dev)  # per-image horizontal flip
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    xt, yt = _nchw(test_images, dev), torch.as_tensor(np.array(test_labels), device=dev)
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(b).argmax(1) for b in xt.split(500)])
    return (pred == yt).float().mean().item()
