"""A PNG contact sheet: clean vs perturbed training images per class, shortcut pixels marked."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .onepixel import ShortcutPixel
from .store import atomic_write_bytes

_LABEL_W = 90
_GAP = 6


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
) -> Image.Image:
    """Build the grid: one row per class, ``per_class`` (clean | perturbed) pairs per row.

    The first images of each class are shown (deterministic). Shortcut pixels are outlined in a
    colour that contrasts with the pixel. ``amplify`` > 0 adds a third image per pair showing
    ``|perturbed - clean| * amplify`` so that faint EM noise becomes visible.
    """
    if clean.shape != perturbed.shape:
        raise ValueError(f"clean {clean.shape} and perturbed {perturbed.shape} differ in shape")
    h, w = clean.shape[1:3]
    cell_w = w * scale
    panels = 3 if amplify > 0 else 2
    pair_w = panels * cell_w + _GAP
    sheet = Image.new("RGB", (_LABEL_W + per_class * pair_w, len(classes) * (h * scale + _GAP) + 18), "white")
    draw = ImageDraw.Draw(sheet)
    header = "clean | perturbed" + (" | |diff| x%g" % amplify if amplify > 0 else "")
    draw.text((4, 2), header + "   (shortcut pixels outlined)", fill="black")
    by_class: dict[int, list[ShortcutPixel]] = {}
    for s in shortcuts:
        by_class.setdefault(s.label, []).append(s)
    for k, name in enumerate(classes):
        y0 = 18 + k * (h * scale + _GAP)
        draw.text((4, y0 + h * scale // 2 - 6), f"{k} {name}", fill="black")
        idx = np.flatnonzero(np.asarray(labels) == k)[:per_class]
        for j, i in enumerate(idx):
            x0 = _LABEL_W + j * pair_w
            imgs = [np.asarray(clean[i]), np.asarray(perturbed[i])]
            if amplify > 0:
                diff = np.abs(imgs[1].astype(np.int16) - imgs[0].astype(np.int16)) * amplify
                imgs.append(np.clip(diff, 0, 255).astype(np.uint8))
            for p, arr in enumerate(imgs):
                tile = Image.fromarray(arr).resize((cell_w, h * scale), Image.NEAREST)
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
