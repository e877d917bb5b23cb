"""Turning uint8 image arrays into model inputs, and clean accuracy of a model on them.

Training, evaluation and the leaderboard's scorer all scale images the same way here (to [0, 1],
no mean/std normalisation, like the authors' ``ToTensor()``-only pipeline).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn

from ..runtime import derive_seed

__all__ = [
    "Evaluator",
    "as_images",
    "as_labels",
    "autocast",
    "evaluate",
    "parameter_distance",
    "predict_logits",
    "subset_indices",
    "to_float_nchw",
]


def as_images(images: Any, name: str) -> torch.Tensor:
    """A uint8 ``(N, H, W, 3)`` tensor view of a numpy array or tensor (clear error otherwise)."""
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a uint8 numpy array or tensor, got {type(images).__name__}")
    if t.dtype != torch.uint8 or t.dim() != 4 or t.shape[-1] != 3:
        raise ValueError(f"{name}: expected uint8 (N, H, W, 3), got {tuple(t.shape)} {t.dtype}")
    return t


def as_labels(labels: Any, n: int, num_classes: int, name: str) -> torch.Tensor:
    """int64 labels, one per image, each in ``[0, num_classes)``."""
    t = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    t = t.to(torch.int64).reshape(-1)
    if t.numel() != n:
        raise ValueError(f"{name}: {t.numel()} labels for {n} images")
    if n and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"{name}: labels must lie in [0, {num_classes})")
    return t


def subset_indices(n: int, k: int | None, tag: str) -> torch.Tensor | None:
    """A fixed (seed-independent) random subset of ``k`` of ``n`` indices, in increasing order."""
    if k is None or k >= n:
        return None
    g = torch.Generator().manual_seed(derive_seed("subset", tag, n, k))
    return torch.randperm(n, generator=g)[:k].sort().values


def to_float_nchw(batch_u8_nhwc: torch.Tensor) -> torch.Tensor:
    return batch_u8_nhwc.permute(0, 3, 1, 2).float().div_(255)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``enabled``; float32 otherwise."""
    if enabled:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def parameter_distance(model: nn.Module, theta0: dict[str, torch.Tensor]) -> float:
    """||theta - theta_0||_F over all ``named_parameters`` (see ``PARAM_DISTANCE_DEFINITION``)."""
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for name, p in model.named_parameters():
            d = p.detach().double() - theta0[name].to(p.device).double()
            total += d.pow(2).sum().cpu()
    return float(total.sqrt())


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: Any,
    device: torch.device | str | None = None,
    batch_size: int = 1000,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> torch.Tensor:
    """float32 logits (on the CPU) of ``model`` in eval mode on uint8 ``(N, 32, 32, 3)`` images.

    The model's train/eval mode is restored. Needs no labels, so it can run where labels must
    not be (the leaderboard's evaluation process).
    """
    imgs = as_images(images, "images")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        for s in range(0, imgs.shape[0], batch_size):
            x = to_float_nchw(imgs[s : s + batch_size].to(device, non_blocking=True))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp):
                out.append(model(x).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 0))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: Any,
    labels: Any,
    device: torch.device | str | None = None,
    batch_size: int = 1000,
    *,
    amp: bool = False,
    channels_last: bool = False,
) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` in eval mode on uint8 ``(N, 32, 32, 3)`` images.

    ``amp`` (bf16) is off by default so that scores are computed in float32.
    """
    imgs = as_images(images, "images")
    labs = as_labels(labels, imgs.shape[0], 1 << 62, "labels")
    n = imgs.shape[0]
    if not n:
        return float("nan")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        for s in range(0, n, batch_size):
            x = to_float_nchw(imgs[s : s + batch_size].to(device, non_blocking=True))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = labs[s : s + batch_size].to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model(x)
            correct += (logits.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    return float(correct.item()) / n


class Evaluator:
    """Clean-accuracy evaluator owned by the caller: ``Evaluator(images, labels)(model) -> float``.

    The test images are copied to the model's device once (as uint8) on first use.
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        *,
        batch_size: int = 1000,
        amp: bool = False,
        subset: int | None = None,
    ) -> None:
        imgs = as_images(images, "test_images")
        labs = as_labels(labels, imgs.shape[0], 1 << 62, "test_labels")
        idx = subset_indices(imgs.shape[0], subset, "eval")
        if idx is not None:
            imgs, labs = imgs[idx], labs[idx]
        self.images, self.labels = imgs, labs
        self.batch_size = batch_size
        self.amp = amp
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __call__(self, model: nn.Module) -> float:
        device = next(model.parameters()).device
        key = str(device)
        if key not in self._cache:
            self._cache = {key: (self.images.to(device), self.labels.to(device))}
        imgs, labs = self._cache[key]
        return evaluate(model, imgs, labs, device, self.batch_size, amp=self.amp)
