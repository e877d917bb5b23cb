"""Per-image suspicion scores: which images carry the shortcut, and how well the scores rank them.

Each detector scores every image by what it can see in that image alone, in units of its own
threshold (1 = as strong as the weakest thing the detector claims):

* ``pixel``: the image holds its class's flagged (or best candidate) pixel colour at that position;
* ``recurring-window``: the image holds a window its class holds far more often than other classes;
* ``patch`` / ``class-pattern``: the projection of the image's high-pass residual on its class's pattern;
* ``second-order``: how much closer the image's local correlations lie to its class's than to the others';
* ``linear-separable``: the held-out probe's probability of the image's own label.

The set's scores are the largest of the contributions of the detectors that found something, and
0 for every image when none did (no claim, no suspicion): a clean set gets no large scores from a
detector that found nothing, and a contribution is only computed when its detector found something.
:func:`auroc` measures how well scores rank poisoned images above clean ones.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

__all__ = ["auroc", "combine"]


def auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` (ties count half): the
    chance that a random positive scores above a random negative."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # average ranks over ties
    start = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    end = np.r_[start[1:], scores.size]
    avg = (start + end + 1) / 2.0
    ranks[order] = np.repeat(avg, end - start)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def combine(contributions: Mapping[str, Callable[[], np.ndarray] | np.ndarray], found: set[str],
            n: int) -> tuple[np.ndarray, list[str]]:
    """The per-image maximum over the contributions of the kinds in ``found`` (each computed only
    then, when given as a function), and the kinds used; zeros and no kind when none was found."""
    kinds = sorted(k for k in contributions if k in found)
    if not kinds:
        return np.zeros(n, dtype=np.float32), []
    parts = [contributions[k]() if callable(contributions[k]) else contributions[k] for k in kinds]
    return np.max(np.stack([np.asarray(p, dtype=np.float64) for p in parts]), axis=0).astype(np.float32), kinds
