"""RandAugment with the op list and magnitudes of ``torchvision.transforms.RandAugment``: the ``randaugment-tv`` stage.

Cubuk, Zoph, Shlens, Le, NeurIPS 2020: N=2 ops per image, magnitude 9 of 31 bins, each op
applied through ``torchvision.transforms.functional`` with torchvision's parameterisation, but
with independent draws per image. The authors' variant (the bare ``randaugment``) is
:mod:`.authors`; the pipeline that chains the stages is :mod:`.pipeline`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from .draws import _randint

__all__ = ["RANDAUGMENT_OPS", "RandAugment", "RandAugmentParams", "randaugment_magnitudes"]

#: Operation list of the torchvision-style RandAugment (``randaugment-tv``), in the order
#: of ``torchvision.transforms.RandAugment`` (the 14 operations of Cubuk et al., 2020,
#: Section 3).  The authors' list is :data:`AUTHORS_RANDAUGMENT_OPS`.
RANDAUGMENT_OPS: tuple[str, ...] = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
)


def randaugment_magnitudes(num_bins: int, height: int, width: int) -> dict[str, tuple[Tensor, bool]]:
    """RandAugment magnitude table ``{op: (magnitudes per bin, signed)}``.

    The values are those of ``torchvision.transforms.RandAugment`` (0.29): shear up to
    0.3, translation up to 150/331 of the image size, rotation up to 30 degrees,
    enhancement factors 1 +/- up to 0.9, posterize 8..4 bits, solarize threshold 255..0
    (on the 0..255 scale).  ``tests/test_augment.py`` checks this against torchvision.
    """
    lin = lambda hi: torch.linspace(0.0, hi, num_bins)  # noqa: E731
    zero = torch.tensor(0.0)
    return {
        "Identity": (zero, False),
        "ShearX": (lin(0.3), True),
        "ShearY": (lin(0.3), True),
        "TranslateX": (lin(150.0 / 331.0 * width), True),
        "TranslateY": (lin(150.0 / 331.0 * height), True),
        "Rotate": (lin(30.0), True),
        "Brightness": (lin(0.9), True),
        "Color": (lin(0.9), True),
        "Contrast": (lin(0.9), True),
        "Sharpness": (lin(0.9), True),
        "Posterize": (8 - (torch.arange(num_bins) / ((num_bins - 1) / 4)).round().int(), False),
        "Solarize": (torch.linspace(255.0, 0.0, num_bins), False),
        "AutoContrast": (zero, False),
        "Equalize": (zero, False),
    }


def _apply_randaugment_op(
    img: Tensor, op: str, magnitude: float, interpolation: InterpolationMode, fill: Optional[list[float]]
) -> Tensor:
    """One RandAugment op on a uint8 batch ``(N, 3, H, W)`` with one shared magnitude.

    Uses ``torchvision.transforms.functional`` with the parameterisation of
    ``torchvision.transforms.RandAugment`` (shear given as ``atan`` in degrees around
    the top-left corner, integer translations, enhancement factor ``1 + magnitude``).
    """
    if op == "Identity":
        return img
    if op == "ShearX":
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[math.degrees(math.atan(magnitude)), 0.0],
                         interpolation=interpolation, fill=fill, center=[0, 0])
    if op == "ShearY":
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[0.0, math.degrees(math.atan(magnitude))],
                         interpolation=interpolation, fill=fill, center=[0, 0])
    if op == "TranslateX":
        return TF.affine(img, angle=0.0, translate=[int(magnitude), 0], scale=1.0,
                         shear=[0.0, 0.0], interpolation=interpolation, fill=fill)
    if op == "TranslateY":
        return TF.affine(img, angle=0.0, translate=[0, int(magnitude)], scale=1.0,
                         shear=[0.0, 0.0], interpolation=interpolation, fill=fill)
    if op == "Rotate":
        return TF.rotate(img, magnitude, interpolation=interpolation, fill=fill)
    if op == "Brightness":
        return TF.adjust_brightness(img, 1.0 + magnitude)
    if op == "Color":
        return TF.adjust_saturation(img, 1.0 + magnitude)
    if op == "Contrast":
        return TF.adjust_contrast(img, 1.0 + magnitude)
    if op == "Sharpness":
        return TF.adjust_sharpness(img, 1.0 + magnitude)
    if op == "Posterize":
        return TF.posterize(img, int(magnitude))
    if op == "Solarize":
        return TF.solarize(img, magnitude)
    if op == "AutoContrast":
        return TF.autocontrast(img)
    if op == "Equalize":
        return TF.equalize(img)
    raise ValueError(f"unknown RandAugment op {op!r}")


@dataclass(frozen=True)
class RandAugmentParams:
    op_index: Tensor  # (B, num_ops) int64 into RANDAUGMENT_OPS, on the CPU
    negate: Tensor  # (B, num_ops) bool, on the CPU: negate the magnitude of signed ops

    def op_names(self) -> list[list[str]]:
        return [[RANDAUGMENT_OPS[int(i)] for i in row] for row in self.op_index]


class RandAugment:
    """torchvision-style RandAugment (Cubuk, Zoph, Shlens, Le, NeurIPS 2020) with per-image
    op choices: the ``randaugment-tv`` stage (the authors' variant is :class:`AuthorsRandAugment`).

    For every image and each of ``num_ops`` rounds, an op is drawn uniformly from
    :data:`RANDAUGMENT_OPS` and a sign (p=0.5) for signed ops; the magnitude is bin
    ``magnitude`` of ``num_magnitude_bins`` (torchvision's table, see
    :func:`randaugment_magnitudes`).  This is ``torchvision.transforms.RandAugment``
    (defaults ``num_ops=2, magnitude=9, num_magnitude_bins=31``, nearest interpolation,
    fill 0) with independent draws per image.

    Implementation: the batch is quantised to uint8 (exact for images that came from
    uint8 data, e.g. CIFAR after crop/flip), grouped by (op, sign), and each group is
    transformed with one batched ``torchvision.transforms.functional`` call, so each
    image gets exactly what torchvision's RandAugment gives it for the same draws.
    """

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        interpolation: InterpolationMode = InterpolationMode.NEAREST,
        fill: Optional[float] = None,
    ) -> None:
        if num_ops < 0:
            raise ValueError("num_ops must be >= 0")
        if not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"magnitude must be in [0, {num_magnitude_bins})")
        self.num_ops = int(num_ops)
        self.magnitude = int(magnitude)
        self.num_magnitude_bins = int(num_magnitude_bins)
        self.interpolation = interpolation
        self.fill = fill

    def get_params(self, x: Tensor, generator: torch.Generator) -> RandAugmentParams:
        b = x.shape[0]
        cpu = torch.device("cpu")
        op_index = _randint(len(RANDAUGMENT_OPS), (b, self.num_ops), generator, cpu)
        negate = _randint(2, (b, self.num_ops), generator, cpu).bool()
        return RandAugmentParams(op_index=op_index, negate=negate)

    def signed_magnitude(self, op: str, negate: bool, height: int, width: int) -> float:
        mags, signed = randaugment_magnitudes(self.num_magnitude_bins, height, width)[op]
        m = float(mags[self.magnitude].item()) if mags.ndim > 0 else 0.0
        return -m if (signed and negate) else m

    def apply(self, x: Tensor, targets: Tensor, params: RandAugmentParams) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if b == 0 or self.num_ops == 0:
            return x, targets
        table = randaugment_magnitudes(self.num_magnitude_bins, h, w)
        fill = None if self.fill is None else [float(self.fill) * 255.0] * c
        img = x.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        for k in range(self.num_ops):
            ops = params.op_index[:, k]
            neg = params.negate[:, k]
            out = torch.empty_like(img)
            for op_i in torch.unique(ops).tolist():
                name = RANDAUGMENT_OPS[op_i]
                mags, signed = table[name]
                m = float(mags[self.magnitude].item()) if mags.ndim > 0 else 0.0
                for sign_neg in ((False, True) if signed else (None,)):
                    sel = ops == op_i
                    if sign_neg is not None:
                        sel = sel & (neg == sign_neg)
                    idx = sel.nonzero().flatten()
                    if idx.numel() == 0:
                        continue
                    idx = idx.to(img.device)
                    mag = -m if sign_neg else m
                    out[idx] = _apply_randaugment_op(img[idx], name, mag, self.interpolation, fill)
            img = out
        return img.to(x.dtype).div_(255.0), targets

    def __call__(self, x: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.apply(x, targets, self.get_params(x, generator))

    def __repr__(self) -> str:
        return (
            f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
            f"num_magnitude_bins={self.num_magnitude_bins}, interpolation={self.interpolation.value}, "
            f"fill={self.fill})"
        )
