"""Training checkpoints: written atomically, read without executing code, resumed only if compatible."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..store import atomic_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "MODEL_NAME",
    "RESULT_NAME",
    "THETA0_NAME",
    "atomic_save",
    "check_resume_compatible",
    "load_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
THETA0_NAME = "theta0.pt"
RESULT_NAME = "result.json"
MODEL_NAME = "model.pt"
#: 2: ``mixup`` and ``randaugment`` name the authors' variants (a format-1 checkpoint trained the
#: crop+flip Mixup and torchvision-style RandAugment under those names, so it is not resumed).
CHECKPOINT_FORMAT = 2


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through :func:`cifar10s.store.atomic_file` (temp file, fsync, rename)."""
    with atomic_file(path) as f:
        torch.save(obj, f)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`~cifar10s.training.trainer.train` (``weights_only=True``:
    tensors and plain containers only, no code is executed)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def check_resume_compatible(saved: dict[str, Any], current: dict[str, Any], free: frozenset[str]) -> None:
    """Refuse to resume a checkpoint written with another configuration (``free`` fields aside)."""
    diffs = {
        k: (saved.get(k), current.get(k))
        for k in set(saved) | set(current)
        if k not in free and saved.get(k) != current.get(k)
    }
    if diffs:
        lines = ", ".join(f"{k}: checkpoint={a!r} now={b!r}" for k, (a, b) in sorted(diffs.items()))
        raise ValueError(
            "the checkpoint in workdir was written with a different training configuration "
            f"({lines}); use a fresh workdir or the original configuration"
        )
