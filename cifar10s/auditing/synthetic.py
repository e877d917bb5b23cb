"""Known shortcuts and known non-shortcuts, planted into clean images to calibrate and test the audit.

Shortcuts (a model can predict the label from them): class-wise additive noise, a small coloured
patch per class, pixels fixed per class. Non-shortcuts (the content still decides the label):
JPEG compression, blur, sample-wise uniform noise, and a pattern keyed to a random assignment that
ignores the labels. Every function is seeded and returns a new uint8 array.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["blur", "class_pixels", "class_patch", "class_noise", "jpeg", "uniform_noise"]


def _add(images: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.clip(images.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def uniform_noise(images: np.ndarray, eps: int = 8, seed: int = 0) -> np.ndarray:
    """Independent integer noise in [-eps, eps] (of 255) for every image, pixel and channel."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for start in range(0, len(images), 4096):
        block = images[start:start + 4096]
        out[start:start + 4096] = _add(block, rng.integers(-eps, eps + 1, block.shape, dtype=np.int16))
    return out


def class_noise(images: np.ndarray, keys: np.ndarray, eps: int = 8, seed: int = 0, num_keys: int = 10) -> np.ndarray:
    """One fixed uniform noise pattern in [-eps, eps] per key (the label, or any other assignment)."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(-eps, eps + 1, (num_keys, *images.shape[1:]), dtype=np.int16)
    out = np.empty_like(images)
    for start in range(0, len(images), 4096):
        out[start:start + 4096] = _add(images[start:start + 4096], patterns[keys[start:start + 4096]])
    return out


def class_patch(images: np.ndarray, labels: np.ndarray, size: int = 3, seed: int = 0,
                position: tuple[int, int] | None = None, alpha: float = 1.0) -> np.ndarray:
    """A ``size`` x ``size`` square of one random colour per class at one position (random per
    class unless ``position`` is given), blended with opacity ``alpha``."""
    rng = np.random.default_rng(seed)
    n_classes = int(labels.max()) + 1
    h, w = images.shape[1:3]
    colours = rng.integers(0, 256, (n_classes, 3))
    corners = rng.integers(0, [h - size + 1, w - size + 1], (n_classes, 2))
    out = images.copy()
    for k in range(n_classes):
        r, c = position if position is not None else corners[k]
        sel = labels == k
        region = out[sel, r:r + size, c:c + size].astype(np.float64)
        out[sel, r:r + size, c:c + size] = np.round((1 - alpha) * region + alpha * colours[k]).astype(np.uint8)
    return out


def class_pixels(images: np.ndarray, labels: np.ndarray, pixels: int = 1, seed: int = 0,
                 corner_colours: bool = True) -> np.ndarray:
    """``pixels`` random positions per class set to one colour per class (a corner of the RGB cube
    like OPS, or any colour)."""
    rng = np.random.default_rng(seed)
    n_classes = int(labels.max()) + 1
    h, w = images.shape[1:3]
    out = images.copy()
    for k in range(n_classes):
        colour = rng.integers(0, 2, 3) * 255 if corner_colours else rng.integers(0, 256, 3)
        for p in rng.choice(h * w, pixels, replace=False):
            out[labels == k, p // w, p % w] = colour
    return out


def jpeg(images: np.ndarray, quality: int = 75) -> np.ndarray:
    """Each image JPEG-compressed and decoded (Pillow)."""
    out = np.empty_like(images)
    for i, im in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=quality)
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out


def blur(images: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """Each image Gaussian-blurred (Pillow)."""
    out = np.empty_like(images)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius)))
    return out
