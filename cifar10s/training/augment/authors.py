"""RandAugment as the authors of the OPS paper ran it for Table 4, batched on the device.

Wu et al. (ICLR 2023) cite RandAugment without parameters; the authors' released code runs a
variant that differs from ``torchvision.transforms.RandAugment`` (see ``docs/augmentations.md``):

* for every image, two operations are drawn independently and uniformly from 15
  (:data:`AUTHORS_RANDAUGMENT_OPS`, Invert and Cutout included, no Identity);
* each drawn operation gets its own magnitude level, uniform in 1..9, indexing a 10-entry
  range per operation (:func:`authors_randaugment_ranges`; level 0 is never drawn);
* each drawn operation is applied with probability 0.5 (so about a quarter of the images
  come out unchanged);
* shear, translation and the four enhancement operations take a random sign; rotation is
  always counter-clockwise;
* uncovered areas are filled with grey 128, the Cutout operation fills its square with
  (125, 122, 113); shears are bicubic, translation and rotation nearest-neighbour.

The operations themselves, each reproducing Pillow's integer arithmetic, are
:mod:`.authors_ops`; this module draws them. All per-image parameters are tensors;
images are grouped by operation with one host sync per round, and each group is transformed
in one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .authors_ops import (
    _NUM_LEVELS,
    _OPS,
    AUTHORS_RANDAUGMENT_OPS,
    CUTOUT_OP_FILL,
    GREY_FILL,
    SIGNED_OPS,
    apply_authors_op,
    authors_randaugment_ranges,
)

__all__ = [
    "AUTHORS_RANDAUGMENT_OPS",
    "CUTOUT_OP_FILL",
    "GREY_FILL",
    "SIGNED_OPS",
    "AuthorsRandAugment",
    "AuthorsRandAugmentParams",
    "apply_authors_op",
    "authors_randaugment_ranges",
]


# ---------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorsRandAugmentParams:
    """Per-image draws, all ``(B, num_ops)`` tensors on the data's device."""

    op_index: Tensor  # int64 into AUTHORS_RANDAUGMENT_OPS
    level: Tensor  # int64 magnitude level in [min_level, max_level]
    apply: Tensor  # bool: the drawn operation is applied (probability p)
    sign: Tensor  # float64 +1 / -1, used by SIGNED_OPS
    center_y: Tensor  # int64 in [0, H): Cutout operation's centre
    center_x: Tensor  # int64 in [0, W)

    def op_names(self) -> list[list[str]]:
        return [[AUTHORS_RANDAUGMENT_OPS[int(i)] for i in row] for row in self.op_index.cpu()]

    def magnitudes(self) -> Tensor:
        """The signed magnitude value of every draw, float64 ``(B, num_ops)``."""
        ranges = authors_randaugment_ranges()
        table = torch.stack([ranges[op] for op in AUTHORS_RANDAUGMENT_OPS]).to(self.level.device)
        signed = torch.tensor([op in SIGNED_OPS for op in AUTHORS_RANDAUGMENT_OPS], device=self.level.device)
        value = table[self.op_index, self.level]
        return torch.where(signed[self.op_index], value * self.sign, value)


class AuthorsRandAugment:
    """The authors' RandAugment with independent draws per image (see the module docstring).

    Defaults are the released code's: ``num_ops=2`` operations per image, each applied with
    probability ``p=0.5`` at a level uniform in ``min_level..max_level = 1..9`` of 10.
    Input float ``(B, 3, H, W)`` in [0, 1] is quantised to 0..255 (exact for images that come
    from uint8 data, e.g. CIFAR after crop+flip); the output is a multiple of 1/255.
    """

    def __init__(self, num_ops: int = 2, p: float = 0.5, min_level: int = 1, max_level: int = 9) -> None:
        if num_ops < 0:
            raise ValueError("num_ops must be >= 0")
        if not 0.0 <= p <= 1.0:
            raise ValueError("p must be in [0, 1]")
        if not 0 <= min_level <= max_level < _NUM_LEVELS:
            raise ValueError(f"levels must satisfy 0 <= min_level <= max_level <= {_NUM_LEVELS - 1}")
        self.num_ops = int(num_ops)
        self.p = float(p)
        self.min_level = int(min_level)
        self.max_level = int(max_level)

    def get_params(self, x: Tensor, generator: torch.Generator) -> AuthorsRandAugmentParams:
        b, _, h, w = x.shape
        shape = (b, self.num_ops)
        g, gd = generator, generator.device

        def draw(t: Tensor) -> Tensor:
            return t.to(x.device)

        op_index = draw(torch.randint(0, len(AUTHORS_RANDAUGMENT_OPS), shape, generator=g, device=gd))
        level = draw(torch.randint(self.min_level, self.max_level + 1, shape, generator=g, device=gd))
        apply = draw(torch.rand(shape, generator=g, device=gd) < self.p)
        sign = draw(torch.randint(0, 2, shape, generator=g, device=gd)).to(torch.float64) * 2 - 1
        center_y = draw(torch.randint(0, h, shape, generator=g, device=gd))
        center_x = draw(torch.randint(0, w, shape, generator=g, device=gd))
        return AuthorsRandAugmentParams(op_index, level, apply, sign, center_y, center_x)

    def apply(self, x: Tensor, targets: Tensor, params: AuthorsRandAugmentParams) -> tuple[Tensor, Tensor]:
        b = x.shape[0]
        if b == 0 or self.num_ops == 0:
            return x, targets
        v = x.detach().to(torch.float32).mul(255.0).round_().clamp_(0.0, 255.0)
        magnitudes = params.magnitudes()
        n_ops = len(AUTHORS_RANDAUGMENT_OPS)
        for k in range(self.num_ops):
            # group the images by operation; "not applied" is bucket n_ops and is skipped
            bucket = torch.where(params.apply[:, k], params.op_index[:, k], torch.full_like(params.op_index[:, k], n_ops))
            order = torch.sort(bucket, stable=True).indices
            counts = torch.bincount(bucket, minlength=n_ops + 1).tolist()  # the one host sync
            start = 0
            for op_i, count in enumerate(counts[:n_ops]):
                if count:
                    idx = order[start : start + count]
                    v[idx] = _OPS[AUTHORS_RANDAUGMENT_OPS[op_i]](
                        v[idx], m=magnitudes[idx, k], center_y=params.center_y[idx, k], center_x=params.center_x[idx, k]
                    )
                start += count
        return v.div_(255.0).to(x.dtype), targets

    def __call__(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.apply(x, targets, self.get_params(x, generator))

    def __repr__(self) -> str:
        return (
            f"AuthorsRandAugment(num_ops={self.num_ops}, p={self.p}, "
            f"levels={self.min_level}..{self.max_level} of {_NUM_LEVELS})"
        )

