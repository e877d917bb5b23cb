"""The audit's evidence as one PNG: per-class pixel, pattern and recurring-window maps, and the curves.

Row 1, per class: how strongly each position carries a fixed colour (in-class share minus the
share elsewhere; flagged positions boxed and filled with their colour). Row 2, per class: the
z-score map of the class's mean high-pass residual (patch windows boxed). Both rows use one fixed
colour scale in every picture (drawn at the row's end: 0 to 1, and |z| 0 to 8), so pictures of
different sets compare. Row 3: each class's most class-specific recurring 3x3 window, enlarged,
with its share in the class and elsewhere (boxed where claimed). Below: the linear probe's
held-out accuracy per epoch on the set against the clean reference (the given reference, or the
calibrated clean curve); every curve has its own marker and line style, is labelled at its end,
and curves drawn later are thinner, so coinciding curves stay visible. Beside it, the second-order
classifier's held-out recall per class against its threshold and its relabelled null.
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


#: |z| at which the pattern map saturates: the same in every picture.
Z_SCALE = 8.0


def _colour_bar(img: Image.Image, draw: ImageDraw.ImageDraw, x0: int, y0: int, h: int, vmax: float, ticks: Sequence[float],
                font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """A vertical colour scale from 0 (bottom) to ``vmax`` (top) with tick labels."""
    values = np.linspace(vmax, 0, h)[:, None] * np.ones((1, 10))
    img.paste(Image.fromarray(_heat(values, vmax)), (x0, y0))
    draw.rectangle([x0, y0, x0 + 10, y0 + h], outline=(0, 0, 0))
    for t in ticks:
        yy = y0 + h - t / vmax * h
        draw.line([x0 + 10, yy, x0 + 14, yy], fill=(0, 0, 0))
        draw.text((x0 + 16, yy - 7), f"{t:g}", fill=(0, 0, 0), font=font)


_STYLES = ("solid", "dashed", "solid", "dotted")


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
    draw.text((x0 - 34, yt - 7), f"{threshold:.2f}", fill=_GREY, font=font)
    epochs = max((len(v) for _, v, _ in series), default=1)
    ends: list[float] = []
    for i, (name, values, colour) in enumerate(series):
        pts = [(x0 + (j + 1) / epochs * w, y0 + h - float(v) * h) for j, v in enumerate(values)]
        width = max(6 - 2 * i, 2)  # earlier curves thicker: a later one on top leaves them visible
        style = _STYLES[i % len(_STYLES)]
        for a, b in zip(pts, pts[1:]):
            if style == "solid":
                draw.line([a, b], fill=colour, width=width)
            else:
                dash = 6 if style == "dashed" else 2
                n = max(int(np.hypot(b[0] - a[0], b[1] - a[1]) // (2 * dash)), 1)
                for s in range(n):
                    t0, t1 = s / n, (s + 0.5) / n
                    draw.line([(a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                               (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)], fill=colour, width=width)
        r = 5 - i
        for px, py in pts:
            if i % 3 == 0:
                draw.ellipse([px - r, py - r, px + r, py + r], outline=colour, width=2)
            elif i % 3 == 1:
                draw.rectangle([px - r, py - r, px + r, py + r], outline=colour, width=2)
            else:
                draw.polygon([(px, py - r), (px - r, py + r), (px + r, py + r)], outline=colour)
        if pts:  # label at the curve's end, moved down past labels already there
            yy = pts[-1][1] - 7
            while any(abs(yy - e) < _FONT + 2 for e in ends):
                yy += _FONT + 2
            ends.append(yy)
            draw.text((x0 + w + 6, yy), f"{name} {float(values[-1]):.0%}", fill=colour, font=font)
    draw.text((x0, y0 + h + 4), f"epoch 1..{epochs}: held-out accuracy of the linear probe", fill=(0, 0, 0), font=font)


def _window_row(img: Image.Image, draw: ImageDraw.ImageDraw, report: AuditReport, y0: int, label_w: int, cell: int,
                size_px: int, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """Each class's most class-specific recurring window, enlarged, with its shares."""
    scan = report.windows
    m = report.measurements.get("windows", {})
    claimed = {int(c) for f in report.findings if f.kind == "recurring-window" for c in f.classes}
    if scan is None or not scan.counts.shape[0]:
        draw.text((label_w, y0 + size_px // 2), "no window recurs in 3% of any class (near-white/black left out)",
                  fill=(0, 0, 0), font=font)
        return
    best, _ = scan.best(report.thresholds.share_z)
    for c in range(len(report.classes)):
        x0 = label_w + c * cell
        b = int(best[c])
        if b < 0:
            continue
        tile = Image.fromarray(scan.patches[b]).resize((size_px, size_px), Image.NEAREST)
        img.paste(tile, (x0, y0))
        if c in claimed:
            draw.rectangle([x0 - 3, y0 - 3, x0 + size_px + 2, y0 + size_px + 2], outline=_BLUE, width=2)
        share = m.get("share", [0.0] * len(report.classes))[c]
        draw.text((x0 + size_px + 6, y0), f"{share:.0%}", fill=(0, 0, 0), font=font)
        draw.text((x0 + size_px + 6, y0 + _FONT + 2), f"+{max(m['excess'][c], 0):.2f}" if "excess" in m else "",
                  fill=_RED if c in claimed else _GREY, font=font)


def _second_order_bars(draw: ImageDraw.ImageDraw, report: AuditReport, x0: int, y0: int, w: int, h: int,
                       font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    """Held-out recall per class of the local-correlation classifier, its threshold and null."""
    so = report.measurements.get("second_order")
    if not so:
        return
    recall = so["per_class_recall"]
    found = any(f.kind == "second-order" for f in report.findings)
    draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(0, 0, 0))
    bw = w / max(len(recall), 1)
    for c, v in enumerate(recall):
        draw.rectangle([x0 + c * bw + 2, y0 + h - v * h, x0 + (c + 1) * bw - 2, y0 + h],
                       fill=_RED if found else _GREY)
        # full names, on two staggered lines so that neighbours do not overlap
        draw.text((x0 + c * bw + 2, y0 + h + 4 + (c % 2) * (_FONT + 2)), report.classes[c][:18], fill=(0, 0, 0),
                  font=font)
    for value, colour, name in ((so["threshold"], (0, 0, 0), "threshold"),
                                (float(np.mean(so["null_accuracy"])) if so["null_accuracy"] else 0.0, _BLUE,
                                 "relabelled")):
        yy = y0 + h - value * h
        for xx in range(x0, x0 + w, 8):
            draw.line([xx, yy, min(xx + 4, x0 + w), yy], fill=colour)
        draw.text((x0 + w + 4, yy - 7), f"{name} {value:.0%}", fill=colour, font=font)
    draw.text((x0, y0 - _FONT - 4), f"second-order: held-out recall per class (all {so['heldout_accuracy']:.0%})",
              fill=(0, 0, 0), font=font)


def draw_report(report: AuditReport, *, scale: int = 4, title: str | None = None) -> Image.Image:
    """The figure for ``report`` (see the module docstring)."""
    font = _font(_FONT)
    k = len(report.classes)
    h, w = report.pixel.share.shape[1:]
    cell = w * scale + 12
    label_w = 110
    bar_w = 60
    width = max(label_w + k * cell + bar_w, 900)
    rows_top = 2 * (_FONT + 8)
    row_h = h * scale + _FONT + 14
    win_px = 36
    plot_h = 200 if report.curves else 0
    height = rows_top + 2 * row_h + win_px + _FONT + 24 + (plot_h + 60 if plot_h else 10)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    verdict = "SHORTCUT FOUND: " + ", ".join(f.kind for f in report.findings) if report.findings else "no shortcut found"
    draw.text((6, 4), title or "cifar10s audit", fill=(0, 0, 0), font=font)
    draw.text((6, 4 + _FONT + 6), verdict, fill=_RED if report.findings else (0, 120, 0), font=font)

    strength = np.clip(report.pixel.strength, 0, 1)
    z = report.pattern.z_map
    rows = (("fixed colour", "share - elsewhere", strength, 1.0, (0, 0.5, 1)),
            ("pattern |z|", "fixed scale", z, Z_SCALE, (0, 4, 8)))
    for row, (name, note, maps, vmax, ticks) in enumerate(rows):
        y0 = rows_top + row * row_h
        tile_y = y0 + _FONT + 4
        draw.text((6, tile_y + h * scale // 2 - 14), name, fill=(0, 0, 0), font=font)
        draw.text((6, tile_y + h * scale // 2 + 2), note, fill=_GREY, font=font)
        for c in range(k):
            x0 = label_w + c * cell
            if row == 0:
                draw.text((x0, y0), report.classes[c][:18], fill=(0, 0, 0), font=font)
            img.paste(_tile(maps[c], vmax, scale), (x0, tile_y))
        _colour_bar(img, draw, label_w + k * cell + 4, tile_y, h * scale, vmax, ticks, font)
        for f in report.findings:
            if row == 0 and f.kind in ("pixel", "patch"):
                for px in f.evidence.get("pixels", []):
                    _box(draw, label_w + px["class"] * cell, tile_y, px["row"], px["col"], px["row"],
                         px["col"], scale, _BLUE, fill=tuple(px["colour"]))
            if row == 1 and f.kind == "patch":
                for key, b in f.evidence.get("boxes", {}).items():
                    _box(draw, label_w + int(key) * cell, tile_y, b["rows"][0], b["cols"][0], b["rows"][1],
                         b["cols"][1], scale, _BLUE)
    y0 = rows_top + 2 * row_h + 4
    draw.text((6, y0 + 4), "recurring 3x3", fill=(0, 0, 0), font=font)
    draw.text((6, y0 + _FONT + 6), "share, excess", fill=_GREY, font=font)
    _window_row(img, draw, report, y0, label_w, cell, win_px, font)
    if plot_h:
        y0 = rows_top + 2 * row_h + win_px + _FONT + 24
        series = []
        if "reference" in report.curves:
            series.append(("clean reference", report.curves["reference"].heldout, _BLUE))
        else:
            series.append(("clean CIFAR-10 (calibration)", CLEAN_PROBE_CURVE, _GREY))
        if "perturbation" in report.curves:
            series.append(("perturbation alone", report.curves["perturbation"].heldout, (230, 140, 0)))
        if "set" in report.curves:
            series.append(("set", report.curves["set"].heldout, _RED))
        _curves(draw, label_w, y0, 360, plot_h - 20, series, report.thresholds.separability, font)
        _second_order_bars(draw, report, label_w + 620, y0, 500, plot_h - 40, font)
    return img
