"""Training: batched on-device augmentations, training-set defenses, the training loop and presets.

The names below are imported on first use: importing a submodule (``cifar10s.training.config``,
as every leaderboard child process does) does not pull in torchvision and the augmentations.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "AUGMENTATIONS": ".augment", "RANDAUGMENT_OPS": ".augment", "AugmentationPipeline": ".augment",
    "BatchAugmentation": ".augment", "Cutout": ".augment", "Mixup": ".augment", "RandAugment": ".augment",
    "RandomCropFlip": ".augment", "build_augmentation": ".augment",
    "AuthorsRandAugment": ".augment", "AUTHORS_RANDAUGMENT_OPS": ".augment",
    "DEFENSES": ".defenses", "build_defense": ".defenses",
    "PRESETS": ".presets", "resolve_preset": ".presets",
    "TrainConfig": ".config", "TrainResult": ".config",
    "evaluate": ".evaluation",
    "train": ".trainer",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
