"""Calibrate and check the shortcut audit's thresholds (``cifar10s/auditing/thresholds.py``).

Builds the corpus from the CIFAR-10 subset: sets without a shortcut (the clean images and their
JPEG-compressed, blurred and sample-wise noised forms, a class-wise pattern keyed to a random
assignment that ignores the labels) and sets with one (OPS, k-pixel OPS, EM and CIFAR-10-S built by
the package under ``--root``; planted class-wise noise, patches, pixels and label-aligned patterns).
Each set is marked ``calibration`` or ``held-out`` (other seeds, strengths, sizes, positions).

For every set the full audit runs, with the clean images it was made from as a paired reference
and the clean test split as test images. The script prints, per statistic, the largest value on
calibration sets without a shortcut and the smallest on calibration sets with one (the thresholds
sit between them), then the detection table of the held-out sets: what was flagged, each
statistic against its threshold, and the margin.

    python benchmarks/audit_calibration.py --cifar10 ../shared/data/cifar-10-mini-python.tar.gz \\
        --root data-audit [--em-root data-audit-em2] [--json out.json]

``--root`` must hold ``ops-k1``, ``ops-k3``, ``em`` and ``cifar10s`` built from the same archive
(``cifar10s build --variant cifar10s --recipe build/recipe-cpu-demo.json ...``, ``--variant ops``,
``--variant ops --pixels 3``); ``--em-root`` optionally holds a second, independent EM build
(another seed on other images) used as a held-out set.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cifar10s.auditing import audit, synthetic
from cifar10s.auditing.thresholds import DEFAULT_THRESHOLDS
from cifar10s.auditing.training_set import from_cifar10, from_variant
from cifar10s.onepixel import apply_shortcuts, search_shortcuts
from cifar10s.store import NotBuiltError

REFERENCE_KINDS = {"separable-perturbation", "learnability-gap"}


@dataclass
class Case:
    name: str
    split: str  # calibration | held-out
    shortcut: bool
    intended: str  # the statistic's finding that should catch it ("" for none; exact patches: "pixel")
    make: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]  # -> images, labels, clean reference


def _subsample(y: np.ndarray, per_class: int, last: bool = False) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == k)[-per_class:] if last else np.flatnonzero(y == k)[:per_class]
                           for k in range(10)])


def corpus(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray, root: Path,
           em_root: Path | None) -> list[Case]:
    def plain(f: Callable[[], np.ndarray]) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return lambda: (f(), y, x)

    def variant(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            v = from_variant(root, name)
            assert np.array_equal(v.labels, y), "the variants must be built from the same archive"
            return v.images, v.labels, x
        return make

    def sub(idx: np.ndarray, f: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            xs, ys = np.ascontiguousarray(x[idx]), y[idx]
            return (f(xs, ys) if f else xs), ys, xs
        return make

    def relabelled(seed: int, eps: int):
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            shuffled = np.random.default_rng(seed).permutation(y)  # labels that ignore the content
            return synthetic.class_noise(x, shuffled, eps, seed=seed), shuffled, x
        return make

    def ops_on_the_fly(k: int, idx: np.ndarray | None = None):
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            xs, ys = (x, y) if idx is None else (np.ascontiguousarray(x[idx]), y[idx])
            return apply_shortcuts(xs, ys, search_shortcuts(xs, ys, pixels_per_class=k)), ys, xs
        return make

    def ops_jittered(eps: int, seed: int):
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            search = search_shortcuts(x, y)
            out = apply_shortcuts(x, y, search).astype(np.int16)
            rng = np.random.default_rng(seed)
            for sc in search.shortcuts:  # every image's shortcut pixel moved off the exact colour
                sel = y == sc.label
                out[sel, sc.row, sc.col] += rng.integers(-eps, eps + 1, (int(sel.sum()), 3))
            return np.clip(out, 0, 255).astype(np.uint8), y, x
        return make

    rng_keys = lambda seed: np.random.default_rng(100 + seed).integers(0, 10, len(y))  # noqa: E731
    cases = [
        # calibration, no shortcut
        Case("clean", "calibration", False, "", plain(lambda: x)),
        Case("clean, 200 per class", "calibration", False, "", sub(_subsample(y, 200))),
        Case("JPEG q75", "calibration", False, "", plain(lambda: synthetic.jpeg(x, 75))),
        Case("Gaussian blur r=1", "calibration", False, "", plain(lambda: synthetic.blur(x, 1.0))),
        Case("uniform noise ±8/255, seed 1", "calibration", False, "", plain(lambda: synthetic.uniform_noise(x, 8, 1))),
        Case("class-wise ±8 keyed to random groups, seed 1", "calibration", False, "",
             plain(lambda: synthetic.class_noise(x, rng_keys(1), 8, seed=1))),
        # calibration, shortcut
        Case("OPS (package build, ops-k1)", "calibration", True, "pixel", variant("ops-k1")),
        Case("OPS 3 pixels (package build, ops-k3)", "calibration", True, "pixel", variant("ops-k3")),
        Case("EM (package build, CPU recipe)", "calibration", True, "linear-separable", variant("em")),
        Case("class-wise noise ±8, seed 1", "calibration", True, "class-pattern",
             plain(lambda: synthetic.class_noise(x, y, 8, seed=1))),
        Case("class-wise noise ±4, seed 1", "calibration", True, "class-pattern",
             plain(lambda: synthetic.class_noise(x, y, 4, seed=1))),
        Case("exact 3x3 patch per class, seed 1", "calibration", True, "pixel",
             plain(lambda: synthetic.class_patch(x, y, 3, seed=1))),
        Case("blended 4x4 patch a=0.5, seed 1", "calibration", True, "patch",
             plain(lambda: synthetic.class_patch(x, y, 4, seed=1, alpha=0.5))),
        Case("class-wise ±8 on shuffled labels, seed 1", "calibration", True, "class-pattern", relabelled(1, 8)),
        # held-out, no shortcut
        Case("clean test split (2,000)", "held-out", False, "", lambda: (tx, ty, tx)),
        Case("clean, other 500 per class", "held-out", False, "", sub(_subsample(y, 500, last=True))),
        Case("JPEG q50", "held-out", False, "", plain(lambda: synthetic.jpeg(x, 50))),
        Case("JPEG q90", "held-out", False, "", plain(lambda: synthetic.jpeg(x, 90))),
        Case("Gaussian blur r=0.6", "held-out", False, "", plain(lambda: synthetic.blur(x, 0.6))),
        Case("Gaussian blur r=1.5", "held-out", False, "", plain(lambda: synthetic.blur(x, 1.5))),
        Case("uniform noise ±8/255, seed 2", "held-out", False, "", plain(lambda: synthetic.uniform_noise(x, 8, 2))),
        Case("uniform noise ±4/255, seed 3", "held-out", False, "", plain(lambda: synthetic.uniform_noise(x, 4, 3))),
        Case("class-wise ±4 keyed to random groups, seed 2", "held-out", False, "",
             plain(lambda: synthetic.class_noise(x, rng_keys(2), 4, seed=2))),
        # held-out, shortcut
        Case("CIFAR-10-S (package build: EM + OPS)", "held-out", True, "pixel", variant("cifar10s")),
        Case("OPS 2 pixels (onepixel, on the fly)", "held-out", True, "pixel", ops_on_the_fly(2)),
        Case("OPS on 200 per class (onepixel)", "held-out", True, "pixel", ops_on_the_fly(1, _subsample(y, 200))),
        Case("1 pixel per class, any colour, seed 2", "held-out", True, "pixel",
             plain(lambda: synthetic.class_pixels(x, y, 1, seed=2, corner_colours=False))),
        Case("OPS, each pixel's colour jittered ±3 (not exact), seed 2", "held-out", True, "patch",
             ops_jittered(3, 2)),
        Case("OPS, then JPEG q75", "held-out", True, "patch",
             lambda: (synthetic.jpeg(apply_shortcuts(x, y, search_shortcuts(x, y)), 75), y, x)),
        Case("class-wise noise ±2, seed 2", "held-out", True, "class-pattern",
             plain(lambda: synthetic.class_noise(x, y, 2, seed=2))),
        Case("class-wise noise ±6, seed 2", "held-out", True, "class-pattern",
             plain(lambda: synthetic.class_noise(x, y, 6, seed=2))),
        Case("exact 2x2 patch per class, seed 2", "held-out", True, "pixel",
             plain(lambda: synthetic.class_patch(x, y, 2, seed=2))),
        Case("blended 3x3 patch a=0.3, seed 2", "held-out", True, "patch",
             plain(lambda: synthetic.class_patch(x, y, 3, seed=2, alpha=0.3))),
        Case("blended 5x5 patch a=0.25 at (4, 4), seed 3", "held-out", True, "patch",
             plain(lambda: synthetic.class_patch(x, y, 5, seed=3, position=(4, 4), alpha=0.25))),
        Case("class-wise ±4 on shuffled labels, seed 2", "held-out", True, "class-pattern", relabelled(2, 4)),
    ]
    if em_root is not None:
        def em2() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            v = from_variant(em_root, "em")
            c = from_variant(em_root, "clean")
            return v.images, v.labels, c.images
        cases.append(Case("EM, second build (seed 1, other images)", "held-out", True, "linear-separable", em2))
    return cases


def measure(case: Case, test: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    images, labels, ref = case.make()
    t = time.perf_counter()
    report = audit(images, labels, reference=(ref, labels), test=test)
    seconds = time.perf_counter() - t
    m = report.measurements
    th = DEFAULT_THRESHOLDS
    pat = m["pattern"]
    # a window counts as a patch candidate only where its share passes too
    patch = [e if s >= th.patch_share else 0.0 for e, s in zip(pat["window_effect"], pat["window_share"])]
    return {
        "name": case.name, "split": case.split, "shortcut": case.shortcut, "intended": case.intended,
        "n": int(len(labels)), "seconds": round(seconds, 1),
        "findings": {f.kind: len(f.classes) for f in report.findings},
        "kinds_without_reference": sorted({f.kind for f in report.findings} - REFERENCE_KINDS),
        "pixel_strength": m["pixel"]["max_strength"], "pattern_effect": pat["effect"], "pattern_z": pat["z_energy"],
        "patch_effect": patch, "window_effect": pat["window_effect"], "window_share": pat["window_share"],
        "linear": m["linear"]["heldout_accuracy"],
        "perturbation": m["perturbation"]["heldout_accuracy"], "linf_255": m["perturbation"]["linf_255"],
        "gap": m["learnability_gap"]["gap"], "curve": list(report.curves["set"].heldout),
    }


#: statistic -> (threshold field, the sets it is meant to catch: an intended kind, or "*" for every
#: set with a shortcut)
STATS = {
    "pixel_strength": ("pixel_strength", "pixel"),
    "pattern_effect": ("pattern_effect", "class-pattern"),
    "patch_effect": ("patch_effect", "patch"),
    "linear": ("separability", "linear-separable"),
    "perturbation": ("perturbation_separability", "*"),
    "gap": ("learnability_gap", "*"),
}


def _top(row: dict[str, Any], stat: str) -> float:
    """The set's value: its strongest class for per-class statistics."""
    v = row[stat]
    return max(v) if isinstance(v, list) else float(v)


def _weakest(row: dict[str, Any], stat: str) -> float:
    v = row[stat]
    return min(v) if isinstance(v, list) else float(v)


def calibration_summary(rows: list[dict[str, Any]]) -> list[str]:
    th = DEFAULT_THRESHOLDS.to_dict()
    lines = ["| statistic | largest on a calibration set without a shortcut | smallest on a calibration set "
             "it is meant to catch (strongest class / weakest class) | threshold |", "| --- | --- | --- | --- |"]
    for stat, (field, kind) in STATS.items():
        neg = [_top(r, stat) for r in rows if r["split"] == "calibration" and not r["shortcut"]]
        pos = [r for r in rows if r["split"] == "calibration" and r["shortcut"] and kind in (r["intended"], "*")]
        shown = (f"{min(_top(r, stat) for r in pos):.4g} / {min(_weakest(r, stat) for r in pos):.4g}"
                 if pos else "(no calibration set)")
        lines.append(f"| {stat} | {max(neg):.4g} | {shown} | {th[field]} |" if neg else f"| {stat} | - | {shown} | "
                     f"{th[field]} |")
    return lines


def detection_table(rows: list[dict[str, Any]], split: str) -> list[str]:
    th = DEFAULT_THRESHOLDS
    lines = ["| set (images) | shortcut? | flagged without reference | findings (classes) | pixel strength | "
             "pattern effect | patch effect | linear probe | perturbation probe | gap |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["split"] != split:
            continue
        flagged = bool(r["kinds_without_reference"])
        ok = flagged == r["shortcut"]
        found = ", ".join(f"{k} {v}" for k, v in r["findings"].items()) or "-"
        lines.append(
            f"| {r['name']} ({r['n']}) | {'yes' if r['shortcut'] else 'no'} | {'**yes**' if flagged else 'no'}"
            f"{'' if ok else ' (WRONG)'} | {found} | {_top(r, 'pixel_strength'):.3f} | {_top(r, 'pattern_effect'):.2f} | "
            f"{_top(r, 'patch_effect'):.2f} | {r['linear']:.3f} | {r['perturbation']:.3f} | {r['gap']:+.3f} |")
    lines.append(f"\nthresholds: pixel strength {th.pixel_strength} (share {th.pixel_share}); pattern effect "
                 f"{th.pattern_effect} grey levels; patch effect {th.patch_effect} (share {th.patch_share}); both after "
                 f"the relabelled null's mean + {th.null_margin} sd; linear probe {th.separability}; "
                 f"perturbation probe {th.perturbation_separability}; gap {th.learnability_gap}")
    return lines


def class_size_table(x: np.ndarray, y: np.ndarray, sizes: list[int], seeds: int = 12) -> list[str]:
    """Random class-balanced subsets of clean images (train + test): how often is anything flagged,
    and how high does each statistic get (over all classes, also those too small for a claim)?"""
    lines = ["| images per class | sets flagged | fixed-colour strength | pattern effect | patch effect | linear probe |",
             "| --- | --- | --- | --- | --- | --- |"]
    th = DEFAULT_THRESHOLDS
    for per in sizes:
        flagged = 0
        worst = [0.0, 0.0, 0.0, 0.0]
        for seed in range(seeds):
            rng = np.random.default_rng(1000 + seed)
            idx = np.concatenate([rng.choice(np.flatnonzero(y == k), per, replace=False) for k in range(10)])
            r = audit(x[idx], y[idx], seed=seed)
            flagged += bool(r.findings)
            m = r.measurements
            pat = m["pattern"]
            values = [max(m["pixel"]["max_strength"]), max(pat["effect"]),
                      max([0.0] + [e for e, sh in zip(pat["window_effect"], pat["window_share"]) if sh >= th.patch_share]),
                      m["linear"]["heldout_accuracy"]]
            worst = [max(a, b) for a, b in zip(worst, values)]
        lines.append(f"| {per} | {flagged} of {seeds} | {worst[0]:.3f} | {worst[1]:.2f} | {worst[2]:.2f} | {worst[3]:.3f} |")
    return lines


# --- second generation: partial poisoning, shortcuts that move, second-order noise, per-image AUROC --

V2_KINDS = ("pixel", "recurring-window", "second-order", "patch", "class-pattern", "linear-separable")


def v2_corpus(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> list[tuple[str, str, bool, Callable[[], tuple[np.ndarray, np.ndarray]]]]:
    """(name, split, shortcut?, make) for the sets of the second calibration: made from the subset only."""
    ops = lambda: apply_shortcuts(x, y, search_shortcuts(x, y))  # noqa: E731
    ops_mid = lambda: apply_shortcuts(x, y, search_shortcuts(x, y, pixels_per_class=2))  # noqa: E731

    def part(make: Callable[[], np.ndarray], ratio: float, seed: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        return lambda: (synthetic.partial(make(), x, synthetic.poison_share(y, ratio, seed)), y)

    def same(make: Callable[[], np.ndarray]) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        return lambda: (make(), y)

    return [
        # calibration, no shortcut (thresholds sit above every value here)
        ("clean", "calibration", False, same(lambda: x)),
        ("JPEG q75", "calibration", False, same(lambda: synthetic.jpeg(x, 75))),
        ("Gaussian blur r=1", "calibration", False, same(lambda: synthetic.blur(x, 1.0))),
        ("uniform noise ±8, seed 1", "calibration", False, same(lambda: synthetic.uniform_noise(x, 8, 1))),
        ("Gaussian noise 16/255, seed 1", "calibration", False, same(lambda: synthetic.gaussian_noise(x, 16, 1))),
        ("translation ±4 (zero fill), seed 1", "calibration", False, same(lambda: synthetic.translate(x, 4, 1))),
        ("random 3x3 patch per image, seed 1", "calibration", False, same(lambda: synthetic.random_patches(x, 3, 1))),
        # calibration, shortcut (thresholds sit below)
        ("OPS on 25% of each class, seed 1", "calibration", True, part(ops, 0.25, 1)),
        ("solid 3x3 patch moving, 25%, seed 1", "calibration", True,
         part(lambda: synthetic.moving_patch(x, y, 3, 1, solid=True), 0.25, 1)),
        ("class-wise filtered noise L2=1, seed 1", "calibration", True,
         same(lambda: synthetic.class_filtered_noise(x, y, 1.0, 1))),
        ("class-wise filtered noise L2=0.5, seed 1", "calibration", True,
         same(lambda: synthetic.class_filtered_noise(x, y, 0.5, 1))),
        # held-out, no shortcut
        ("clean test split (2,000)", "held-out", False, lambda: (tx, ty)),
        ("grayscale", "held-out", False, same(lambda: synthetic.grayscale(x))),
        ("brightness/contrast jitter 0.2, seed 2", "held-out", False, same(lambda: synthetic.jitter(x, seed=2))),
        ("Gaussian noise 16/255, seed 2", "held-out", False, same(lambda: synthetic.gaussian_noise(x, 16, 2))),
        ("translation ±4 + flip, seed 2", "held-out", False,
         same(lambda: synthetic.flip(synthetic.translate(x, 4, 2), 2))),
        ("random 3x3 patch per image, seed 2", "held-out", False, same(lambda: synthetic.random_patches(x, 3, 2))),
        ("one of 5 random 3x3 patches per image, seed 2", "held-out", False,
         same(lambda: synthetic.random_patches(x, 3, 2, pool=5))),
        ("random 4x4 patch per image, seed 3", "held-out", False, same(lambda: synthetic.random_patches(x, 4, 3))),
        # held-out, shortcut
        ("OPS on 10% of each class, seed 2", "held-out", True, part(ops, 0.1, 2)),
        ("OPS on 40% of each class, seed 2", "held-out", True, part(ops, 0.4, 2)),
        ("2-pixel OPS on 10%, seed 3", "held-out", True, part(ops_mid, 0.1, 3)),
        ("3x3 patch (random pixels) moving, 10%, seed 2", "held-out", True,
         part(lambda: synthetic.moving_patch(x, y, 3, 2), 0.1, 2)),
        ("4x4 patch moving, 100%, seed 3", "held-out", True, same(lambda: synthetic.moving_patch(x, y, 4, 3))),
        ("exact 3x3 patch fixed, 10%, seed 2", "held-out", True,
         part(lambda: synthetic.class_patch(x, y, 3, seed=2), 0.1, 2)),
        ("AR noise L2=1 (Sandoval-Segura et al.), seed 2", "held-out", True,
         same(lambda: synthetic.ar_noise(x, y, 1.0, 2))),
        ("AR noise L2=0.5, seed 3", "held-out", True, same(lambda: synthetic.ar_noise(x, y, 0.5, 3))),
    ]


def v2_rows(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray, only: str | None) -> list[dict[str, Any]]:
    rows = []
    for name, split, shortcut, make in v2_corpus(x, y, tx, ty):
        if only and only not in name:
            continue
        images, labels = make()
        t = time.perf_counter()
        r = audit(images, labels)
        m = r.measurements
        th = DEFAULT_THRESHOLDS
        row = {"name": name, "split": split, "shortcut": shortcut, "n": int(len(labels)),
               "seconds": round(time.perf_counter() - t, 1), "findings": {f.kind: len(f.classes) for f in r.findings},
               "pixel_strength": max(m["pixel"]["max_strength"]), "isolated": max(m["pixel"]["isolated_max_excess"]),
               "window": max(m["windows"]["excess"]), "second_order": m["second_order"]["heldout_accuracy"],
               "second_order_bar": m["second_order"]["threshold"],
               "pattern": max(m["pattern"]["effect"]),
               "patch": max([0.0] + [e for e, sh in zip(m["pattern"]["window_effect"], m["pattern"]["window_share"])
                                     if sh >= th.patch_share]),
               "linear": m["linear"]["heldout_accuracy"]}
        rows.append(row)
        print(f"{name}: {row['findings'] or 'nothing'} ({row['seconds']} s)", flush=True)
    return rows


#: kind -> how to poison every image (the AUROC table)
def auroc_kinds(x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    return {
        "OPS (onepixel search)": lambda: apply_shortcuts(x, y, search_shortcuts(x, y)),
        "3x3 patch moving (random pixels), seed 4": lambda: synthetic.moving_patch(x, y, 3, 4),
        "AR noise L2=1, seed 4": lambda: synthetic.ar_noise(x, y, 1.0, 4),
        "class-wise noise ±8, seed 4": lambda: synthetic.class_noise(x, y, 8, seed=4),
        "blended 4x4 patch a=0.5 (fixed place), seed 4": lambda: synthetic.class_patch(x, y, 4, seed=4, alpha=0.5),
    }


def auroc_rows(x: np.ndarray, y: np.ndarray, ratios: tuple[float, ...], only: str | None) -> list[dict[str, Any]]:
    """Per kind and ratio: the verdict, the kinds found, and the per-image AUROC of the scores
    (at 100%: the poisoned images' scores against the same images' scores in the clean set's audit)."""
    from cifar10s.auditing.scores import auroc

    clean = audit(x, y)
    out = []
    for kind, make in auroc_kinds(x, y).items():
        if only and only not in kind:
            continue
        poisoned = make()
        for ratio in ratios:
            mask = synthetic.poison_share(y, ratio, seed=7)
            r = audit(synthetic.partial(poisoned, x, mask), y)
            if mask.all():
                a = auroc(np.r_[np.ones(len(y), bool), np.zeros(len(y), bool)], np.r_[r.scores, clean.scores])
            else:
                a = auroc(mask, r.scores)
            row = {"kind": kind, "ratio": ratio, "flagged": r.shortcut_found, "findings": sorted({f.kind for f in r.findings}),
                   "score_kinds": r.score_kinds, "auroc": round(a, 4)}
            print(row, flush=True)
            out.append(row)
    return out


def print_v2(rows: list[dict[str, Any]], aurocs: list[dict[str, Any]]) -> None:
    th = DEFAULT_THRESHOLDS
    stats = [("isolated", "isolated-pixel excess", th.isolated_excess), ("window", "recurring-window excess",
             th.window_excess), ("second_order", "second-order accuracy", th.second_order)]
    print("\n| statistic | largest, calibration sets without a shortcut | smallest, calibration sets it is meant to catch | threshold |")
    print("| --- | --- | --- | --- |")
    intended = {"isolated": "OPS", "window": "moving", "second_order": "filtered"}
    for key, label, value in stats:
        neg = [r[key] for r in rows if r["split"] == "calibration" and not r["shortcut"]]
        pos = [r[key] for r in rows if r["split"] == "calibration" and r["shortcut"] and intended[key] in r["name"]]
        print(f"| {label} | {max(neg):.4g} | {min(pos):.4g} | {value} |" if neg and pos else f"| {label} | - | - | {value} |")
    for split in ("calibration", "held-out"):
        print(f"\n### {split}\n")
        print("| set (images) | shortcut? | flagged | findings (classes) | isolated pixel | recurring window | "
              "second-order | pattern | patch | linear probe | seconds |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            if r["split"] != split:
                continue
            flagged = bool(r["findings"])
            found = ", ".join(f"{k} {v}" for k, v in r["findings"].items()) or "-"
            print(f"| {r['name']} ({r['n']}) | {'yes' if r['shortcut'] else 'no'} | "
                  f"{'**yes**' if flagged else 'no'}{'' if flagged == r['shortcut'] else ' (WRONG)'} | {found} | "
                  f"{r['isolated']:.3f} | {r['window']:.3f} | {r['second_order']:.3f} | {r['pattern']:.2f} | "
                  f"{r['patch']:.2f} | {r['linear']:.3f} | {r['seconds']} |")
    if aurocs:
        ratios = sorted({a["ratio"] for a in aurocs})
        print("\n| kind | " + " | ".join(f"{int(q * 100)}%" for q in ratios) + " |")
        print("| --- | " + " | ".join("---" for _ in ratios) + " |")
        for kind in dict.fromkeys(a["kind"] for a in aurocs):
            cells = []
            for q in ratios:
                [a] = [a for a in aurocs if a["kind"] == kind and a["ratio"] == q]
                cells.append(f"{a['auroc']:.3f} ({'/'.join(a['score_kinds']) if a['flagged'] else 'not flagged'})")
            print(f"| {kind} | " + " | ".join(cells) + " |")


def write_pictures(archive: Path, folder: Path) -> None:
    from cifar10s.auditing.picture import draw_report
    from cifar10s.show import save_png

    src = from_cifar10(archive)
    x, y = src.images, src.labels
    sets = {"audit-moving-patch.png": ("3x3 patch at random places on 25% of each class (seed 4)",
                                       synthetic.partial(synthetic.moving_patch(x, y, 3, 4), x,
                                                         synthetic.poison_share(y, 0.25, 7))),
            "audit-ar-noise.png": ("AR class-wise noise, L2 = 1 (seed 4)", synthetic.ar_noise(x, y, 1.0, 4))}
    folder.mkdir(parents=True, exist_ok=True)
    for name, (title, images) in sets.items():
        report = audit(images, y, classes=src.classes, reference=(x, y))
        save_png(draw_report(report, title=f"cifar10s audit: {title}"), folder / name)
        print(f"wrote {folder / name}: {report.summary().splitlines()[0]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar10", type=Path, required=True, help="the CIFAR-10 archive the variants were built from")
    p.add_argument("--root", type=Path, default=Path("data-audit"), help="root holding ops-k1, ops-k3, em and cifar10s")
    p.add_argument("--em-root", type=Path, default=None, help="root holding a second EM build and its clean set")
    p.add_argument("--json", type=Path, default=None, help="write every row here")
    p.add_argument("--only", default=None, help="run only the sets whose name contains this")
    p.add_argument("--from-json", type=Path, default=None, help="print the tables of an earlier run's rows")
    p.add_argument("--class-sizes", type=int, nargs="*", default=None,
                   help="instead: audit random clean subsets with this many images per class (12 each)")
    p.add_argument("--v2", action="store_true",
                   help="instead: the second calibration (partial poisoning, moving patches, second-order noise, "
                        "clean transformations) and the per-image AUROC table; no built variants needed")
    p.add_argument("--ratios", type=float, nargs="*", default=[0.1, 0.25, 0.5, 1.0], help="poison ratios (--v2)")
    p.add_argument("--pictures", type=Path, default=None,
                   help="instead: write the docs' example pictures (a moving 3x3 patch on 25%% of each class, AR "
                        "noise) into this folder")
    args = p.parse_args()
    if args.pictures:
        write_pictures(args.cifar10, args.pictures)
        return
    if args.v2:
        src = from_cifar10(args.cifar10)
        assert src.test is not None
        rows = v2_rows(src.images, src.labels, src.test.images, src.test.labels, args.only)
        aurocs = auroc_rows(src.images, src.labels, tuple(args.ratios), args.only) if args.ratios else []
        if args.json:
            args.json.write_text(json.dumps({"rows": rows, "auroc": aurocs}, indent=1))
        print_v2(rows, aurocs)
        return
    if args.from_json:
        print_tables(json.loads(args.from_json.read_text()))
        return
    src = from_cifar10(args.cifar10)
    assert src.test is not None
    x, y = src.images, src.labels
    test = (src.test.images, src.test.labels)
    if args.class_sizes:
        both_x, both_y = np.concatenate([x, test[0]]), np.concatenate([y, test[1]])
        print("\n".join(class_size_table(both_x, both_y, args.class_sizes)))
        return
    rows = []
    for case in corpus(x, y, src.test.images, src.test.labels, args.root, args.em_root):
        if args.only and args.only not in case.name:
            continue
        try:
            row = measure(case, test)
        except NotBuiltError as exc:
            print(f"{case.name}: SKIPPED ({exc})", flush=True)
            continue
        rows.append(row)
        print(f"{row['name']}: {row['findings'] or 'nothing'} ({row['seconds']} s)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print_tables(rows)


def print_tables(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["name"] == "clean":
            print(f"\nclean probe curve (thresholds.CLEAN_PROBE_CURVE): {tuple(r['curve'])}")
    print("\n## calibration\n")
    print("\n".join(calibration_summary(rows)))
    for split in ("calibration", "held-out"):
        print(f"\n## {split} sets\n")
        print("\n".join(detection_table(rows, split)))


if __name__ == "__main__":
    main()
