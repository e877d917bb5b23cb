"""Batched, on-device training augmentations with per-image randomness.

Every augmentation here works on a whole batch that already lives on the
training device (CPU or CUDA):

* input ``x``: float tensor ``(B, 3, H, W)`` with values in ``[0, 1]``
  (uint8 input is rejected with a ``TypeError``; convert with ``x.float() / 255``);
* input ``y``: int64 labels ``(B,)`` (soft targets ``(B, num_classes)`` are also accepted);
* output: ``(x_aug, targets)`` where ``x_aug`` has the shape, dtype and device of
  ``x`` and ``targets`` is a float32 ``(B, num_classes)`` soft-label tensor (one-hot
  for label-preserving operations, a convex mix of two one-hot rows for Mixup).

Random parameters are drawn independently for every image (crop offset, flip,
Cutout centre, RandAugment operations, levels and signs, Mixup partner), unlike
``torchvision.transforms.v2`` transforms applied to a batch, which share one draw
across the batch.  All randomness comes from the explicit ``torch.Generator``
argument: the parameters are drawn on ``generator.device`` and moved to
``x.device``, so a CPU generator may drive CUDA data and vice versa.  For a fixed
generator state, device and input, the output is deterministic.  (A CPU and a CUDA
generator with the same seed produce different streams.)

The bare method names are Table 4 of Wu et al., "One-Pixel Shortcut: on the Learning
Preference of Deep Neural Networks", ICLR 2023, as the authors' released code runs them;
the other variants have their own names.  See ``docs/augmentations.md`` for every choice
and its source.

* ``standard``: random crop with 4-pixel zero padding + horizontal flip (p=0.5).
* ``cutout``: standard, then one 16x16 zero hole per image (DeVries & Taylor, 2017).
* ``mixup``: the authors' Mixup: Mixup with lambda ~ Beta(1, 1), one lambda per batch,
  on the batch as it is (no crop or flip).
* ``standard+mixup``: standard, then the same Mixup (the recipe of Zhang et al.'s
  CIFAR-10 code).
* ``randaugment``: standard, then the authors' RandAugment
  (:class:`~cifar10s.training.augment.authors.AuthorsRandAugment`: 2 of 15 ops per
  image, each with p=0.5 at a level drawn from 1..9 of 10, grey fill).
* ``randaugment-tv``: standard, then RandAugment with the op list and magnitudes of
  ``torchvision.transforms.RandAugment`` (N=2 ops, magnitude 9 of 31 bins;
  Cubuk et al., NeurIPS 2020).

Names can be joined with ``+`` (e.g. ``"randaugment+cutout"``, ``"cutout+mixup"``);
the stages then run in the fixed order crop/flip -> RandAugment -> Cutout -> Mixup,
and crop/flip is part of every name except ``none`` and a lone ``mixup``.

This module holds the crop/flip, Cutout and Mixup stages and the pipeline that chains the
stages; the two RandAugments have modules of their own (:mod:`.authors`, the authors'
variant, whose fifteen operations reproduce Pillow's integer maths in
:mod:`.authors_ops`; :mod:`.randaugment_tv`, torchvision's), and the random
draws every stage shares are :mod:`.draws`.  Every name is importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import Tensor

from .authors import AUTHORS_RANDAUGMENT_OPS, AuthorsRandAugment
from .draws import _check_generator, _check_images, _rand, _randint, _soft_targets
from .randaugment_tv import RANDAUGMENT_OPS, RandAugment, randaugment_magnitudes

__all__ = [
    "AUGMENTATIONS",
    "AUTHORS_RANDAUGMENT_OPS",
    "RANDAUGMENT_OPS",
    "AugmentationPipeline",
    "AuthorsRandAugment",
    "BatchAugmentation",
    "Cutout",
    "Mixup",
    "RandAugment",
    "RandomCropFlip",
    "build_augmentation",
    "randaugment_magnitudes",
]

#: Named augmentations for :func:`build_augmentation`.  The bare Table 4 names
#: (``mixup``, ``cutout``, ``randaugment``) are the authors' variants; ``standard+mixup``
#: and ``randaugment-tv`` are the other variants.  Other ``+``-joins are accepted too.
AUGMENTATIONS: tuple[str, ...] = (
    "none", "standard", "mixup", "standard+mixup", "cutout", "randaugment", "randaugment-tv",
)


@runtime_checkable
class BatchAugmentation(Protocol):
    """A batched augmentation: ``(x, y, generator) -> (x_aug, soft_targets)``.

    ``x`` is ``(B, 3, H, W)`` float in ``[0, 1]`` on the device, ``y`` is ``(B,)``
    int64; the result is ``(x_aug, targets)`` with ``targets`` float ``(B, num_classes)``.
    """

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


# ---------------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CropFlipParams:
    top: Tensor  # (B,) int64, row offset into the padded image, in [0, 2 * padding]
    left: Tensor  # (B,) int64, column offset into the padded image
    flip: Tensor  # (B,) bool, horizontal flip applied after the crop


class RandomCropFlip:
    """Per-image random crop with zero padding followed by a random horizontal flip.

    Equivalent, image by image, to ``RandomCrop(H, padding=padding)`` (constant zero
    fill) followed by ``RandomHorizontalFlip(flip_p)``: the crop offset is uniform in
    ``[0, 2 * padding]`` on each axis, as torchvision draws it.  Implemented as one
    ``gather`` from the zero-padded batch (crop and flip in a single index map).
    """

    def __init__(self, padding: int = 4, flip_p: float = 0.5) -> None:
        if padding < 0:
            raise ValueError("padding must be >= 0")
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError("flip_p must be in [0, 1]")
        self.padding = int(padding)
        self.flip_p = float(flip_p)

    def get_params(self, x: Tensor, generator: torch.Generator) -> CropFlipParams:
        b = x.shape[0]
        span = 2 * self.padding + 1
        top = _randint(span, (b,), generator, x.device)
        left = _randint(span, (b,), generator, x.device)
        flip = _rand((b,), generator, x.device) < self.flip_p
        return CropFlipParams(top=top, left=left, flip=flip)

    def apply(self, x: Tensor, targets: Tensor, params: CropFlipParams) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        p = self.padding
        padded = nnf.pad(x, (p, p, p, p)) if p > 0 else x
        pw = w + 2 * p
        rows = params.top[:, None] + torch.arange(h, device=x.device)  # (B, H)
        cols_fwd = torch.arange(w, device=x.device)
        cols = params.left[:, None] + torch.where(params.flip[:, None], (w - 1) - cols_fwd, cols_fwd)  # (B, W)
        index = (rows[:, :, None] * pw + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
        out = padded.reshape(b, c, -1).gather(2, index).reshape(b, c, h, w)
        return out, targets

    def __call__(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.apply(x, targets, self.get_params(x, generator))

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip_p={self.flip_p})"


@dataclass(frozen=True)
class CutoutParams:
    center_y: Tensor  # (B, n_holes) int64 in [0, H)
    center_x: Tensor  # (B, n_holes) int64 in [0, W)


class Cutout:
    """Cutout (DeVries & Taylor, 2017, arXiv:1708.04552): zero square holes.

    For each image and hole a centre ``(cy, cx)`` is drawn uniformly over all pixels;
    rows ``[cy - length // 2, cy - length // 2 + length)`` and the same columns are set
    to ``fill`` after clipping to the image, so a hole is exactly ``length x length``
    unless it crosses a border (for even ``length`` this equals the reference
    implementation's ``[c - length/2, c + length/2)``).  The paper's CIFAR-10 setting is
    one 16x16 hole applied after crop+flip; with inputs in ``[0, 1]`` the fill 0 is black.
    """

    def __init__(self, length: int = 16, n_holes: int = 1, fill: float = 0.0) -> None:
        if length <= 0 or n_holes <= 0:
            raise ValueError("length and n_holes must be positive")
        self.length = int(length)
        self.n_holes = int(n_holes)
        self.fill = float(fill)

    def get_params(self, x: Tensor, generator: torch.Generator) -> CutoutParams:
        b, _, h, w = x.shape
        cy = _randint(h, (b, self.n_holes), generator, x.device)
        cx = _randint(w, (b, self.n_holes), generator, x.device)
        return CutoutParams(center_y=cy, center_x=cx)

    def hole_mask(self, x: Tensor, params: CutoutParams) -> Tensor:
        """Bool mask ``(B, H, W)``: True where the image is cut out."""
        _, _, h, w = x.shape
        y1 = params.center_y - self.length // 2  # (B, K), may be negative: clipping is implicit
        x1 = params.center_x - self.length // 2
        r = torch.arange(h, device=x.device)
        c = torch.arange(w, device=x.device)
        in_r = (r >= y1[..., None]) & (r < (y1 + self.length)[..., None])  # (B, K, H)
        in_c = (c >= x1[..., None]) & (c < (x1 + self.length)[..., None])  # (B, K, W)
        return (in_r[..., :, None] & in_c[..., None, :]).any(dim=1)

    def apply(self, x: Tensor, targets: Tensor, params: CutoutParams) -> tuple[Tensor, Tensor]:
        mask = self.hole_mask(x, params)
        return x.masked_fill(mask[:, None], self.fill), targets

    def __call__(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.apply(x, targets, self.get_params(x, generator))

    def __repr__(self) -> str:
        return f"Cutout(length={self.length}, n_holes={self.n_holes}, fill={self.fill})"


@dataclass(frozen=True)
class MixupParams:
    lam: Tensor  # (B,) float32: weight of the image itself (all equal unless per-sample)
    index: Tensor  # (B,) int64: partner of each image (a random permutation of the batch)


class Mixup:
    """Mixup (Zhang, Cisse, Dauphin, Lopez-Paz, ICLR 2018).

    ``x_i <- lam * x_i + (1 - lam) * x_perm(i)`` and the same for the soft targets,
    with ``perm`` a uniformly random permutation of the batch and ``lam ~ Beta(alpha,
    alpha)``.  As in the reference CIFAR-10 implementation, one ``lam`` is drawn per
    batch (``per_sample_lambda=True`` draws one per image instead); ``alpha <= 0``
    disables mixing (``lam = 1``).  The Beta variate is drawn by NumPy from a seed taken
    from the explicit torch generator, so it is deterministic too; with a GPU generator and
    ``alpha = 1`` (Beta(1, 1) = Uniform(0, 1)) it is drawn on the device instead, which saves a
    host synchronisation per batch.
    """

    def __init__(self, alpha: float = 1.0, per_sample_lambda: bool = False) -> None:
        self.alpha = float(alpha)
        self.per_sample_lambda = bool(per_sample_lambda)

    def get_params(self, x: Tensor, generator: torch.Generator) -> MixupParams:
        b = x.shape[0]
        n = b if self.per_sample_lambda else 1
        if generator.device.type != "cpu" and self.alpha == 1.0:
            # Beta(1, 1) is Uniform(0, 1): drawn on the device, no host round trip per batch
            # (the CPU keeps the NumPy draw below, so CPU results are unchanged)
            index = torch.randperm(b, generator=generator, device=generator.device).to(x.device)
            lam = torch.rand(n, generator=generator, device=generator.device).expand(b).contiguous().to(x.device)
            return MixupParams(lam=lam, index=index)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        index = torch.randperm(b, generator=generator, device=generator.device).to(x.device)
        if self.alpha > 0:
            lam_np = np.random.default_rng(seed).beta(self.alpha, self.alpha, size=n)
        else:
            lam_np = np.ones(n)
        lam = torch.as_tensor(lam_np, dtype=torch.float32).expand(b).contiguous().to(x.device)
        return MixupParams(lam=lam, index=index)

    def apply(self, x: Tensor, targets: Tensor, params: MixupParams) -> tuple[Tensor, Tensor]:
        lam_x = params.lam.to(x.dtype).view(-1, 1, 1, 1)
        lam_t = params.lam.to(targets.dtype).view(-1, 1)
        x_mix = lam_x * x + (1 - lam_x) * x[params.index]
        t_mix = lam_t * targets + (1 - lam_t) * targets[params.index]
        return x_mix, t_mix

    def __call__(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.apply(x, targets, self.get_params(x, generator))

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha}, per_sample_lambda={self.per_sample_lambda})"


# ---------------------------------------------------------------------------------
# pipeline and factory
# ---------------------------------------------------------------------------------


class AugmentationPipeline:
    """Runs stages in order; implements :class:`BatchAugmentation`.

    ``stages`` are objects with ``__call__(x, soft_targets, generator) -> (x, soft_targets)``
    (e.g. :class:`RandomCropFlip`, :class:`AuthorsRandAugment`, :class:`RandAugment`,
    :class:`Cutout`, :class:`Mixup`).
    With no stages the input batch is returned as is (not copied) with one-hot targets.
    """

    def __init__(self, stages: Sequence[object] = (), num_classes: int = 10, name: str = "") -> None:
        if num_classes <= 0:
            raise ValueError("num_classes must be positive")
        self.stages = tuple(stages)
        self.num_classes = int(num_classes)
        self.name = name

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        _check_images(x)
        _check_generator(generator)
        targets = _soft_targets(y, self.num_classes, x.shape[0], x.device)
        for stage in self.stages:
            x, targets = stage(x, targets, generator)  # type: ignore[operator]
        return x, targets

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.stages)
        return f"AugmentationPipeline(name={self.name!r}, num_classes={self.num_classes}, stages=[{inner}])"


#: Tokens of a ``+``-joined name, in the order their stages run.
_STAGE_ORDER = ("standard", "randaugment", "randaugment-tv", "cutout", "mixup")


def _canonical_name(chosen: set[str]) -> str:
    """One name per stage list: crop/flip is implied by every token but ``mixup``."""
    parts = [t for t in _STAGE_ORDER[1:] if t in chosen]
    if parts == ["mixup"]:
        return "standard+mixup" if "standard" in chosen else "mixup"
    return "+".join(parts) or "standard"


def build_augmentation(
    name: str,
    num_classes: int = 10,
    *,
    padding: int = 4,
    cutout_length: int = 16,
    mixup_alpha: float = 1.0,
    randaugment_num_ops: int = 2,
    randaugment_magnitude: int = 9,
) -> AugmentationPipeline:
    """Build a batched augmentation by name (case-insensitive).

    * ``"none"``: identity;
    * ``"standard"``: crop with ``padding``-pixel zero padding + horizontal flip;
    * ``"cutout"``, ``"randaugment"`` (the authors' RandAugment), ``"randaugment-tv"``
      (torchvision's): crop+flip first, then the stage;
    * ``"mixup"``: the authors' Mixup, on the batch as it is, without crop+flip;
    * ``"standard+mixup"``: crop+flip, then Mixup;
    * any other ``+``-join of ``standard``, ``randaugment`` or ``randaugment-tv`` (not
      both), ``cutout`` and ``mixup``, e.g. ``"randaugment+cutout"``.  Stages run in the
      order crop/flip -> RandAugment -> Cutout -> Mixup whatever order they are written in,
      and crop/flip is included whenever a token other than ``mixup`` is present.

    ``randaugment_num_ops``/``randaugment_magnitude`` set ``randaugment-tv`` only; the
    authors' RandAugment has the released code's fixed settings.  The pipeline's ``name``
    is the canonical spelling.  Unknown names raise ``ValueError`` listing the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"augmentation name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    tokens = [t.strip() for t in key.split("+")]
    valid = ", ".join(repr(n) for n in AUGMENTATIONS)
    if key == "none":
        return AugmentationPipeline((), num_classes, name="none")
    chosen = set(tokens)
    if (
        any(t not in _STAGE_ORDER for t in tokens)
        or len(chosen) != len(tokens)
        or {"randaugment", "randaugment-tv"} <= chosen
    ):
        raise ValueError(
            f"unknown augmentation {name!r}; valid names: {valid}, or a '+'-join of 'standard', "
            "'randaugment' or 'randaugment-tv', 'cutout', 'mixup' without repeats "
            "(e.g. 'randaugment+cutout')"
        )
    stages: list[object] = []
    if chosen != {"mixup"}:
        stages.append(RandomCropFlip(padding=padding))
    if "randaugment" in chosen:
        stages.append(AuthorsRandAugment())
    if "randaugment-tv" in chosen:
        stages.append(RandAugment(num_ops=randaugment_num_ops, magnitude=randaugment_magnitude))
    if "cutout" in chosen:
        stages.append(Cutout(length=cutout_length))
    if "mixup" in chosen:
        stages.append(Mixup(alpha=mixup_alpha))
    return AugmentationPipeline(stages, num_classes, name=_canonical_name(chosen))
