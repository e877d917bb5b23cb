"""A PNG contact sheet: clean vs perturbed training images per class, shortcut pixels marked."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .onepixel import ShortcutPixel
from .atomic import atomic_write_bytes

_GAP = 6
_FONT_SIZE = 14


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font (FreeType), so labels are readable at any scale."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def contact_sheet(
    clean: np.ndarray,
    perturbed: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    shortcuts: Sequence[ShortcutPixel] = (),
    *,
    per_class: int = 4,
    scale: int = 4,
    amplify: float = 0.0,
    title: str | None = None,
) -> Image.Image:
    """Build the grid: one row per class, ``per_class`` (clean | perturbed) groups per row.

    The first images of each class are shown (deterministic). Every column has a title, every
    row its class. Shortcut pixels are outlined in a colour that contrasts with the pixel.
    ``amplify`` > 0 adds a third image per group showing ``|perturbed - clean| * amplify`` so
    that faint EM noise becomes visible.
    """
    if clean.shape != perturbed.shape:
        raise ValueError(f"clean {clean.shape} and perturbed {perturbed.shape} differ in shape")
    font, small = _font(_FONT_SIZE), _font(max(10, _FONT_SIZE - 3))
    h, w = clean.shape[1:3]
    cell_w, cell_h = w * scale, h * scale
    columns = ["clean", "perturbed"] + ([f"|diff| x{amplify:g}"] if amplify > 0 else [])
    group_w = len(columns) * cell_w + _GAP
    label_w = 12 + max(int(font.getlength(f"{k} {c}")) for k, c in enumerate(classes))
    title_h = _FONT_SIZE + 10
    header_h = title_h + _FONT_SIZE + 6
    sheet = Image.new("RGB", (label_w + per_class * group_w, header_h + len(classes) * (cell_h + _GAP)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 4), (title or "clean | perturbed") + "   (shortcut pixels outlined)", fill="black", font=font)
    for j in range(per_class):
        for c, name in enumerate(columns):
            x = label_w + j * group_w + c * cell_w
            draw.text((x + 2, title_h), name, fill=(60, 60, 60), font=small)
    by_class: dict[int, list[ShortcutPixel]] = {}
    for s in shortcuts:
        by_class.setdefault(s.label, []).append(s)
    for k, name in enumerate(classes):
        y0 = header_h + k * (cell_h + _GAP)
        draw.text((6, y0 + cell_h // 2 - _FONT_SIZE // 2), f"{k} {name}", fill="black", font=font)
        idx = np.flatnonzero(np.asarray(labels) == k)[:per_class]
        for j, i in enumerate(idx):
            x0 = label_w + j * group_w
            imgs = [np.asarray(clean[i]), np.asarray(perturbed[i])]
            if amplify > 0:
                diff = np.abs(imgs[1].astype(np.int16) - imgs[0].astype(np.int16)) * amplify
                imgs.append(np.clip(diff, 0, 255).astype(np.uint8))
            for p, arr in enumerate(imgs):
                tile = Image.fromarray(arr).resize((cell_w, cell_h), Image.NEAREST)
                sheet.paste(tile, (x0 + p * cell_w, y0))
                if p >= 1:
                    for s in by_class.get(k, []):
                        lum = sum(s.colour) / 3
                        colour = (255, 0, 255) if lum < 128 else (0, 160, 0)
                        bx, by = x0 + p * cell_w + s.col * scale, y0 + s.row * scale
                        draw.rectangle([bx - 2, by - 2, bx + scale + 1, by + scale + 1], outline=colour, width=2)
    return sheet


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write a PNG atomically (temporary file + rename)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
