"""Known shortcuts and known non-shortcuts, planted into clean images to calibrate and test the audit.

Shortcuts (a model can predict the label from them): class-wise additive noise, a small coloured
patch per class (fixed or pasted at a random place), pixels fixed per class, class-wise
autoregressive or filtered noise, and any of them on a share of each class (:func:`poison_share`,
:func:`partial`). Non-shortcuts (the content still decides the label): JPEG compression, blur,
sample-wise uniform or Gaussian noise, translation, flips, grayscale, brightness/contrast jitter,
random patches drawn from one distribution for every class, and a pattern keyed to a random
assignment that ignores the labels. Every function is seeded and returns a new uint8 array.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["ar_coefficients", "ar_noise", "blur", "class_filtered_noise", "class_noise", "class_patch", "class_pixels",
           "flip", "gaussian_noise", "grayscale", "jitter", "jpeg", "moving_patch", "partial", "poison_share",
           "random_patches", "translate", "uniform_noise"]


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


# --- shortcuts that move, second-order noise, partial poisoning, clean transformations ------------

def poison_share(labels: np.ndarray, ratio: float, seed: int = 0) -> np.ndarray:
    """Boolean mask choosing ``round(ratio * n_k)`` random images of every class k (seeded)."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"ratio must lie in [0, 1]; got {ratio}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        mask[rng.choice(idx, int(round(ratio * len(idx))), replace=False)] = True
    return mask


def partial(poisoned: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The poisoned images where ``mask`` is set, the clean ones elsewhere."""
    out = clean.copy()
    out[mask] = poisoned[mask]
    return out


def _paste(out: np.ndarray, patches: np.ndarray, rng: np.random.Generator) -> None:
    """Paste patch i (s x s x 3) at a random place of image i, in place."""
    n, h, w, _ = out.shape
    s = patches.shape[1]
    rows = rng.integers(0, h - s + 1, n)
    cols = rng.integers(0, w - s + 1, n)
    for dr in range(s):
        for dc in range(s):
            out[np.arange(n), rows + dr, cols + dc] = patches[:, dr, dc]


def moving_patch(images: np.ndarray, labels: np.ndarray, size: int = 3, seed: int = 0, solid: bool = False) -> np.ndarray:
    """A backdoor-style trigger: one random ``size`` x ``size`` patch per class (random colour per
    pixel, or one colour if ``solid``), pasted at a random place of every image of the class."""
    rng = np.random.default_rng(seed)
    n_classes = int(labels.max()) + 1
    shape = (n_classes, 1, 1, 3) if solid else (n_classes, size, size, 3)
    patches = np.broadcast_to(rng.integers(0, 256, shape, dtype=np.uint8), (n_classes, size, size, 3))
    out = images.copy()
    _paste(out, patches[labels], rng)
    return out


def random_patches(images: np.ndarray, size: int = 3, seed: int = 0, pool: int | None = None) -> np.ndarray:
    """Not a shortcut: every image gets a random ``size`` x ``size`` patch at a random place, drawn
    from one distribution whatever the class (a fresh random patch per image, or one of ``pool``
    fixed patches chosen at random)."""
    rng = np.random.default_rng(seed)
    n = len(images)
    if pool is None:
        patches = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    else:
        patches = rng.integers(0, 256, (pool, size, size, 3), dtype=np.uint8)[rng.integers(0, pool, n)]
    out = images.copy()
    _paste(out, patches, rng)
    return out


def ar_coefficients(num_classes: int, seed: int = 0) -> np.ndarray:
    """(K, 3, 8) coefficients of one causal 3x3 autoregressive process per class and channel: a
    pixel is the weighted sum of the 8 pixels before it in its 3x3 window (raster order). Drawn
    Gaussian and scaled so their absolute values sum to 1, which keeps the process bounded."""
    a = np.random.default_rng(seed).normal(size=(num_classes, 3, 8))
    return a / np.abs(a).sum(axis=-1, keepdims=True)


def ar_noise(images: np.ndarray, labels: np.ndarray, l2: float = 1.0, seed: int = 0,
             coefficients: np.ndarray | None = None) -> np.ndarray:
    """Autoregressive class-wise noise (after Sandoval-Segura et al., NeurIPS 2022): every image
    gets its own realisation (Gaussian start values) of its class's AR processes (one per channel),
    generated on a 36 x 36 canvas, cropped to the image, scaled to L2 norm ``l2`` in 0..1 units
    (about 1/255 per entry for ``l2 = 0.22``), added and rounded. Zero-mean per class: only the
    local correlations differ."""
    rng = np.random.default_rng(seed)
    n, h, w, c = images.shape
    coef = ar_coefficients(int(labels.max()) + 1, seed) if coefficients is None else coefficients
    a = coef[labels].astype(np.float64)  # (N, 3, 8)
    pad = 4
    canvas = rng.normal(size=(n, c, h + pad, w + pad))
    taps = [(dr, dc) for dr in range(3) for dc in range(3)][:8]  # the window before its last pixel
    for r in range(2, h + pad):
        for col in range(2, w + pad):
            acc = np.zeros((n, c))
            for j, (dr, dc) in enumerate(taps):
                acc += canvas[:, :, r - 2 + dr, col - 2 + dc] * a[:, :, j]
            canvas[:, :, r, col] = acc
    noise = canvas[:, :, pad:, pad:].transpose(0, 2, 3, 1)
    noise *= l2 * 255 / np.sqrt((noise ** 2).sum(axis=(1, 2, 3), keepdims=True))
    return np.clip(np.round(images + noise), 0, 255).astype(np.uint8)


def class_filtered_noise(images: np.ndarray, labels: np.ndarray, l2: float = 1.0, seed: int = 0) -> np.ndarray:
    """Second-order class-wise noise of another family (moving-average, not autoregressive): white
    Gaussian noise per image, filtered by a random 3x3 kernel per class and channel, scaled to L2
    norm ``l2`` (0..1 units). Zero-mean per class, like :func:`ar_noise`."""
    rng = np.random.default_rng(seed)
    n, h, w, c = images.shape
    kernels = rng.normal(size=(int(labels.max()) + 1, c, 3, 3))[labels]  # (N, 3, 3, 3)
    white = rng.normal(size=(n, h + 2, w + 2, c))
    noise = np.zeros((n, h, w, c))
    for dr in range(3):
        for dc in range(3):
            noise += white[:, dr:dr + h, dc:dc + w] * kernels[:, None, None, :, dr, dc]
    noise *= l2 * 255 / np.sqrt((noise ** 2).sum(axis=(1, 2, 3), keepdims=True))
    return np.clip(np.round(images + noise), 0, 255).astype(np.uint8)


def translate(images: np.ndarray, shift: int = 4, seed: int = 0) -> np.ndarray:
    """Each image shifted by a random offset in [-shift, shift] per axis, zero-filled (pad and
    random crop, the usual CIFAR augmentation)."""
    rng = np.random.default_rng(seed)
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
    dy = rng.integers(0, 2 * shift + 1, n)
    dx = rng.integers(0, 2 * shift + 1, n)
    rows = dy[:, None] + np.arange(h)
    cols = dx[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def flip(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Half of the images (at random) mirrored left-right."""
    out = images.copy()
    sel = np.random.default_rng(seed).random(len(images)) < 0.5
    out[sel] = out[sel, :, ::-1]
    return out


def grayscale(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma in all three channels."""
    y = np.round(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
    return np.repeat(np.clip(y, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def jitter(images: np.ndarray, brightness: float = 0.2, contrast: float = 0.2, seed: int = 0) -> np.ndarray:
    """Random brightness and contrast factors in [1 - b, 1 + b] and [1 - c, 1 + c] per image."""
    rng = np.random.default_rng(seed)
    n = len(images)
    b = rng.uniform(1 - brightness, 1 + brightness, (n, 1, 1, 1))
    ct = rng.uniform(1 - contrast, 1 + contrast, (n, 1, 1, 1))
    x = images.astype(np.float32) * b
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return np.clip(np.round((x - mean) * ct + mean), 0, 255).astype(np.uint8)


def gaussian_noise(images: np.ndarray, sigma: float = 16, seed: int = 0) -> np.ndarray:
    """Independent Gaussian noise of standard deviation ``sigma`` grey levels, rounded and clipped."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(images + rng.normal(0, sigma, images.shape)), 0, 255).astype(np.uint8)
