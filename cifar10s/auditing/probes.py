"""The learnability part of the audit: linear probes on the set, on its perturbation, and the gap.

Kept apart from :mod:`.verdict`: the detectors that read each image once come first, the probes
(several passes over the set) only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .learnability import LearningCurve, fit_linear, image_features, perturbation_stats, stratified_halves
from .report import AuditReport, Finding
from .training_set import check_training_set

if TYPE_CHECKING:
    from .pixel import PixelShortcut

__all__ = ["run_probes"]


def _explained_columns(by_class: dict[int, list[PixelShortcut]], shape: tuple[int, int, int]) -> np.ndarray:
    """Feature columns of every flagged pixel's 3x3 neighbourhood, for all images alike (so masking
    them uses no label)."""
    h, w, c = shape
    mask = np.zeros(shape, dtype=bool)
    for pixels in by_class.values():
        for p in pixels:
            mask[max(p.row - 1, 0):p.row + 2, max(p.col - 1, 0):p.col + 2] = True
    return np.flatnonzero(mask.ravel())


def _per_class_recall(curve_pred: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    hits = np.bincount(labels, weights=(curve_pred == labels).astype(np.float64), minlength=k)
    return hits / np.maximum(np.bincount(labels, minlength=k), 1)


def _probe(images: np.ndarray, labels: np.ndarray, k: int, *, seed: int, epochs: int, progress: bool,
           drop: np.ndarray | None = None, desc: str = "linear probe") -> tuple[LearningCurve, np.ndarray, Any]:
    """The probe's curve, the held-out labels, and a function giving every image the probability of
    its own label from the half it was not trained on (a second fit, the halves swapped)."""
    tr, te = stratified_halves(labels, seed)
    feats = image_features(images, "highpass")
    if drop is not None and drop.size:
        feats[:, drop] = 0.0
    curve = fit_linear(feats[tr], labels[tr], feats[te], labels[te], num_classes=k, epochs=epochs, seed=seed,
                       progress=progress, desc=desc)

    def own_probability() -> np.ndarray:
        back = fit_linear(feats[te], labels[te], feats[tr], labels[tr], num_classes=k, epochs=epochs, seed=seed,
                          progress=progress, desc=desc + " (halves swapped)")
        out = np.zeros(len(labels))
        out[te] = curve.own_probability
        out[tr] = back.own_probability
        return out

    return curve, labels[te], own_probability


#: Each class needs this many images (two per half) before the probes run.
MIN_IMAGES_PER_CLASS = 4


def scaled_bar(threshold: float, chance: float) -> float:
    """A threshold calibrated on ten balanced classes (chance 0.1), moved to another chance level:
    the same share of the way from chance to 1."""
    return chance + (threshold - 0.1) / 0.9 * (1 - chance)


def _chance(labels: np.ndarray) -> float:
    """Accuracy of always answering the most common label."""
    return float(np.bincount(labels).max() / max(len(labels), 1))


def run_probes(report: AuditReport, images: np.ndarray, labels: np.ndarray, k: int,
               by_class: dict[int, list[PixelShortcut]], *, reference: tuple[np.ndarray, np.ndarray] | None,
               test: tuple[np.ndarray, np.ndarray] | None, seed: int, epochs: int, progress: bool) -> None:
    """Add the probes' curves, measurements and findings to ``report``."""
    th = report.thresholds
    m = report.measurements
    counts = np.bincount(labels, minlength=k)
    if counts[counts > 0].min() < MIN_IMAGES_PER_CLASS:
        m["linear"] = {"skipped": f"a class has fewer than {MIN_IMAGES_PER_CLASS} images"}
        return
    drop = _explained_columns(by_class, images.shape[1:])
    curve, held_labels, own_probability = _probe(images, labels, k, seed=seed, epochs=epochs, progress=progress,
                                                 drop=drop)
    report.curves["set"] = curve
    acc = curve.heldout[-1]
    chance = _chance(held_labels)
    bar = scaled_bar(th.separability, chance)
    recall = _per_class_recall(curve.predictions, held_labels, k)
    m["linear"] = {"features": "highpass", "epochs": epochs, "heldout_accuracy": round(acc, 4),
                   "train_accuracy": round(curve.train[-1], 4), "per_class_recall": [round(float(r), 4) for r in recall],
                   "masked_feature_columns": int(drop.size), "chance": round(chance, 4), "threshold": round(bar, 4)}
    if acc >= bar:
        classes = tuple(int(c) for c in np.flatnonzero(recall >= bar))
        report.findings.append(Finding("linear-separable", classes, acc, {
            "summary": f"a linear model on high-pass features predicts {acc:.1%} of held-out labels after {epochs} "
                       f"epochs (threshold {bar:.0%}, chance {chance:.0%}; clean CIFAR-10 about 16%)",
            "heldout_accuracy": round(acc, 4), "masked_feature_columns": int(drop.size)}))
        # per-image scores only where the probe found something: a second fit, the halves swapped
        report.contributions["linear-separable"] = own_probability() / bar
    if reference is None:
        return
    ref_images, ref_labels, _ = check_training_set(reference[0], reference[1], k, where="reference")
    ref_counts = np.bincount(ref_labels, minlength=k)
    if ref_counts[ref_counts > 0].min() < MIN_IMAGES_PER_CLASS:
        m["reference"] = {"skipped": f"a reference class has fewer than {MIN_IMAGES_PER_CLASS} images"}
        return
    ref_curve, _, _ = _probe(ref_images, ref_labels, k, seed=seed, epochs=epochs, progress=progress,
                             desc="reference probe")
    report.curves["reference"] = ref_curve
    m["reference"] = {"num_images": int(len(ref_labels)), "heldout_accuracy": round(ref_curve.heldout[-1], 4)}
    paired = ref_images.shape == images.shape and np.array_equal(ref_labels, labels)
    m["reference"]["paired"] = bool(paired)
    if paired:
        _perturbation(report, images, ref_images, labels, k, seed=seed, epochs=epochs, progress=progress)
    if test is not None:
        _gap(report, images, labels, ref_images, ref_labels, test, k, seed=seed, epochs=epochs, progress=progress)


def _perturbation(report: AuditReport, images: np.ndarray, ref: np.ndarray, labels: np.ndarray, k: int, *,
                  seed: int, epochs: int, progress: bool) -> None:
    th = report.thresholds
    size = perturbation_stats(images, ref)
    tr, te = stratified_halves(labels, seed)
    delta = np.empty((len(images), int(np.prod(images.shape[1:]))), dtype=np.float32)
    for s in range(0, len(images), 4096):
        block = images[s:s + 4096].astype(np.int16) - ref[s:s + 4096].astype(np.int16)
        delta[s:s + 4096] = block.reshape(len(block), -1) * np.float32(1 / 255)
    curve = fit_linear(delta[tr], labels[tr], delta[te], labels[te], num_classes=k, epochs=epochs, seed=seed,
                       progress=progress, desc="perturbation probe")
    report.curves["perturbation"] = curve
    acc = curve.heldout[-1]
    bar = scaled_bar(th.perturbation_separability, _chance(labels[te]))
    report.measurements["perturbation"] = {"linf": round(size.linf, 5), "linf_255": round(size.linf * 255, 2),
                                           "l2_mean": round(size.l2_mean, 5), "changed_share": round(size.changed_share, 4),
                                           "heldout_accuracy": round(acc, 4)}
    if size.changed_share > 0 and acc >= bar:
        report.findings.append(Finding("separable-perturbation", tuple(range(k)), acc, {
            "summary": f"the perturbation (set - reference; L-inf {size.linf * 255:.1f}/255, mean L2 "
                       f"{size.l2_mean:.3f}) alone predicts {acc:.1%} of held-out labels with a linear model",
            "linf_255": round(size.linf * 255, 2), "l2_mean": round(size.l2_mean, 5),
            "heldout_accuracy": round(acc, 4)}))


def _gap(report: AuditReport, images: np.ndarray, labels: np.ndarray, ref_images: np.ndarray,
         ref_labels: np.ndarray, test: tuple[np.ndarray, np.ndarray], k: int, *, seed: int, epochs: int,
         progress: bool) -> None:
    """Train the same linear model (raw pixels) on the same half of the set and of the reference as
    the probes use; score both on clean test images."""
    th = report.thresholds
    test_images, test_labels, _ = check_training_set(test[0], test[1], k, where="test images")
    test_x = image_features(test_images, "raw")
    half, _ = stratified_halves(labels, seed)
    ref_half, _ = stratified_halves(ref_labels, seed)
    on_set = fit_linear(image_features(images[half], "raw"), labels[half], test_x, test_labels, num_classes=k,
                        epochs=epochs, seed=seed, progress=progress, desc="set -> clean test")
    on_ref = fit_linear(image_features(ref_images[ref_half], "raw"), ref_labels[ref_half], test_x, test_labels,
                        num_classes=k, epochs=epochs, seed=seed, progress=progress, desc="reference -> clean test")
    report.curves["set_on_test"] = on_set
    report.curves["reference_on_test"] = on_ref
    gap = on_ref.heldout[-1] - on_set.heldout[-1]
    report.measurements["learnability_gap"] = {
        "features": "raw", "test_images": int(len(test_labels)), "set_test_accuracy": round(on_set.heldout[-1], 4),
        "reference_test_accuracy": round(on_ref.heldout[-1], 4), "gap": round(gap, 4)}
    if gap >= th.learnability_gap:
        report.findings.append(Finding("learnability-gap", tuple(range(k)), gap, {
            "summary": f"trained on the set, a linear model scores {on_set.heldout[-1]:.1%} on clean test images; "
                       f"trained on the reference, {on_ref.heldout[-1]:.1%}",
            "gap": round(gap, 4)}))
