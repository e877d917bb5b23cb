"""The training set as the loop sees it: subset, defense, on the device; augmentation split for PGD."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .config import TrainConfig
from .evaluation import subset_indices

__all__ = ["prepare_training_data", "split_for_attack"]


def _apply_defense(name: str, kwargs: dict[str, Any] | None, images: torch.Tensor) -> torch.Tensor:
    """Apply ``cifar10s.training.defenses.build_defense(name, **kwargs)`` once to the uint8 set."""
    from .defenses import build_defense

    defense = build_defense(name, **(kwargs or {}))
    out = defense(images.contiguous(), channels_last=True)
    out = torch.from_numpy(np.ascontiguousarray(out)) if isinstance(out, np.ndarray) else out
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or out.shape != images.shape:
        raise ValueError(f"defense {name!r} must return uint8 images of shape {tuple(images.shape)}")
    return out


def prepare_training_data(
    images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training subset with its defense applied, as one (N, 3, H, W) uint8 tensor on ``device``.

    Every run, with or without submission hooks, sees its data through here.
    """
    idx = subset_indices(images.shape[0], config.train_subset, "train")
    if idx is not None:
        images, labels = images[idx], labels[idx]
    if config.defense:
        images = _apply_defense(config.defense, config.defense_kwargs, images.cpu())
    if int(images.shape[0]) == 0:
        raise ValueError("empty training set")
    return images.to(device).permute(0, 3, 1, 2).contiguous(), labels.to(device)


def _is_mixing_stage(stage: Any) -> bool:
    return type(stage).__name__ == "Mixup" or bool(getattr(stage, "mixes_labels", False))


def split_for_attack(aug: Any, name: str) -> tuple[Any, list[Any]]:
    """Split an augmentation into (label-preserving part, mixing stages) for adversarial training.

    The authors attack the augmented batch *before* Mixup and mix the adversarial images
    (augmentation/Mixup.py: ``X = X + delta`` then ``mixup_data``). For a
    :class:`~cifar10s.training.augment.AugmentationPipeline` the stages up to the first mixing
    stage run first, then the attack, then the remaining stages. A custom callable that declares
    ``mixes_labels = True`` is run entirely after the attack; otherwise entirely before it.
    """
    stages = getattr(aug, "stages", None)
    if stages is not None and any(_is_mixing_stage(s) for s in stages):
        from .augment import AugmentationPipeline

        k = next(i for i, s in enumerate(stages) if _is_mixing_stage(s))
        pre = AugmentationPipeline(stages[:k], getattr(aug, "num_classes", 10), name=f"{name}[pre-mix]")
        return pre, list(stages[k:])
    if bool(getattr(aug, "mixes_labels", False)):
        return None, [aug]
    return aug, []
