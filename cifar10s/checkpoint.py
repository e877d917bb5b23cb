"""Checkpoint files: the one place the package writes and reads ``torch.save`` files.

A checkpoint holds tensors and plain containers (dict / list / str / int / float / bool / None)
only, so it is read with ``torch.load(..., weights_only=True)``: bytes from disk are never handed
to the unrestricted unpickler. It is written through :func:`cifar10s.atomic.atomic_file`, so a
run killed at any moment leaves the previous checkpoint or the new one, never a torn one.
Training (:mod:`cifar10s.training.checkpoint`) and EM generation (:mod:`cifar10s.em.checkpoint`)
name their files and check their formats; both save and load through here.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .atomic import atomic_file

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj)`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_file(path) as f:
        torch.save(obj, f)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """Read a checkpoint with ``weights_only=True``: tensors and plain containers, no code runs."""
    return torch.load(path, map_location=map_location, weights_only=True)
