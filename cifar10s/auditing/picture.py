"""The audit's evidence as one PNG: per-class pixel and pattern maps, and the learning curves.

Row 1, per class: how strongly each position carries a fixed colour (in-class share minus the
share elsewhere; flagged positions boxed and filled with their colour). Row 2, per class: the z-score map of the class's mean
high-pass residual (patch windows boxed). Below: the linear probe's held-out accuracy per epoch
on the set against the clean reference (the given reference, or the calibrated clean curve).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .thresholds import CLEAN_PROBE_CURVE

if TYPE_CHECKING:
    from .report import AuditReport

__all__ = ["draw_report"]

_FONT = 13
_RED = (200, 30, 30)
_BLUE = (40, 90, 200)
_GREY = (150, 150, 150)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _heat(values: np.ndarray, vmax: float) -> np.ndarray:
    """(H, W) values in [0, vmax] -> white..red..black uint8 RGB."""
    t = np.clip(values / vmax if vmax > 0 else values * 0, 0, 1)[..., None]
    white, red, dark = np.array([255, 255, 255]), np.array([220, 30, 30]), np.array([60, 0, 0])
    rgb = np.where(t < 0.5, white + (red - white) * (t * 2), red + (dark - red) * (t * 2 - 1))
    return rgb.astype(np.uint8)


def _tile(values: np.ndarray, vmax: float, scale: int) -> Image.Image:
    return Image.fromarray(_heat(values, vmax)).resize((values.shape[1] * scale, values.shape[0] * scale),
                                                      Image.NEAREST)


def _box(draw: ImageDraw.ImageDraw, x0: int, y0: int, r0: int, c0: int, r1: int, c1: int, scale: int,
         colour: tuple[int, int, int], fill: tuple[int, ...] | None = None) -> None:
    """Outline cells (r0..r1, c0..c1) of a tile at (x0, y0), 2 px outside them; optionally fill them."""
    if fill is not None:
        draw.rectangle([x0 + c0 * scale, y0 + r0 * scale, x0 + (c1 + 1) * scale - 1, y0 + (r1 + 1) * scale - 1],
                       fill=fill)
    draw.rectangle([x0 + c0 * scale - 3, y0 + r0 * scale - 3, x0 + (c1 + 1) * scale + 2, y0 + (r1 + 1) * scale + 2],
                   outline=colour, width=2)


def _curves(draw: ImageDraw.ImageDraw, x0: int, y0: int, w: int, h: int, series: Sequence[tuple[str, Sequence[float],
            tuple[int, int, int]]], threshold: float, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """Accuracy (0..1) per epoch as polylines, with axes, the threshold and a legend."""
    draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(0, 0, 0))
    for v in (0.25, 0.5, 0.75):
        yy = y0 + h - v * h
        draw.line([x0, yy, x0 + w, yy], fill=(230, 230, 230))
        draw.text((x0 - 34, yy - 7), f"{v:.2f}", fill=(0, 0, 0), font=font)
    yt = y0 + h - threshold * h
    for xx in range(x0, x0 + w, 8):
        draw.line([xx, yt, min(xx + 4, x0 + w), yt], fill=_GREY)
    draw.text((x0 + w + 4, yt - 7), "threshold", fill=_GREY, font=font)
    epochs = max((len(v) for _, v, _ in series), default=1)
    for i, (name, values, colour) in enumerate(series):
        pts = [(x0 + (j + 1) / epochs * w, y0 + h - float(v) * h) for j, v in enumerate(values)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for px, py in pts:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((x0 + w + 4, y0 + 4 + i * (_FONT + 4)), name, fill=colour, font=font)
    draw.text((x0, y0 + h + 4), f"epoch 1..{epochs}: held-out accuracy of the linear probe", fill=(0, 0, 0), font=font)


def draw_report(report: AuditReport, *, scale: int = 4, title: str | None = None) -> Image.Image:
    """The figure for ``report`` (see the module docstring)."""
    font = _font(_FONT)
    k = len(report.classes)
    h, w = report.pixel.share.shape[1:]
    cell = w * scale + 8
    label_w = 92
    width = max(label_w + k * cell, 760)
    rows_top = 2 * (_FONT + 8)
    plot_h = 180 if report.curves else 0
    height = rows_top + 2 * (h * scale + _FONT + 12) + (plot_h + 60 if plot_h else 10)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    verdict = "SHORTCUT FOUND: " + ", ".join(f.kind for f in report.findings) if report.findings else "no shortcut found"
    draw.text((6, 4), title or "cifar10s audit", fill=(0, 0, 0), font=font)
    draw.text((6, 4 + _FONT + 6), verdict, fill=_RED if report.findings else (0, 120, 0), font=font)

    strength = np.clip(report.pixel.strength, 0, 1)
    z = report.pattern.z_map
    zmax = max(float(np.percentile(z, 99.9)), 6.0)
    for row, (name, maps, vmax) in enumerate((("fixed colour", strength, 1.0), ("pattern |z|", z, zmax))):
        y0 = rows_top + row * (h * scale + _FONT + 12)
        draw.text((6, y0 + _FONT + h * scale // 2 - 6), name, fill=(0, 0, 0), font=font)
        for c in range(k):
            x0 = label_w + c * cell
            if row == 0:
                draw.text((x0, y0), report.classes[c][:9], fill=(0, 0, 0), font=font)
            img.paste(_tile(maps[c], vmax, scale), (x0, y0 + _FONT + 4))
        for f in report.findings:
            if row == 0 and f.kind in ("pixel", "patch"):
                for px in f.evidence.get("pixels", []):
                    _box(draw, label_w + px["class"] * cell, y0 + _FONT + 4, px["row"], px["col"], px["row"],
                         px["col"], scale, _BLUE, fill=tuple(px["colour"]))
            if row == 1 and f.kind == "patch":
                for key, b in f.evidence.get("boxes", {}).items():
                    _box(draw, label_w + int(key) * cell, y0 + _FONT + 4, b["rows"][0], b["cols"][0], b["rows"][1],
                         b["cols"][1], scale, _BLUE)
    if plot_h:
        y0 = rows_top + 2 * (h * scale + _FONT + 12) + 10
        series = []
        if "set" in report.curves:
            series.append(("set", report.curves["set"].heldout, _RED))
        if "reference" in report.curves:
            series.append(("clean reference", report.curves["reference"].heldout, _BLUE))
        else:
            series.append(("clean CIFAR-10 (calibration)", CLEAN_PROBE_CURVE, _GREY))
        if "perturbation" in report.curves:
            series.append(("perturbation alone", report.curves["perturbation"].heldout, (230, 140, 0)))
        _curves(draw, label_w, y0, 320, plot_h - 20, series, report.thresholds.separability, font)
    return img
