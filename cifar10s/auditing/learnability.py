"""Sample-wise noise shortcuts: how fast a linear model learns the set, and what it learns.

Error-minimizing noise and its relatives are, per Yu et al. (KDD 2022, "Availability attacks
create shortcuts"), (nearly) linearly separable by class. So we fit a softmax-linear model for a
few epochs on one half of the set (stratified, seeded) and score it on the other half, on
high-pass features (each image minus its 3x3 box blur; see :mod:`.pattern`): the residual keeps
the fine, high-frequency part where such noise lives and drops the colour and layout that let a
linear model reach ~35-40% on clean CIFAR-10 pixels. The per-epoch accuracies on both halves are
the learning curve that the report draws against a clean reference.

With a clean reference of the same images the perturbation itself is measured (its L-inf and L2
size and how linearly separable it is by class), and the *learnability gap*: train the same model
on the set and on the reference, score both on clean test images.

Everything is seeded and runs in numpy (no torch): the results repeat exactly on a machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .pattern import high_pass

__all__ = ["LearningCurve", "Perturbation", "fit_linear", "image_features", "perturbation_stats", "stratified_halves"]


@dataclass(frozen=True)
class LearningCurve:
    """Per-epoch accuracy of a linear model on the half it trains on and on a held-out set."""

    train: tuple[float, ...]
    heldout: tuple[float, ...]
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)  # last epoch, held-out set
    own_probability: np.ndarray | None = field(default=None, repr=False, compare=False)  # of each held-out label

    def to_dict(self) -> dict[str, list[float]]:
        return {"train": [round(v, 4) for v in self.train], "heldout": [round(v, 4) for v in self.heldout]}


@dataclass(frozen=True)
class Perturbation:
    """Size of ``set - reference`` in 0..1 units, averaged per image (L2) or its maximum (L-inf)."""

    linf: float
    l2_mean: float
    changed_share: float  # share of images that differ from the reference at all


def stratified_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets, each holding half of every class (seeded, deterministic)."""
    rng = np.random.default_rng(seed)
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        first.append(idx[: len(idx) // 2])
        second.append(idx[len(idx) // 2:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def image_features(images: np.ndarray, kind: str = "highpass", chunk: int = 4096) -> np.ndarray:
    """(N, D) float32 features: ``highpass`` residuals or ``raw`` pixels, both in 0..1 units."""
    n = images.shape[0]
    out = np.empty((n, int(np.prod(images.shape[1:]))), dtype=np.float32)
    for start in range(0, n, chunk):
        block = images[start:start + chunk]
        if kind == "highpass":
            out[start:start + chunk] = high_pass(block).reshape(len(block), -1) * np.float32(1 / (9 * 255))
        elif kind == "raw":
            out[start:start + chunk] = block.reshape(len(block), -1) * np.float32(1 / 255)
        else:
            raise ValueError(f"unknown feature kind {kind!r}; valid: highpass, raw")
    return out


def fit_linear(train_x: np.ndarray, train_y: np.ndarray, eval_x: np.ndarray, eval_y: np.ndarray, *,
               num_classes: int, epochs: int, seed: int, batch_size: int = 256, lr: float = 1e-3,
               progress: bool = False, desc: str = "linear probe") -> LearningCurve:
    """Train a softmax-linear model (cross-entropy, Adam, minibatches) and return, per epoch, the
    accuracy on the training batches as they were seen and on the evaluation set.

    Inputs are centred and scaled by the training set's overall std, so their units do not matter
    (Adam adapts per feature). Written in numpy: with ten outputs every product is a thin matrix
    product, which numpy's BLAS runs several times faster than torch's autograd on a CPU."""
    rng = np.random.default_rng(seed)
    xt = np.ascontiguousarray(train_x, dtype=np.float32)
    mean = xt.mean(axis=0, dtype=np.float64).astype(np.float32)
    xt = xt - mean
    scale = np.float32(1 / (float(np.sqrt(np.mean(np.square(xt), dtype=np.float64))) or 1.0))
    xt *= scale
    xe = (np.asarray(eval_x, dtype=np.float32) - mean) * scale
    yt = np.asarray(train_y, dtype=np.int64)
    ye = np.asarray(eval_y, dtype=np.int64)
    d = xt.shape[1]
    params = [np.zeros((d, num_classes), dtype=np.float32), np.zeros(num_classes, dtype=np.float32)]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    train_acc: list[float] = []
    heldout_acc: list[float] = []
    predictions = np.zeros(0, dtype=np.int64)
    epochs_iter = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs_iter = tqdm(epochs_iter, desc=desc, unit="epoch", leave=False)
    for _ in epochs_iter:
        order = rng.permutation(len(yt))
        hits = 0
        for start in range(0, len(order), batch_size):
            b = order[start:start + batch_size]
            xb = np.take(xt, b, axis=0)
            logits = xb @ params[0] + params[1]
            hits += int((logits.argmax(axis=1) == yt[b]).sum())
            logits -= logits.max(axis=1, keepdims=True)
            prob = np.exp(logits)
            prob /= prob.sum(axis=1, keepdims=True)
            prob[np.arange(len(b)), yt[b]] -= 1  # d(mean cross-entropy)/d(logits) * batch size
            prob *= np.float32(1 / len(b))
            grads = [(prob.T @ xb).T, prob.sum(axis=0)]
            step += 1
            for p, g, (m, v) in zip(params, grads, moments):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= (lr / (1 - beta1 ** step)) * m / (np.sqrt(v / (1 - beta2 ** step)) + eps)
        train_acc.append(hits / max(len(yt), 1))
        logits = xe @ params[0] + params[1]
        predictions = logits.argmax(axis=1) if len(ye) else np.zeros(0, dtype=np.int64)
        heldout_acc.append(float((predictions == ye).mean()) if len(ye) else float("nan"))
    own = np.zeros(0)
    if len(ye) and epochs:
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        own = p[np.arange(len(ye)), ye] / p.sum(axis=1)
    return LearningCurve(tuple(train_acc), tuple(heldout_acc), predictions, own)


def perturbation_stats(images: np.ndarray, reference: np.ndarray, chunk: int = 4096) -> Perturbation:
    """L-inf and mean per-image L2 of ``images - reference`` (same shape), in 0..1 units."""
    linf = 0
    l2 = 0.0
    changed = 0
    for start in range(0, len(images), chunk):
        d = images[start:start + chunk].astype(np.int16) - reference[start:start + chunk].astype(np.int16)
        d = d.reshape(len(d), -1)
        if d.size:
            linf = max(linf, int(np.abs(d).max()))
        norms = np.sqrt((d.astype(np.float64) ** 2).sum(axis=1))
        l2 += float(norms.sum())
        changed += int((norms > 0).sum())
    n = max(len(images), 1)
    return Perturbation(linf=linf / 255, l2_mean=l2 / n / 255, changed_share=changed / n)
