"""Class-wise patterns and patches: an additive signal shared by the images of a class.

Natural images of one class share little fine detail: the mean over a class of each image's
high-pass residual (the image minus its 3x3 box blur) is close to the mean over all classes. A
class-wise pattern (class-wise noise, class-wise error-minimizing noise, a blended or pasted patch)
adds the same residual to every image of the class and survives the averaging.

Per class k, pixel p and channel c we take ``delta = mean_k - mean_all`` of the residual, in grey
levels (0..255). Without a pattern each entry's sampling variance is ``floor = var * (1/n_k - 1/N)``
(``var``: the residual's within-class variance at that entry, pooled over classes), so

* ``z = delta / sqrt(floor)`` is a z-score map (about N(0, 1) entries without a pattern),
* ``effect = sqrt(max(mean(delta**2) - mean(floor), 0))`` estimates the pattern's RMS size in grey
  levels whatever the number of images (natural class structure on the CIFAR-10 subset: up to
  0.63; a uniform +-2/255 class-wise pattern: 1.2, +-4/255: 2.2). Grey levels, not units of the
  residual's std, because blurred images have a tiny residual std against which their natural
  class structure would look large, and
* a patch is a compact region where that excess concentrates: the best ``window`` x ``window``
  square's own effect size and the share of the class's excess energy that it holds (6 x 6 by
  default: the high-pass footprint of a 4 x 4 patch).

Heavy-tailed image content makes these statistics noisier than the formulas say when classes are
small, so the same statistics are also computed under a few seeded random permutations of the
labels (same class sizes, no pattern possible): the verdict asks the real classes to stand out
from that empirical null as well. Everything is accumulated in chunks, so 50,000 images take a
few seconds and memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["PatternScan", "high_pass", "pattern_scores", "scan_patterns"]


def high_pass(images: np.ndarray) -> np.ndarray:
    """int16 (N, H, W, 3): 9 x each image minus its 3x3 box sum (edges replicated), i.e. the image
    minus its box blur in units of 1/9 grey level; exact integers, and half the memory of float32."""
    x = images.astype(np.int16)
    rows = x.copy()  # 3-sums along rows
    rows[:, 1:] += x[:, :-1]
    rows[:, :-1] += x[:, 1:]
    rows[:, 0] += x[:, 0]
    rows[:, -1] += x[:, -1]
    box = rows.copy()  # then along columns
    box[:, :, 1:] += rows[:, :, :-1]
    box[:, :, :-1] += rows[:, :, 1:]
    box[:, :, 0] += rows[:, :, 0]
    box[:, :, -1] += rows[:, :, -1]
    x *= 9
    x -= box
    return x


@dataclass(frozen=True)
class PatternScan:
    """Per-class maps of the high-pass class means and their summaries.

    ``valid`` marks the pixels the summaries use: the verdict leaves out what another detector has
    already explained (a fixed pixel's neighbourhood, a patch's window)."""

    delta: np.ndarray  # (K, H, W, 3) class mean minus overall mean of the residual, grey levels
    floor: np.ndarray  # (K, H, W, 3) the variance of each delta entry without a pattern
    counts: np.ndarray  # (K,)
    window: int
    valid: np.ndarray | None = None  # (K, H, W) bool; None: every pixel
    null_delta: np.ndarray | None = None  # (R, K, H, W, 3): delta under R random relabellings

    def null_scans(self) -> list[PatternScan]:
        """The same scan under each random relabelling (same class sizes, same valid pixels): the
        values the statistics take on this very data when the labels mean nothing."""
        if self.null_delta is None:
            return []
        return [replace(self, delta=d, null_delta=None) for d in self.null_delta]

    @property
    def _valid(self) -> np.ndarray:
        return np.ones(self.delta.shape[:3], dtype=bool) if self.valid is None else self.valid

    def without(self, mask: np.ndarray) -> PatternScan:
        """The same scan with the (K, H, W) ``mask`` pixels left out of every summary."""
        return replace(self, valid=self._valid & ~mask)

    def without_windows(self, corners: np.ndarray) -> PatternScan:
        """The same scan without each class's ``window`` x ``window`` square at ``corners`` (K, 2)."""
        mask = np.zeros(self.delta.shape[:3], dtype=bool)
        for k, (r, c) in enumerate(corners):
            mask[k, r:r + self.window, c:c + self.window] = True
        return self.without(mask)

    @property
    def z_map(self) -> np.ndarray:
        """(K, H, W) root-mean-square z-score over channels at each pixel."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(np.nan_to_num((self.delta ** 2 / self.floor).mean(axis=-1), posinf=0.0))

    def _means(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per class over the valid pixels: mean delta**2, mean floor, mean z**2."""
        valid = self._valid
        count = np.maximum(valid.sum(axis=(1, 2)), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z2 = np.nan_to_num((self.delta ** 2 / self.floor).mean(axis=-1), posinf=0.0)

        def mean(a: np.ndarray) -> np.ndarray:
            return (a * valid).sum(axis=(1, 2)) / count

        return mean((self.delta ** 2).mean(axis=-1)), mean(self.floor.mean(axis=-1)), mean(z2)

    @property
    def excess(self) -> np.ndarray:
        """(K,) mean squared delta minus its noise floor (grey levels squared; can be negative)."""
        sq, floor, _ = self._means()
        return sq - floor

    @property
    def effect(self) -> np.ndarray:
        """(K,) estimated RMS size of each class's pattern in grey levels (0 without one)."""
        return np.sqrt(np.clip(self.excess, 0, None))

    @property
    def z_energy(self) -> np.ndarray:
        """(K,) mean squared z-score: about 1 without a pattern, grows with n for a real one."""
        return self._means()[2]

    def best_windows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per class: the (row, col) top-left corner of the window with the most excess energy (over
        the noise floor), that mean excess per pixel (grey levels squared; its square root is the
        window's effect size), the share of the class's excess energy inside it, and its mean
        squared z-score."""
        w = self.window
        k, h, wd, _ = self.delta.shape
        valid = self._valid
        e = (self.delta ** 2 - self.floor).mean(axis=-1) * valid  # excess per pixel
        with np.errstate(divide="ignore", invalid="ignore"):
            z2 = np.nan_to_num((self.delta ** 2 / self.floor).mean(axis=-1), posinf=0.0) * valid

        def boxes(a: np.ndarray) -> np.ndarray:
            c = np.zeros((k, h + 1, wd + 1))
            c[:, 1:, 1:] = a.cumsum(axis=1).cumsum(axis=2)
            return (c[:, w:, w:] - c[:, :-w, w:] - c[:, w:, :-w] + c[:, :-w, :-w]).reshape(k, -1)

        box = boxes(e)
        flat = box.argmax(axis=1)
        best = box[np.arange(k), flat] / (w * w)
        pos = np.stack(np.unravel_index(flat, (h - w + 1, wd - w + 1)), axis=1)
        z = boxes(z2)[np.arange(k), flat] / (w * w)
        total = e.sum(axis=(1, 2)) / (w * w)  # noise cancels in the sum, not in a sum of positive parts
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.nan_to_num(np.clip(best, 0, None) / np.maximum(total, best))
        return pos, best, share, z


def scan_patterns(images: np.ndarray, labels: np.ndarray, num_classes: int, *, window: int = 6,
                  null_rounds: int = 4, seed: int = 0, chunk: int = 2048) -> PatternScan:
    """Accumulate per-class sums of the high-pass residual (and of its square) over ``images``,
    for the labels and for ``null_rounds`` seeded random permutations of them.

    Per-class sums are plain row sums of boolean selections, no products with a one-hot matrix
    (multi-threaded BLAS runs those several times slower on a busy machine)."""
    n, h, w, c = images.shape
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    labellings = [labels] + [rng.permutation(labels) for _ in range(null_rounds)]
    s1 = np.zeros((len(labellings), num_classes, h * w * c))
    s2 = np.zeros((num_classes, h * w * c))
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    for start in range(0, n, chunk):
        r = high_pass(images[start:start + chunk]).reshape(-1, h * w * c).astype(np.float32)
        r *= np.float32(1 / 9)  # grey levels
        sq = r * r
        for j, lab in enumerate(labellings):
            part = lab[start:start + chunk]
            for k in np.unique(part):
                sel = part == k
                s1[j, k] += r[sel].sum(axis=0)
                if j == 0:
                    s2[k] += sq[sel].sum(axis=0)
    present = counts > 0
    total_mean = s1[0].sum(axis=0) / n
    means = np.zeros_like(s1)
    means[:, present] = s1[:, present] / counts[present, None]
    within = (s2.sum(axis=0) - (counts[:, None] * means[0] ** 2).sum(axis=0)) / max(n - int(present.sum()), 1)
    within = np.clip(within, 1e-6, None)
    noise = np.where(present, 1 / np.maximum(counts, 1) - 1 / n, np.inf)
    delta = np.where(present[None, :, None], means - total_mean, 0.0)
    floor = within[None, :] * noise[:, None]
    shape = (num_classes, h, w, c)
    return PatternScan(delta=delta[0].reshape(shape), floor=floor.reshape(shape), counts=counts, window=window,
                       null_delta=delta[1:].reshape(len(labellings) - 1, *shape) if null_rounds else None)


def pattern_scores(images: np.ndarray, labels: np.ndarray, scan: PatternScan, chunk: int = 4096) -> np.ndarray:
    """(N,) per image: the projection of its high-pass residual (grey levels) on its class's
    pattern (``delta`` over the scan's valid pixels), in standard deviations of that projection for
    images without the pattern (from the pooled within-class variance)."""
    k = scan.delta.shape[0]
    valid = scan._valid[..., None]
    pattern = (scan.delta * valid).reshape(k, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        noise = np.where(np.isfinite(scan.floor), scan.floor, 0).reshape(k, -1)
        n = np.maximum(scan.counts, 1).astype(np.float64)
        within = noise / np.where(scan.counts > 0, 1 / n - 1 / n.sum(), np.inf)[:, None]
    sd = np.sqrt((pattern ** 2 * within).sum(axis=1))
    sd[sd == 0] = np.inf
    out = np.empty(len(labels))
    total = np.zeros(pattern.shape[1])
    for start in range(0, len(labels), chunk):
        r = high_pass(images[start:start + chunk]).reshape(-1, pattern.shape[1]).astype(np.float32) / np.float32(9)
        lab = labels[start:start + chunk]
        out[start:start + chunk] = np.einsum("nd,nd->n", r, pattern[lab].astype(np.float32))
        total += r.sum(axis=0, dtype=np.float64)
    # centred on the overall mean residual's projection (what an image without the pattern gives)
    offset = pattern @ (total / max(len(labels), 1))
    return (out - offset[labels]) / sd[labels]
