"""Shortcuts that move: the same small patch recurring in a class's images, wherever it sits.

A trigger pasted at a random place in each image (a backdoor-style class-wise patch) averages away
in class means and in any linear function of the pixels, but every poisoned image still holds the
exact same ``size`` x ``size`` window somewhere. So every window of every image is hashed (its 27
bytes, position ignored), and we count in how many images of each class each window occurs at
least once. Natural images share exact windows only where they are flat (saturated white or black
sky, backgrounds, borders): such windows occur in every class, so a window is claimed only where
its share in one class passes its share in the others by far more than sampling noise allows, and
windows that are entirely near white or near black (clipped exposure) are left out.

Cost: candidates are the windows recurring in an evenly spaced sample of each class; the full set
is then only looked up against those (a bit table first, exact comparison after), so 50,000 images
take about a second per pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WindowScan", "scan_windows", "window_hashes"]

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0xBF58476D1CE4E5B9)
_TABLE_BITS = 22


def window_hashes(images: np.ndarray, size: int = 3) -> np.ndarray:
    """(N, (H-size+1) * (W-size+1)) uint64 hashes of every ``size`` x ``size`` window (all channels).

    Equal windows give equal hashes; different ones collide with probability about 2**-64."""
    n, h, w, _ = images.shape
    x = images.astype(np.uint64)
    code = (x[..., 0] << np.uint64(16)) | (x[..., 1] << np.uint64(8)) | x[..., 2]
    code = code + np.uint64(1)  # never zero
    with np.errstate(over="ignore"):
        rows = np.zeros((n, h, w - size + 1), dtype=np.uint64)
        for d in range(size):
            rows = rows * _M1 + code[:, :, d:d + w - size + 1]
        rows ^= rows >> np.uint64(29)
        win = np.zeros((n, h - size + 1, w - size + 1), dtype=np.uint64)
        for d in range(size):
            win = win * _M2 + rows[:, d:d + h - size + 1]
        win ^= win >> np.uint64(31)
        win *= _M3
        win ^= win >> np.uint64(32)
    return win.reshape(n, -1)


def _saturated(images: np.ndarray, size: int) -> np.ndarray:
    """(N, windows) True where every pixel of the window is near white (all channels >= 250) or near
    black (all <= 5): over- and under-exposed regions, which recur naturally and unevenly by class
    (white backgrounds of trucks and cars), so they are never claimed."""
    n, h, w, _ = images.shape
    out = np.zeros((n, h - size + 1, w - size + 1), dtype=bool)
    lo = np.minimum(np.minimum(images[..., 0], images[..., 1]), images[..., 2])
    hi = np.maximum(np.maximum(images[..., 0], images[..., 1]), images[..., 2])
    for flag in (lo >= 250, hi <= 5):
        c = np.zeros((n, h + 1, w + 1), dtype=np.int16)
        c[:, 1:, 1:] = flag.cumsum(axis=1, dtype=np.int16).cumsum(axis=2, dtype=np.int16)
        box = c[:, size:, size:] - c[:, :-size, size:] - c[:, size:, :-size] + c[:, :-size, :-size]
        out |= box == size * size
    return out.reshape(n, -1)


def _hashes(images: np.ndarray, size: int) -> np.ndarray:
    """:func:`window_hashes` with saturated windows set to 0 (never a candidate)."""
    h = window_hashes(images, size)
    h[_saturated(images, size)] = 0
    return h


def _unique_per_row(h: np.ndarray) -> np.ndarray:
    """The distinct values of each row, flattened (each value at most once per row)."""
    s = np.sort(h, axis=1)
    keep = np.ones(s.shape, dtype=bool)
    keep[:, 1:] = s[:, 1:] != s[:, :-1]
    return s[keep]


@dataclass(frozen=True)
class WindowScan:
    """Per candidate window: its pixels and in how many images of each class it occurs."""

    size: int
    patches: np.ndarray  # (M, size, size, 3) uint8
    counts: np.ndarray  # (M, K) images of class k holding window m at least once
    class_counts: np.ndarray  # (K,)
    image_index: np.ndarray  # (P,) pairs (image, candidate): image i holds candidate m
    candidate_index: np.ndarray  # (P,)

    def excess(self, z: float) -> np.ndarray:
        """(M, K) share of class k holding the window minus its share in the other classes, less
        ``z`` standard errors of that difference (for a window that is equally common everywhere)."""
        n = self.class_counts.astype(np.float64)
        total_n = n.sum()
        total = self.counts.sum(axis=1, keepdims=True).astype(np.float64)
        own = self.counts / np.maximum(n, 1)
        rest_n = np.maximum(total_n - n, 1)
        other = (total - self.counts) / rest_n
        p0 = total / max(total_n, 1)
        se = np.sqrt(p0 * (1 - p0) * (1 / np.maximum(n, 1) + 1 / rest_n))
        return own - other - z * se

    def best(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        """Per class: the candidate with the largest excess (-1 where there is none) and that excess."""
        k = self.class_counts.size
        if self.counts.shape[0] == 0:
            return np.full(k, -1), np.zeros(k)
        e = self.excess(z)
        idx = e.argmax(axis=0)
        return idx, e[idx, np.arange(k)]

    def image_scores(self, labels: np.ndarray, z: float) -> np.ndarray:
        """(N,) per image: the largest excess, for the image's own class, of any candidate window it
        holds (0 where it holds none or all are at most 0)."""
        out = np.zeros(len(labels))
        if self.image_index.size:
            e = self.excess(z)[self.candidate_index, labels[self.image_index]]
            np.maximum.at(out, self.image_index, np.clip(e, 0, None))
        return out


def scan_windows(images: np.ndarray, labels: np.ndarray, num_classes: int, *, size: int = 3, sample: int = 400,
                 min_share: float = 0.03, chunk: int = 2048) -> WindowScan:
    """Find the windows recurring in ``min_share`` of a class's sample (at least 4 images), then
    count in how many images of each class every such window occurs."""
    n, h, w, _ = images.shape
    labels = np.asarray(labels)
    counts_k = np.bincount(labels, minlength=num_classes)[:num_classes]
    found: list[np.ndarray] = []
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        if idx.size < 4:
            continue
        pick = idx[np.unique(np.linspace(0, idx.size - 1, min(sample, idx.size)).round().astype(np.int64))]
        values, cnt = np.unique(_unique_per_row(_hashes(images[pick], size)), return_counts=True)
        found.append(values[(cnt >= max(4, int(np.ceil(min_share * pick.size)))) & (values != 0)])
    cand = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)
    m = cand.size
    table = np.zeros(1 << _TABLE_BITS, dtype=bool)
    mask = np.uint64((1 << _TABLE_BITS) - 1)
    table[(cand & mask).astype(np.int64)] = True
    patches = np.zeros((m, size, size, 3), dtype=np.uint8)
    have = np.zeros(m, dtype=bool)
    counts = np.zeros((m, num_classes), dtype=np.int64)
    img_parts: list[np.ndarray] = []
    cand_parts: list[np.ndarray] = []
    nw = w - size + 1
    for start in range(0, n, chunk) if m else ():
        hashes = _hashes(images[start:start + chunk], size)
        hit = table[(hashes & mask).astype(np.int64)]
        rows, cols = np.nonzero(hit)
        vals = hashes[rows, cols]
        pos = np.minimum(np.searchsorted(cand, vals), m - 1)
        ok = cand[pos] == vals
        rows, cols, pos = rows[ok], cols[ok], pos[ok]
        new = ~have[pos]
        if new.any():  # remember each candidate's pixels from its first occurrence
            first = np.unique(pos[new], return_index=True)[1]
            for j in np.flatnonzero(new)[first]:
                r, c = divmod(int(cols[j]), nw)
                patches[pos[j]] = images[start + rows[j], r:r + size, c:c + size]
            have[pos] = True
        pair = np.unique((rows.astype(np.int64) + start) * m + pos)
        img, cd = pair // m, pair % m
        np.add.at(counts, (cd, labels[img]), 1)
        img_parts.append(img)
        cand_parts.append(cd)
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))  # noqa: E731
    return WindowScan(size=size, patches=patches, counts=counts, class_counts=counts_k,
                      image_index=cat(img_parts), candidate_index=cat(cand_parts))
