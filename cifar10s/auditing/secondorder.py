"""Second-order noise: class-wise differences in how neighbouring pixels of the high-pass image correlate.

Autoregressive (AR) class-wise noise (Sandoval-Segura et al., NeurIPS 2022) gives every image its
own realisation of its class's random process: the class mean of the noise is zero, so class means
(:mod:`.pattern`) and linear probes (:mod:`.probes`) see nothing, but the noise's local
correlations are the class's. So each image is summarised by the normalised correlations of its
high-pass residual at 12 offsets of up to two pixels (per channel) and by the correlations between
its channels (39 numbers); a Gaussian classifier with one pooled covariance (linear discriminant)
is fitted on one stratified half and scored on the other, both ways round.

Natural classes differ in texture too (clean CIFAR-10: about a third of held-out labels right), so
the held-out accuracy is weighed against a threshold calibrated on clean sets and their clean
transformations, and against the same statistic under seeded relabellings (the null: chance).
Per image, the margin by which the image lies closer to its own class's model than to any other
(from the half it was not fitted on) is its score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .learnability import stratified_halves
from .pattern import high_pass

__all__ = ["OFFSETS", "SecondOrderScan", "correlation_features", "scan_second_order"]

#: Offsets (rows, cols) of the correlations: one half-plane of the 5 x 5 neighbourhood.
OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0), (1, 2), (2, 1), (1, -2), (2, -1), (2, 2), (2, -2))


def correlation_features(images: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(N, 39) float32: per channel the high-pass residual's correlation at each of :data:`OFFSETS`
    (divided by its variance), then the three correlations between channels."""
    n = len(images)
    f = len(OFFSETS) * 3 + 3
    out = np.empty((n, f), dtype=np.float32)
    for start in range(0, n, chunk):
        r = high_pass(images[start:start + chunk]).astype(np.float32).transpose(0, 3, 1, 2).copy()
        r -= r.mean(axis=(2, 3), keepdims=True)
        h, w = r.shape[2:]
        var = np.einsum("nchw,nchw->nc", r, r) + np.float32(1.0)
        cols = []
        for dy, dx in OFFSETS:
            a = r[:, :, dy:, max(dx, 0):w + min(dx, 0)]
            b = r[:, :, :h - dy, max(-dx, 0):w - max(dx, 0)]
            cols.append(np.einsum("nchw,nchw->nc", a, b) / var)
        for c1, c2 in ((0, 1), (1, 2), (0, 2)):
            cross = np.einsum("nhw,nhw->n", r[:, c1], r[:, c2]) / np.sqrt(var[:, c1] * var[:, c2])
            cols.append(cross[:, None])
        out[start:start + chunk] = np.concatenate(cols, axis=1)
    return out


def _fit(f: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class means (K, F), which classes are present, and the pooled within-class precision."""
    present = np.bincount(y, minlength=k) > 0
    mu = np.zeros((k, f.shape[1]))
    np.add.at(mu, y, f)
    mu[present] /= np.bincount(y, minlength=k)[present, None]
    res = f - mu[y]
    cov = res.T @ res / max(len(y) - int(present.sum()), 1)
    cov += 1e-3 * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return mu, present, np.linalg.inv(cov)


def _distances(f: np.ndarray, mu: np.ndarray, present: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(N, K) squared Mahalanobis distances to each class mean (inf for absent classes)."""
    fp = f @ precision
    d = (fp * f).sum(axis=1)[:, None] - 2 * fp @ mu.T + ((mu @ precision) * mu).sum(axis=1)[None, :]
    d[:, ~present] = np.inf
    return d


def _cross_fit(f: np.ndarray, y: np.ndarray, k: int, seed: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Held-out accuracy, per-image margins and per-image correctness, each half scored by the model
    of the other."""
    a, b = stratified_halves(y, seed)
    margin = np.zeros(len(y))
    right = np.zeros(len(y), dtype=bool)
    for tr, te in ((a, b), (b, a)):
        d = _distances(f[te].astype(np.float64), *_fit(f[tr].astype(np.float64), y[tr], k))
        own = d[np.arange(len(te)), y[te]]
        d[np.arange(len(te)), y[te]] = np.inf
        margin[te] = d.min(axis=1) - own
        right[te] = margin[te] > 0
    return float(right.mean()), margin, right


@dataclass(frozen=True)
class SecondOrderScan:
    """Held-out accuracy of the correlation classifier, per class, under relabellings, per image."""

    accuracy: float
    recall: np.ndarray  # (K,) held-out recall per class
    null: np.ndarray  # (R,) accuracy under R random relabellings
    margin: np.ndarray  # (N,) own-class margin of each image (squared Mahalanobis units)


def scan_second_order(images: np.ndarray, labels: np.ndarray, num_classes: int, *, null_rounds: int = 2,
                      seed: int = 0, features: np.ndarray | None = None) -> SecondOrderScan:
    """Fit and score the correlation classifier on the labels and on ``null_rounds`` relabellings."""
    f = correlation_features(images) if features is None else features
    labels = np.asarray(labels)
    acc, margin, right = _cross_fit(f, labels, num_classes, seed)
    counts = np.maximum(np.bincount(labels, minlength=num_classes), 1)
    recall = np.bincount(labels, weights=right.astype(np.float64), minlength=num_classes) / counts
    rng = np.random.default_rng(seed + 1)
    null = np.array([_cross_fit(f, rng.permutation(labels), num_classes, seed)[0] for _ in range(null_rounds)])
    return SecondOrderScan(accuracy=acc, recall=recall, null=null, margin=margin)
