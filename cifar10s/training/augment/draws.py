"""Random draws and input checks shared by every batched augmentation stage.

Every per-image parameter is drawn on the explicit generator's device and then moved to the
data's device, so a CPU generator may drive CUDA data and vice versa, and for a fixed generator
state the draws do not depend on where the data lives.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as nnf
from torch import Tensor

__all__: list[str] = []  # helpers of the augmentation modules, not a public API


def _check_generator(generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"an explicit torch.Generator is required, got {type(generator).__name__}"
        )


def _randint(high: int, size: Sequence[int], generator: torch.Generator, device: torch.device) -> Tensor:
    """Integers uniform in ``[0, high)`` drawn on ``generator.device``, moved to ``device``."""
    out = torch.randint(0, high, tuple(size), generator=generator, device=generator.device)
    return out.to(device)


def _rand(size: Sequence[int], generator: torch.Generator, device: torch.device) -> Tensor:
    out = torch.rand(tuple(size), generator=generator, device=generator.device)
    return out.to(device)


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point tensor with values in [0, 1], got dtype {x.dtype} "
            "(convert uint8 images with x.float() / 255)"
        )


def _soft_targets(y: Tensor, num_classes: int, batch: int, device: torch.device) -> Tensor:
    if y.ndim == 1:
        if y.shape[0] != batch:
            raise ValueError(f"y has {y.shape[0]} labels for a batch of {batch}")
        if y.is_floating_point():
            raise TypeError("integer class labels (int64) expected for 1-D y")
        return nnf.one_hot(y.to(device=device, dtype=torch.long), num_classes).to(torch.float32)
    if y.ndim == 2 and y.shape == (batch, num_classes) and y.is_floating_point():
        return y.to(device=device, dtype=torch.float32)
    raise ValueError(
        f"y must be (B,) int64 labels or (B, {num_classes}) float soft targets, "
        f"got shape {tuple(y.shape)} dtype {y.dtype}"
    )
