"""Pixel shortcuts (the One-Pixel Shortcut and its k-pixel form): positions fixed within a class.

A pixel shortcut writes one colour into the same position of every image of a class. For each
class k and position p we take the class's modal colour there (exact uint8 equality on all three
channels) and its *share*: the fraction of the class's images whose pixel equals it. A shortcut
position has a share near 1 in its class and a much lower share of that same colour at that
position in the other classes; natural images never come close (on the CIFAR-10 subset the largest
share of any colour at any position in any class is 0.13: white corners of truck pictures).

The modal colour is found on a fixed, evenly spaced sample of the class (``sample`` images), and
its share is then counted exactly on every image of the class, so a colour carried by a quarter or
more of a class is found for sure in practice while the cost stays one comparison per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PixelScan", "PixelShortcut", "pixel_codes", "scan_pixels"]

#: Positions whose in-class share reaches this get their share in the other classes counted too.
_OTHER_FROM = 0.05


@dataclass(frozen=True)
class PixelShortcut:
    """Class ``label`` carries ``colour`` at (``row``, ``col``) in ``share`` of its images."""

    label: int
    row: int
    col: int
    colour: tuple[int, int, int]
    share: float
    other_share: float

    @property
    def strength(self) -> float:
        """In-class share minus the share of the same colour at the same position elsewhere."""
        return self.share - self.other_share


@dataclass(frozen=True)
class PixelScan:
    """Per class and position: the modal colour, its in-class share, its share in other classes."""

    share: np.ndarray  # (K, H, W) float: fraction of the class's images with the modal colour
    colour: np.ndarray  # (K, H, W, 3) uint8: the modal colour
    other_share: np.ndarray  # (K, H, W) float: same colour, same position, other classes (NaN: not counted)
    counts: np.ndarray  # (K,) images per class

    @property
    def strength(self) -> np.ndarray:
        """(K, H, W) share minus other-class share; positions not counted use their share alone."""
        return self.share - np.nan_to_num(self.other_share, nan=0.0)

    def shortcuts(self, min_share: float, min_strength: float, min_images: int = 1) -> list[PixelShortcut]:
        """Every (class, position) over both thresholds, strongest first within each class."""
        out: list[PixelShortcut] = []
        strength = self.strength
        for k in range(self.share.shape[0]):
            if self.counts[k] < min_images:
                continue
            hit = (self.share[k] >= min_share) & (strength[k] >= min_strength)
            rows, cols = np.nonzero(hit)
            order = np.lexsort((cols, rows, -strength[k][rows, cols]))
            for i in order:
                r, c = int(rows[i]), int(cols[i])
                out.append(PixelShortcut(
                    label=k, row=r, col=c, colour=tuple(int(v) for v in self.colour[k, r, c]),  # type: ignore[arg-type]
                    share=float(self.share[k, r, c]), other_share=float(np.nan_to_num(self.other_share[k, r, c])),
                ))
        return out


def pixel_codes(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H*W) uint32 colour codes ``R << 16 | G << 8 | B`` (equal iff all channels are)."""
    n = images.shape[0]
    x = images.reshape(n, -1, 3)
    codes = x[..., 0].astype(np.uint32) << 16
    codes |= x[..., 1].astype(np.uint32) << 8
    codes |= x[..., 2]
    return codes


def _decode(codes: np.ndarray) -> np.ndarray:
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)


def _column_modes(sample: np.ndarray) -> np.ndarray:
    """Most frequent value of each column of (m, P) codes (ties: the smallest value)."""
    m, p = sample.shape
    s = np.sort(sample.T, axis=1)  # (P, m): each position's values in order
    flat = s.ravel()
    start = np.ones(flat.shape, dtype=bool)
    start[1:] = flat[1:] != flat[:-1]
    start[::m] = True  # a run never crosses into the next position
    starts = np.flatnonzero(start)
    lengths = np.diff(np.append(starts, flat.size))
    column = starts // m
    first = np.searchsorted(column, np.arange(p))  # index of each position's first run
    longest = np.maximum.reduceat(lengths, first)
    # the first (smallest) run of each position reaching that length
    is_best = lengths == longest[column]
    best_run = np.full(p, flat.size, dtype=np.int64)
    np.minimum.at(best_run, column[is_best], starts[is_best])
    return flat[best_run]


def scan_pixels(images: np.ndarray, labels: np.ndarray, num_classes: int, *, sample: int = 512) -> PixelScan:
    """Modal colour and its share for every class and position of uint8 ``images`` (N, H, W, 3).

    Deterministic: the sample of each class is evenly spaced over its images in their order.
    """
    n, h, w, _ = images.shape
    labels = np.asarray(labels)
    share = np.zeros((num_classes, h * w))
    modal = np.zeros((num_classes, h * w), dtype=np.uint32)
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        if idx.size == 0:
            continue
        codes = pixel_codes(images[idx])
        pick = np.unique(np.linspace(0, idx.size - 1, min(sample, idx.size)).round().astype(np.int64))
        modal[k] = _column_modes(codes[pick])
        share[k] = (codes == modal[k]).sum(axis=0) / idx.size
    other = np.full((num_classes, h * w), np.nan)
    ks, ps = np.nonzero(share >= _OTHER_FROM)
    if ks.size:
        # count each candidate colour at its position over all images, then remove the class's own
        for p in np.unique(ps):
            column = pixel_codes(images[:, p // w, p % w][:, None, None, :])[:, 0]
            for k in ks[ps == p]:
                rest = n - counts[k]
                total = int((column == modal[k, p]).sum())
                own = round(share[k, p] * counts[k])
                other[k, p] = (total - own) / rest if rest else 0.0
    return PixelScan(
        share=share.reshape(num_classes, h, w),
        colour=_decode(modal).reshape(num_classes, h, w, 3),
        other_share=other.reshape(num_classes, h, w),
        counts=counts,
    )
