"""``audit(images, labels)``: run the detectors, weigh their statistics against the calibrated
thresholds and return the verdict with its evidence.

Findings, one per kind, each naming the classes it concerns:

``pixel``
    exact colours fixed at a position within a class (OPS, k-pixel OPS), with every position,
    colour and share;
``patch``
    a compact region shared by a class (pasted or blended patches), exact or not;
``class-pattern``
    an additive pattern spread over the image, shared by a class (class-wise noise);
``linear-separable``
    a linear model on high-pass features predicts held-out labels far above what image content
    allows: the test for sample-wise (error-minimizing) noise, which every other kind passes too;
    positions already explained by pixel findings are masked out of it;
``separable-perturbation`` / ``learnability-gap`` (with a clean reference)
    the perturbation itself predicts the label; training on the set scores far lower on clean
    test images than training on the reference.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from ..constants import CLASSES
from .findings import isolated_pixels, second_order_finding, window_finding
from .isolated import scan_isolated
from .pattern import PatternScan, pattern_scores, scan_patterns
from .pixel import PixelScan, PixelShortcut, scan_pixels
from .report import AuditReport, Finding
from .thresholds import DEFAULT_THRESHOLDS, Thresholds
from .training_set import check_training_set
from .windows import scan_windows

__all__ = ["AuditReport", "Finding", "audit"]

#: Epochs of the linear probes: the held-out accuracy has settled by then on every calibration set.
PROBE_EPOCHS = 6


def _class_names(num_classes: int, classes: Sequence[str] | None) -> tuple[str, ...]:
    if classes is not None:
        if len(classes) != num_classes:
            raise ValueError(f"{len(classes)} class names given for {num_classes} classes")
        return tuple(str(c) for c in classes)
    return CLASSES if num_classes == len(CLASSES) else tuple(f"class {k}" for k in range(num_classes))


def _pixel_dict(s: PixelShortcut) -> dict[str, Any]:
    return {"class": s.label, "row": s.row, "col": s.col, "colour": list(s.colour),
            "share": round(s.share, 4), "other_share": round(s.other_share, 4)}


def _is_patch(pixels: list[PixelShortcut]) -> bool:
    """Four or more fixed positions that fill most of their bounding box: a pasted patch."""
    if len(pixels) < 4:
        return False
    rows = [p.row for p in pixels]
    cols = [p.col for p in pixels]
    area = (max(rows) - min(rows) + 1) * (max(cols) - min(cols) + 1)
    return len(pixels) >= 0.5 * area


def _pixel_findings(scan: PixelScan, th: Thresholds,
                    partial: Sequence[PixelShortcut] = ()) -> tuple[list[Finding], dict[int, list[PixelShortcut]]]:
    """Pixels fixed in most of a class (``scan``) and isolated pixels on a share of it (``partial``)."""
    by_class: dict[int, list[PixelShortcut]] = {}
    for s in scan.shortcuts(th.pixel_share, th.pixel_strength, th.min_class_images):
        by_class.setdefault(s.label, []).append(s)
    for s in partial:
        if not any((p.row, p.col) == (s.row, s.col) for p in by_class.get(s.label, [])):
            by_class.setdefault(s.label, []).append(s)
    pixel = {k: v for k, v in by_class.items() if not _is_patch(v)}
    patch = {k: v for k, v in by_class.items() if _is_patch(v)}
    out = []
    if pixel:
        flat = [p for k in sorted(pixel) for p in pixel[k]]
        counts = sorted({len(v) for v in pixel.values()})
        out.append(Finding(
            "pixel", tuple(sorted(pixel)), min(p.strength for p in flat),
            {"summary": f"{len(pixel)} class(es) carry fixed pixel colours ({'/'.join(map(str, counts))} position(s) "
                        "per class)", "pixels": [_pixel_dict(p) for p in flat]},
        ))
    if patch:
        boxes = {}
        for k, v in patch.items():
            rows = [p.row for p in v]
            cols = [p.col for p in v]
            boxes[str(k)] = {"rows": [min(rows), max(rows)], "cols": [min(cols), max(cols)], "exact_pixels": len(v)}
        out.append(Finding(
            "patch", tuple(sorted(patch)), min(p.strength for v in patch.values() for p in v),
            {"summary": f"{len(patch)} class(es) carry an exact patch", "exact": True, "boxes": boxes},
        ))
    return out, by_class


def flagged_pixel_scores(images: np.ndarray, labels: np.ndarray, by_class: dict[int, list[PixelShortcut]]) -> np.ndarray:
    """(N,) per image: twice the share of its class's flagged pixels whose colour it carries (so
    carrying half of them or more scores at least 1, the unit of every detector's threshold)."""
    out = np.zeros(len(labels))
    for k, pixels in by_class.items():
        sel = np.flatnonzero(labels == k)
        got = sum((images[sel, p.row, p.col] == np.array(p.colour, dtype=np.uint8)).all(axis=1) for p in pixels)
        out[sel] = 2 * np.asarray(got, dtype=np.float64) / len(pixels)
    return out


def _explained_mask(scan: PatternScan, by_class: dict[int, list[PixelShortcut]]) -> np.ndarray:
    """(K, H, W) True at every flagged pixel and its 8 neighbours (the high-pass spreads one pixel
    over its 3x3 neighbourhood), for every class: a pixel fixed in one class also moves the overall
    mean that the other classes are compared with."""
    k, h, w, _ = scan.delta.shape
    mask = np.zeros((h, w), dtype=bool)
    for pixels in by_class.values():
        for p in pixels:
            mask[max(p.row - 1, 0):p.row + 2, max(p.col - 1, 0):p.col + 2] = True
    return np.broadcast_to(mask, (k, h, w))


def _lower(value: np.ndarray, null: np.ndarray, margin: float) -> np.ndarray:
    """Effect sizes (grey levels) from excess energies, after taking off what the same statistic
    reaches when the labels mean nothing: its mean over the relabelled null plus ``margin`` null
    standard deviations. Large classes lose almost nothing; small, noisy ones lose a lot."""
    mean, std = (float(null.mean()), float(null.std())) if null.size > 1 else (0.0, 0.0)
    return np.sqrt(np.clip(value - mean - margin * std, 0, None))


def _pattern_findings(scan: PatternScan, by_class: dict[int, list[PixelShortcut]], th: Thresholds,
                      measurements: dict[str, Any]) -> list[Finding]:
    explained = _explained_mask(scan, by_class)
    masked = scan.without(explained)
    nulls = [n.without(explained) for n in scan.null_scans()]
    ok = scan.counts >= th.pattern_min_class_images
    pos, win_excess, win_share, win_z = masked.best_windows()
    null_windows = [n.best_windows() for n in nulls]
    null_win = np.concatenate([nw[1][ok] for nw in null_windows]) if nulls else np.zeros(0)
    win_effect = _lower(win_excess, null_win, th.null_margin)
    patch = ok & (win_effect >= th.patch_effect) & (win_share >= th.patch_share)
    # the pattern left once each class's own best window and every flagged patch window are out
    # (a patch in one class also moves the overall mean the other classes are compared with)
    k, h, w, _ = scan.delta.shape
    shared = np.zeros((h, w), dtype=bool)
    for c in np.flatnonzero(patch):
        shared[pos[c, 0]:pos[c, 0] + scan.window, pos[c, 1]:pos[c, 1] + scan.window] = True
    shared_mask = np.broadcast_to(shared, (k, h, w))
    rest = masked.without_windows(pos).without(shared_mask)
    null_rest = [n.without_windows(nw[0]).without(shared_mask).excess[ok] for n, nw in zip(nulls, null_windows)]
    effect = _lower(rest.excess, np.concatenate(null_rest) if nulls else np.zeros(0), th.null_margin)
    measurements["pattern"] = {
        "effect": _round(effect), "effect_raw": _round(rest.effect), "z_energy": _round(rest.z_energy),
        "window": scan.window, "window_corner": pos.tolist(), "window_effect": _round(win_effect),
        "window_effect_raw": _round(np.sqrt(np.clip(win_excess, 0, None))), "window_share": _round(win_share),
        "window_z_energy": _round(win_z), "null_rounds": len(nulls),
    }
    out = []
    if patch.any():
        ks = np.flatnonzero(patch)
        out.append(Finding("patch", tuple(int(k) for k in ks), float(win_effect[ks].min()), {
            "summary": f"{len(ks)} class(es) share a compact {scan.window}x{scan.window} high-pass signal",
            "exact": False,
            "boxes": {str(int(k)): {"rows": [int(pos[k, 0]), int(pos[k, 0]) + scan.window - 1],
                                    "cols": [int(pos[k, 1]), int(pos[k, 1]) + scan.window - 1],
                                    "effect": round(float(win_effect[k]), 3), "share": round(float(win_share[k]), 3)}
                      for k in ks}}))
    pattern = ok & (effect >= th.pattern_effect)
    if pattern.any():
        ks = np.flatnonzero(pattern)
        out.append(Finding("class-pattern", tuple(int(k) for k in ks), float(effect[ks].min()), {
            "summary": f"{len(ks)} class(es) share an additive high-pass pattern (RMS "
                       f"{effect[ks].min():.2f}-{effect[ks].max():.2f} grey levels; threshold {th.pattern_effect})",
            "effect": {str(int(k)): round(float(effect[k]), 4) for k in ks}}))
    return out


def _round(a: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in a]


def audit(images: np.ndarray, labels: np.ndarray | Sequence[int], *, classes: Sequence[str] | None = None,
          num_classes: int | None = None, reference: tuple[np.ndarray, np.ndarray] | None = None,
          test: tuple[np.ndarray, np.ndarray] | None = None, learnability: bool = True, seed: int = 0,
          epochs: int = PROBE_EPOCHS, thresholds: Thresholds = DEFAULT_THRESHOLDS,
          progress: bool = False, network: bool = False) -> AuditReport:
    """Audit a training set for shortcuts.

    Args:
        images: uint8 (N, 32, 32, 3); labels: N ints in [0, K).
        classes / num_classes: class names / count (default: from the labels; CIFAR-10's names for 10).
        reference: a clean set ``(images, labels)`` of the same classes; when it holds the same images
            in the same order (same shape and labels) the perturbation is measured too.
        test: clean test images ``(images, labels)`` for the learnability gap (needs ``reference``).
        learnability: run the linear probes (the slow part: about 1-3 s per 10,000 images on a CPU).
        seed: every random choice (splits, initialization, batch order) derives from it.
        network: also train a small network on the set (the learnability baseline; torch, slower),
            reported beside the verdict with its own time.

    The report's ``scores`` hold one suspicion score per image (higher: more likely to carry a
    shortcut; see :mod:`.scores`), ``score_kinds`` the findings they come from.
    """
    images, labels, k = check_training_set(images, labels, num_classes)
    names = _class_names(k, classes)
    th = thresholds
    seconds: dict[str, float] = {}
    measurements: dict[str, Any] = {"num_images": int(len(labels)), "class_counts": np.bincount(labels, minlength=k).tolist()}
    contributions: dict[str, Callable[[], np.ndarray] | np.ndarray] = {}

    t = time.perf_counter()
    pixel_scan = scan_pixels(images, labels, k)
    iso_scan = scan_isolated(images, labels, k)
    findings, by_class = _pixel_findings(pixel_scan, th, isolated_pixels(iso_scan, th))
    strength = pixel_scan.strength
    iso_excess = iso_scan.excess(th.share_z)
    measurements["pixel"] = {"max_share": _round(pixel_scan.share.reshape(k, -1).max(axis=1)),
                             "max_strength": _round(strength.reshape(k, -1).max(axis=1)),
                             "isolated_max_share": _round(iso_scan.share.reshape(k, -1).max(axis=1)),
                             "isolated_max_excess": _round(iso_excess.reshape(k, -1).max(axis=1))}
    def pixel_scores() -> np.ndarray:
        return np.maximum(iso_scan.image_scores(images, labels, th.share_z) / th.isolated_excess,
                          flagged_pixel_scores(images, labels, by_class))

    contributions["pixel"] = pixel_scores
    seconds["pixel"] = time.perf_counter() - t

    t = time.perf_counter()
    pattern_scan = scan_patterns(images, labels, k, seed=seed)
    findings += _pattern_findings(pattern_scan, by_class, th, measurements)
    def projection() -> np.ndarray:  # 4 standard deviations count 1
        return pattern_scores(images, labels, pattern_scan.without(_explained_mask(pattern_scan, by_class))) / 4

    contributions["class-pattern"] = projection
    contributions["patch"] = lambda: np.maximum(projection(), pixel_scores())
    seconds["pattern"] = time.perf_counter() - t

    t = time.perf_counter()
    window_scan = scan_windows(images, labels, k)
    found, contributions["recurring-window"] = window_finding(window_scan, labels, th, measurements)
    findings += found
    seconds["windows"] = time.perf_counter() - t

    report = AuditReport(findings, measurements, names, th, pixel_scan, pattern_scan, seconds=seconds,
                         windows=window_scan, contributions=contributions)
    if learnability:
        from .probes import run_probes, scaled_bar
        from .secondorder import scan_second_order

        t = time.perf_counter()
        counts = np.bincount(labels, minlength=k)
        if counts[counts > 0].min() >= 4:
            chance = float(counts.max() / counts.sum())
            found, contributions["second-order"] = second_order_finding(
                scan_second_order(images, labels, k, seed=seed), scaled_bar(th.second_order, chance), th, measurements)
            report.findings += found
        seconds["second_order"] = time.perf_counter() - t

        t = time.perf_counter()
        run_probes(report, images, labels, k, by_class, reference=reference, test=test, seed=seed,
                   epochs=epochs, progress=progress)
        seconds["learnability"] = time.perf_counter() - t
    if network:
        from .network import train_network

        t = time.perf_counter()
        measurements["network"] = train_network(images, labels, k, seed=seed, threshold=th.network_train_accuracy,
                                                progress=progress)
        seconds["network"] = time.perf_counter() - t
    report.finish_scores()
    return report
