"""The fifteen operations of the authors' RandAugment, in Pillow's integer arithmetic, batched on the device.

The authors applied these operations with Pillow to uint8 images after crop+flip
(:mod:`.authors` draws them). Here the batch is taken to the 0..255 scale once, and every
operation reproduces Pillow's integer arithmetic (truncating blends, the 3x3 SMOOTH kernel, the
histogram rules of equalize and autocontrast, Pillow's affine sampling conventions), so each op's
output is integer-valued as Pillow's would be; ``tests/test_augment_authors.py`` compares every
operation with Pillow.

* :data:`AUTHORS_RANDAUGMENT_OPS`, :data:`SIGNED_OPS`, the fills and
  :func:`authors_randaugment_ranges` (the magnitude of each of the 10 levels);
* :func:`apply_authors_op`: one operation on a batch, one magnitude per image.

It is one module (about 400 lines) because its fifteen operations form one table, each
reproducing Pillow's integer arithmetic, and are tested against Pillow as a set.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ...checks import check_choice

__all__ = [
    "AUTHORS_RANDAUGMENT_OPS",
    "CUTOUT_OP_FILL",
    "GREY_FILL",
    "SIGNED_OPS",
    "apply_authors_op",
    "authors_randaugment_ranges",
]

#: The 15 operations the authors' RandAugment draws from (uniformly, two per image).
AUTHORS_RANDAUGMENT_OPS: tuple[str, ...] = (
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Cutout",
    "Invert",
    "AutoContrast",
    "Equalize",
    "Posterize",
    "Solarize",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
)

#: Operations whose magnitude gets a random sign (p=0.5 each way).
SIGNED_OPS: frozenset[str] = frozenset(
    {"ShearX", "ShearY", "TranslateX", "TranslateY", "Brightness", "Color", "Contrast", "Sharpness"}
)

#: Fill of areas that a geometric operation uncovers (0..255 scale, every channel).
GREY_FILL: float = 128.0

#: RGB fill of the Cutout operation's square (0..255 scale).
CUTOUT_OP_FILL: tuple[float, float, float] = (125.0, 122.0, 113.0)

_NUM_LEVELS = 10


def authors_randaugment_ranges() -> dict[str, Tensor]:
    """Magnitude per level ``0..9`` for each operation, float64 ``(10,)`` tensors.

    Shear coefficient up to 0.3; translation up to 150/331 of the image side; rotation up to
    30 degrees; enhancement offsets up to 0.9 (factor ``1 +/- offset``); posterize 8..4 bits
    and Cutout side 0..20 px, both rounded to integers; solarize threshold 256..0 (0..255
    scale). Operations without a magnitude map to zeros. Only levels 1..9 are ever drawn.
    """
    lin = lambda a, b: torch.linspace(a, b, _NUM_LEVELS, dtype=torch.float64)
    zeros = torch.zeros(_NUM_LEVELS, dtype=torch.float64)
    return {
        "ShearX": lin(0.0, 0.3),
        "ShearY": lin(0.0, 0.3),
        "TranslateX": lin(0.0, 150.0 / 331.0),
        "TranslateY": lin(0.0, 150.0 / 331.0),
        "Rotate": lin(0.0, 30.0),
        "Cutout": torch.round(lin(0.0, 20.0)),
        "Invert": zeros,
        "AutoContrast": zeros,
        "Equalize": zeros,
        "Posterize": torch.round(lin(8.0, 4.0)),
        "Solarize": lin(256.0, 0.0),
        "Brightness": lin(0.0, 0.9),
        "Color": lin(0.0, 0.9),
        "Contrast": lin(0.0, 0.9),
        "Sharpness": lin(0.0, 0.9),
    }


# ---------------------------------------------------------------------------------
# Pillow's integer arithmetic, batched. ``v`` is float32 (N, 3, H, W) with integer values
# 0..255; per-image parameters are (N,) tensors on v's device.
# ---------------------------------------------------------------------------------


def _col(t: Tensor) -> Tensor:
    return t.reshape(-1, 1, 1, 1)


def _blend(degenerate: Tensor, image: Tensor, factor: Tensor) -> Tensor:
    """Pillow's ``Image.blend(degenerate, image, factor)`` for uint8: float32 maths, then
    clip to 0..255 and truncate (this is how every ``ImageEnhance`` class applies its factor)."""
    f = _col(factor.to(torch.float32))
    out = degenerate + f * (image - degenerate)
    return out.clamp_(0.0, 255.0).floor_()


def _luma(v: Tensor) -> Tensor:
    """Pillow's RGB -> L conversion ``(19595 R + 38470 G + 7471 B + 2**15) >> 16``, (N, 1, H, W)."""
    vi = v.to(torch.int64)
    acc = 19595 * vi[:, 0:1] + 38470 * vi[:, 1:2] + 7471 * vi[:, 2:3] + 32768
    return torch.div(acc, 65536, rounding_mode="floor").to(torch.float32)


def _smooth(v: Tensor) -> Tensor:
    """Pillow's ``ImageFilter.SMOOTH`` (kernel 1 1 1 / 1 5 1 / 1 1 1, sum 13, rounded);
    the one-pixel border is copied unchanged, as Pillow's 3x3 filter does."""
    vi = v.to(torch.int64)
    box = vi[:, :, :-2, :-2] + vi[:, :, :-2, 1:-1] + vi[:, :, :-2, 2:]
    box = box + vi[:, :, 1:-1, :-2] + vi[:, :, 1:-1, 2:]
    box = box + vi[:, :, 2:, :-2] + vi[:, :, 2:, 1:-1] + vi[:, :, 2:, 2:]
    total = box + 5 * vi[:, :, 1:-1, 1:-1]
    # round(total / 13); total / 13 is never exactly half-way between integers
    inner = torch.div(2 * total + 13, 26, rounding_mode="floor")
    out = v.clone()
    out[:, :, 1:-1, 1:-1] = inner.to(v.dtype)
    return out


def _pixel_centres(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    ys = torch.arange(h, device=device, dtype=torch.float64) + 0.5
    xs = torch.arange(w, device=device, dtype=torch.float64) + 0.5
    return ys[:, None].expand(h, w), xs[None, :].expand(h, w)


def _source_points(coeffs: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Pillow's affine convention: output pixel centre ``(x+.5, y+.5)`` maps to input point
    ``(a x' + b y' + c, d x' + e y' + f)`` for ``coeffs = (a, b, c, d, e, f)`` per image."""
    yc, xc = _pixel_centres(h, w, coeffs.device)
    a, b, c, d, e, f = (coeffs[:, i, None, None] for i in range(6))
    return a * xc + b * yc + c, d * xc + e * yc + f  # (N, H, W) float64


def _gather_pixels(v: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``v[n, :, rows[n, i, j], cols[n, i, j]]`` for in-range integer indices, (N, C, H, W)."""
    n, c, w = v.shape[0], v.shape[1], v.shape[3]
    flat = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    return v.reshape(n, c, -1).gather(2, flat).reshape(n, c, *rows.shape[1:])


def _warp_nearest(v: Tensor, coeffs: Tensor, fill: float) -> Tensor:
    """Pillow's nearest-neighbour transform in floating point (its rule for pure translations
    and scalings): source pixel ``floor(point)``, ``fill`` where that is outside the image."""
    h, w = v.shape[2], v.shape[3]
    xin, yin = _source_points(coeffs, h, w)
    xi, yi = torch.floor(xin), torch.floor(yin)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    xi = xi.clamp(0, w - 1).to(torch.int64)
    yi = yi.clamp(0, h - 1).to(torch.int64)
    out = _gather_pixels(v, yi, xi)
    return torch.where(inside[:, None], out, torch.full_like(out, fill))


def _warp_nearest_fixed(v: Tensor, coeffs: Tensor, fill: float) -> Tensor:
    """Pillow's nearest-neighbour affine transform for a general (rotating) matrix.

    Pillow runs it in 16.16 fixed point when the mapped corner stays below 32768 in absolute
    value: coefficients are rounded to 1/65536 (the offset after adding half a pixel step) and
    the source pixel is ``(a2 + x a0 + y a1) >> 16``; this reproduces that integer arithmetic.
    Images whose matrix fails the bound use the floating-point rule of :func:`_warp_nearest`.
    """
    h, w = v.shape[2], v.shape[3]
    a = coeffs
    fixed = lambda t: torch.floor(t * 65536.0 + 0.5).to(torch.int64)
    a0, a1, a3, a4 = fixed(a[:, 0]), fixed(a[:, 1]), fixed(a[:, 3]), fixed(a[:, 4])
    a2 = fixed(a[:, 2] + a[:, 0] * 0.5 + a[:, 1] * 0.5)
    a5 = fixed(a[:, 5] + a[:, 3] * 0.5 + a[:, 4] * 0.5)
    ys = torch.arange(h, device=v.device)[None, :, None]
    xs = torch.arange(w, device=v.device)[None, None, :]
    col = lambda t: t[:, None, None]
    xi = torch.div(col(a2) + xs * col(a0) + ys * col(a1), 65536, rounding_mode="floor")
    yi = torch.div(col(a5) + xs * col(a3) + ys * col(a4), 65536, rounding_mode="floor")
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    out = _gather_pixels(v, yi.clamp(0, h - 1), xi.clamp(0, w - 1))
    out = torch.where(inside[:, None], out, torch.full_like(out, fill))
    bound = lambda p, q, r: (w * p + h * q + r).abs() < 32768.0
    use_fixed = bound(a[:, 0], a[:, 1], a[:, 2]) & bound(a[:, 3], a[:, 4], a[:, 5])
    if bool(use_fixed.all()):
        return out
    return torch.where(use_fixed[:, None, None, None], out, _warp_nearest(v, coeffs, fill))


def _cubic(v1: Tensor, v2: Tensor, v3: Tensor, v4: Tensor, d: Tensor) -> Tensor:
    """Pillow's bicubic kernel (a = -1) in its Horner form, between v2 and v3 at offset d."""
    p2 = v3 - v1
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = (v2 - v1) - v3 + v4
    return v2 + d * (p2 + d * (p3 + d * p4))


def _warp_bicubic(v: Tensor, coeffs: Tensor, fill: float) -> Tensor:
    """Pillow's bicubic affine transform for uint8 images.

    A point outside ``[0, W) x [0, H)`` gets ``fill``; inside, the 4x4 neighbourhood around
    ``point - 0.5`` is read with edge replication, interpolated along x then y in float64,
    clipped to 0..255 and truncated.
    """
    h, w = v.shape[2], v.shape[3]
    xin, yin = _source_points(coeffs, h, w)
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    xs, ys = xin - 0.5, yin - 0.5
    x0, y0 = torch.floor(xs), torch.floor(ys)
    dx, dy = (xs - x0)[:, None], (ys - y0)[:, None]
    x0, y0 = x0.to(torch.int64), y0.to(torch.int64)
    v64 = v.to(torch.float64)
    cols = [(x0 + k).clamp(0, w - 1) for k in (-1, 0, 1, 2)]
    rows_interp = []
    for k in (-1, 0, 1, 2):
        r = (y0 + k).clamp(0, h - 1)
        taps = [_gather_pixels(v64, r, col) for col in cols]
        rows_interp.append(_cubic(*taps, dx))
    val = _cubic(*rows_interp, dy)
    out = val.clamp_(0.0, 255.0).floor_().to(v.dtype)
    return torch.where(inside[:, None], out, torch.full_like(out, fill))


def _affine(v: Tensor, a: float | Tensor, b: float | Tensor, c: float | Tensor,
            d: float | Tensor, e: float | Tensor, f: float | Tensor) -> Tensor:
    n = v.shape[0]
    cols = [torch.as_tensor(t, dtype=torch.float64, device=v.device).expand(n) for t in (a, b, c, d, e, f)]
    return torch.stack(cols, dim=1)


def _shear_x(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    return _warp_bicubic(v, _affine(v, 1.0, m, 0.0, 0.0, 1.0, 0.0), GREY_FILL)


def _shear_y(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    return _warp_bicubic(v, _affine(v, 1.0, 0.0, 0.0, m, 1.0, 0.0), GREY_FILL)


def _translate_x(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    # m is a signed fraction of the width; the content moves by -m * W pixels, rounded
    return _warp_nearest(v, _affine(v, 1.0, 0.0, m * v.shape[3], 0.0, 1.0, 0.0), GREY_FILL)


def _translate_y(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    return _warp_nearest(v, _affine(v, 1.0, 0.0, 0.0, 0.0, 1.0, m * v.shape[2]), GREY_FILL)


def _rotate(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    """Counter-clockwise by ``m`` degrees about the image centre, nearest, grey outside."""
    h, w = v.shape[2], v.shape[3]
    rad = -torch.deg2rad(m.to(torch.float64))
    cos, sin = torch.cos(rad), torch.sin(rad)
    cx, cy = w / 2.0, h / 2.0
    c = cos * (-cx) + sin * (-cy) + cx
    f = (-sin) * (-cx) + cos * (-cy) + cy
    return _warp_nearest_fixed(v, _affine(v, cos, sin, c, -sin, cos, f), GREY_FILL)


def _cutout(v: Tensor, m: Tensor, center_y: Tensor, center_x: Tensor, **_: Tensor) -> Tensor:
    """Square of side ``2 * (m // 2)`` around ``(cy, cx)``, clipped to the image, set to
    :data:`CUTOUT_OP_FILL` (rows and columns ``[c - m // 2, c + m // 2)``)."""
    h, w = v.shape[2], v.shape[3]
    half = torch.div(m.to(torch.int64), 2, rounding_mode="floor")
    r = torch.arange(h, device=v.device)
    col = torch.arange(w, device=v.device)
    in_r = (r >= (center_y - half)[:, None]) & (r < (center_y + half)[:, None])  # (N, H)
    in_c = (col >= (center_x - half)[:, None]) & (col < (center_x + half)[:, None])  # (N, W)
    mask = (in_r[:, :, None] & in_c[:, None, :])[:, None]
    fill = torch.tensor(CUTOUT_OP_FILL, dtype=v.dtype, device=v.device).reshape(1, 3, 1, 1)
    return torch.where(mask, fill, v)


def _invert(v: Tensor, **_: Tensor) -> Tensor:
    return 255.0 - v


def _autocontrast(v: Tensor, **_: Tensor) -> Tensor:
    """Per channel: stretch [min, max] to [0, 255] with Pillow's lookup rule
    ``int(i * scale - lo * scale)`` (float64, truncated, clipped); constant channels unchanged."""
    n, c, h, w = v.shape
    flat = v.reshape(n, c, -1).to(torch.float64)
    lo = flat.amin(dim=2, keepdim=True)
    hi = flat.amax(dim=2, keepdim=True)
    flat_range = hi > lo
    # a true division (``255.0 / tensor`` would go through a reciprocal and round differently)
    scale = torch.full_like(hi, 255.0).div(torch.where(flat_range, hi - lo, torch.ones_like(hi)))
    offset = -lo * scale
    out = torch.trunc(flat * scale + offset).clamp_(0.0, 255.0)
    out = torch.where(flat_range, out, flat)
    return out.to(v.dtype).reshape(n, c, h, w)


def _equalize(v: Tensor, **_: Tensor) -> Tensor:
    """Per channel, Pillow's rule: ``step = (count - count of the brightest level) // 255``;
    level ``i`` maps to ``(step // 2 + count below i) // step``, clipped to 255; channels with
    one level or ``step == 0`` are unchanged."""
    n, c, h, w = v.shape
    m = n * c
    vi = v.reshape(m, -1).to(torch.int64)
    offsets = torch.arange(m, device=v.device)[:, None] * 256
    hist = torch.bincount((vi + offsets).reshape(-1), minlength=m * 256).reshape(m, 256)
    levels = torch.arange(256, device=v.device)
    top = torch.where(hist > 0, levels, torch.full_like(levels, -1)).amax(dim=1)  # brightest level
    top_count = hist.gather(1, top.clamp(min=0)[:, None])[:, 0]
    step = torch.div(hist.sum(dim=1) - top_count, 255, rounding_mode="floor")
    keep = ((hist > 0).sum(dim=1) <= 1) | (step == 0)
    below = torch.cumsum(hist, dim=1) - hist
    safe = torch.where(step > 0, step, torch.ones_like(step))[:, None]
    lut = torch.div(torch.div(safe, 2, rounding_mode="floor") + below, safe, rounding_mode="floor")
    lut = torch.where(keep[:, None], levels.expand(m, 256), lut.clamp(max=255))
    return lut.gather(1, vi).to(v.dtype).reshape(n, c, h, w)


def _posterize(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    """Keep the top ``m`` bits of every channel."""
    q = _col(torch.pow(2.0, 8.0 - m.to(torch.float64)).to(v.dtype))
    return torch.floor(v / q) * q


def _solarize(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    """Invert every value ``>= m``."""
    return torch.where(v.to(torch.float64) < _col(m.to(torch.float64)), v, 255.0 - v)


def _brightness(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    return _blend(torch.zeros_like(v), v, 1.0 + m)


def _color(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    return _blend(_luma(v).expand_as(v), v, 1.0 + m)


def _contrast(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    """Blend towards the image's mean grey level, ``int(mean luma + 0.5)``."""
    mean = _luma(v).to(torch.float64).mean(dim=(1, 2, 3))
    grey = torch.floor(mean + 0.5).to(v.dtype)
    return _blend(_col(grey).expand_as(v), v, 1.0 + m)


def _sharpness(v: Tensor, m: Tensor, **_: Tensor) -> Tensor:
    return _blend(_smooth(v), v, 1.0 + m)


_OPS: dict[str, Callable[..., Tensor]] = {
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "TranslateX": _translate_x,
    "TranslateY": _translate_y,
    "Rotate": _rotate,
    "Cutout": _cutout,
    "Invert": _invert,
    "AutoContrast": _autocontrast,
    "Equalize": _equalize,
    "Posterize": _posterize,
    "Solarize": _solarize,
    "Brightness": _brightness,
    "Color": _color,
    "Contrast": _contrast,
    "Sharpness": _sharpness,
}
assert tuple(_OPS) == AUTHORS_RANDAUGMENT_OPS


def apply_authors_op(
    v: Tensor,
    op: str,
    magnitude: Tensor | float = 0.0,
    center_y: Tensor | int = 0,
    center_x: Tensor | int = 0,
) -> Tensor:
    """One operation on a batch on the 0..255 scale, with one magnitude per image.

    ``v``: float ``(N, 3, H, W)`` with integer values in 0..255. ``magnitude`` is the value
    itself, sign included (shear coefficient, fraction of the side to translate, degrees,
    enhancement offset so that the factor is ``1 + magnitude``, posterize bits, solarize
    threshold, Cutout side); ``center_y``/``center_x`` are the Cutout centre. Returns a new
    tensor with integer values in 0..255, as Pillow's uint8 result would have.
    """
    check_choice("operation", op, AUTHORS_RANDAUGMENT_OPS)
    if v.ndim != 4 or v.shape[1] != 3:
        raise ValueError(f"expected an (N, 3, H, W) batch, got shape {tuple(v.shape)}")
    n = v.shape[0]
    as_vec = lambda t, dt: torch.as_tensor(t, dtype=dt, device=v.device).expand(n)
    return _OPS[op](
        v.to(torch.float32),
        m=as_vec(magnitude, torch.float64),
        center_y=as_vec(center_y, torch.int64),
        center_x=as_vec(center_x, torch.int64),
    ).to(v.dtype)
