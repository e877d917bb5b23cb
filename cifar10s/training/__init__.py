"""Training: batched on-device augmentations, training-set defenses, the training loop and presets."""

from cifar10s.training.augment import (
    AUGMENTATIONS,
    RANDAUGMENT_OPS,
    AugmentationPipeline,
    BatchAugmentation,
    Cutout,
    Mixup,
    RandAugment,
    RandomCropFlip,
    build_augmentation,
)
from cifar10s.training.defenses import DEFENSES, build_defense
from cifar10s.training.presets import PRESETS, resolve_preset
from cifar10s.training.config import TrainConfig, TrainResult
from cifar10s.training.evaluation import evaluate
from cifar10s.training.trainer import train

__all__ = [
    "AUGMENTATIONS",
    "RANDAUGMENT_OPS",
    "AugmentationPipeline",
    "BatchAugmentation",
    "Cutout",
    "Mixup",
    "RandAugment",
    "RandomCropFlip",
    "build_augmentation",
    "DEFENSES",
    "build_defense",
    "PRESETS",
    "resolve_preset",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "train",
]
