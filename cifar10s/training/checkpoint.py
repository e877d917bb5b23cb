"""Training checkpoints: their file names and format, and whether one may be resumed.

Writing and reading the files is :mod:`cifar10s.checkpoint`'s (atomic, ``weights_only``); the
names are re-exported here for the loop and for older imports.
"""

from __future__ import annotations

from typing import Any

from ..checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "MODEL_NAME",
    "RESULT_NAME",
    "THETA0_NAME",
    "atomic_save",
    "check_resume_compatible",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
THETA0_NAME = "theta0.pt"
RESULT_NAME = "result.json"
MODEL_NAME = "model.pt"
#: 2: ``mixup`` and ``randaugment`` name the authors' variants (a format-1 checkpoint trained the
#: crop+flip Mixup and torchvision-style RandAugment under those names, so it is not resumed).
CHECKPOINT_FORMAT = 2


#: The former name of :func:`cifar10s.checkpoint.save_checkpoint` (same arguments: object, path).
atomic_save = save_checkpoint


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
