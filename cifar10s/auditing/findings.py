"""Findings of the detectors added for partial poisoning, shortcuts that move and second-order noise.

``pixel`` (partial): isolated exact colours (:mod:`.isolated`) whose class share passes the other
classes' share by ``isolated_excess`` after ``share_z`` standard errors: OPS on a share of a class.
``recurring-window``: an exact 3x3 window held by far more of a class's images than of the others'
(:mod:`.windows`), wherever it sits: a trigger pasted at random places.
``second-order``: the local-correlation classifier (:mod:`.secondorder`) predicts held-out labels
above its calibrated bar and above its relabelled null: autoregressive or filtered class-wise noise.

Each function returns the findings and the per-image contribution to the suspicion scores (in
units of the finding's threshold; see :mod:`.scores`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .isolated import IsolatedScan
from .pixel import PixelShortcut
from .secondorder import SecondOrderScan
from .report import Finding
from .thresholds import Thresholds
from .windows import WindowScan

__all__ = ["isolated_pixels", "second_order_finding", "window_finding"]


def isolated_pixels(scan: IsolatedScan, th: Thresholds) -> list[PixelShortcut]:
    """Every (class, position) whose isolated colour passes the relative share threshold."""
    e = scan.excess(th.share_z)
    out = []
    for k, r, c in zip(*np.nonzero(e >= th.isolated_excess)):
        if scan.counts[k] < th.min_class_images:
            continue
        out.append(PixelShortcut(label=int(k), row=int(r), col=int(c),
                                 colour=tuple(int(v) for v in scan.colour[k, r, c]),  # type: ignore[arg-type]
                                 share=float(scan.share[k, r, c]), other_share=float(scan.other_share[k, r, c])))
    return out


def window_finding(scan: WindowScan, labels: np.ndarray, th: Thresholds,
                   measurements: dict[str, Any]) -> tuple[list[Finding], np.ndarray]:
    best, excess = scan.best(th.share_z)
    ok = scan.class_counts >= th.min_class_images
    hit = ok & (excess >= th.window_excess)
    counts = scan.counts
    measurements["windows"] = {
        "size": scan.size, "candidates": int(counts.shape[0]), "excess": [round(float(v), 4) for v in excess],
        "share": [round(float(counts[b, k] / max(scan.class_counts[k], 1)), 4) if b >= 0 else 0.0
                  for k, b in enumerate(best)]}
    findings = []
    if hit.any():
        ks = np.flatnonzero(hit)
        findings.append(Finding("recurring-window", tuple(int(k) for k in ks), float(excess[ks].min()), {
            "summary": f"{len(ks)} class(es) hold an exact {scan.size}x{scan.size} window (anywhere in the image) in "
                       f"far more of their images than other classes do",
            "windows": {str(int(k)): {"pixels": scan.patches[best[k]].tolist(),
                                      "share": round(float(counts[best[k], k] / scan.class_counts[k]), 4),
                                      "other_share": round(float((counts[best[k]].sum() - counts[best[k], k])
                                                                 / max(scan.class_counts.sum() - scan.class_counts[k], 1)), 4),
                                      "excess": round(float(excess[k]), 4)} for k in ks}}))
    return findings, scan.image_scores(labels, th.share_z) / th.window_excess


def second_order_finding(scan: SecondOrderScan, bar: float, th: Thresholds,
                         measurements: dict[str, Any]) -> tuple[list[Finding], np.ndarray]:
    null_bar = float(scan.null.mean() + th.null_margin * scan.null.std()) if scan.null.size > 1 else 0.0
    measurements["second_order"] = {
        "heldout_accuracy": round(scan.accuracy, 4), "threshold": round(bar, 4),
        "null_accuracy": [round(float(v), 4) for v in scan.null], "null_bar": round(null_bar, 4),
        "per_class_recall": [round(float(v), 4) for v in scan.recall]}
    findings = []
    if scan.accuracy >= max(bar, null_bar):
        ks = tuple(int(k) for k in np.flatnonzero(scan.recall >= bar))
        findings.append(Finding("second-order", ks, scan.accuracy, {
            "summary": f"the local correlations of the high-pass image predict {scan.accuracy:.1%} of held-out labels "
                       f"(threshold {bar:.0%}; relabelled null {scan.null.mean():.1%}; clean CIFAR-10 about 35%)",
            "heldout_accuracy": round(scan.accuracy, 4)}))
    scale = float(np.std(scan.margin)) or 1.0
    return findings, scan.margin / (2 * scale)
