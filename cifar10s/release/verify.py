"""Compare a build of CIFAR-10-S with a release and say exactly what matched.

What must match **bit for bit** (it is deterministic given its inputs):

* every file against its own manifest (sha256), in both the build and the release;
* the clean arrays and the CIFAR-10 source fingerprint;
* the OPS choice (pixel, colour, score of every class), and the search re-run on the release's
  clean images;
* everything downstream of a fixed EM noise: ``clean + noise`` = the EM images, and OPS written on
  them = the CIFAR-10-S images, recomputed from the release's own noise and from the build's.

What is compared **with a stated tolerance**: the EM noise itself, since a fresh GPU run is not
bit-reproducible across machines (share of identical int8 values, max and mean |difference|),
and **by effect**: a short training run on the build's CIFAR-10-S must still fail to generalise to
the clean test set (see :mod:`cifar10s.release.effect`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..em import apply_noise
from ..folder import VariantFolder, open_folder
from ..onepixel import apply_shortcuts, search_shortcuts
from ..store import (
    EM_NOISE,
    SHORTCUT_FILE,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IntegrityError,
    data_dir,
    is_complete,
)
from .builders import load_shortcut


@dataclass(frozen=True)
class EMTolerance:
    """How close a rebuilt EM noise must be to the release's (values in int8 units of 1/255)."""

    min_identical_share: float = 0.0
    max_abs_difference: int = 16  # the widest possible: both lie in [-8, 8]

    def describe(self) -> str:
        return (f"share of identical noise values >= {self.min_identical_share:.3f} and "
                f"max |difference| <= {self.max_abs_difference}/255")

    @classmethod
    def of_recipe(cls, recipe: dict[str, Any]) -> EMTolerance | None:
        """The tolerance a recipe record states (its ``verify`` section), or None if it states none."""
        v = recipe.get("verify") if isinstance(recipe, dict) else None
        if not isinstance(v, dict):
            return None
        return cls(float(v.get("em_min_identical", 0.0)), int(v.get("em_max_diff", 16)))


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    kind: str = "exact"  # "exact", "tolerance" or "effect"


@dataclass
class VerifyReport:
    build: str
    release: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def add(self, name: str, passed: bool, detail: str, kind: str = "exact") -> None:
        self.checks.append(Check(name, bool(passed), detail, kind))

    def to_dict(self) -> dict[str, Any]:
        return {"build": self.build, "release": self.release, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks]}

    def to_text(self) -> str:
        lines = [f"verify build {self.build}", f"   against release {self.release}"]
        for c in self.checks:
            lines.append(f"  [{'PASS' if c.passed else 'FAIL'}] ({c.kind}) {c.name}: {c.detail}")
        lines.append("RESULT: " + ("everything matched" if self.passed else "MISMATCH (see FAIL lines)"))
        return "\n".join(lines)


def _folders(root: Path) -> dict[str, Path]:
    d = data_dir(root)
    return {p.name: p for p in sorted(d.iterdir()) if is_complete(p)} if d.is_dir() else {}


def _sha(folder: VariantFolder, name: str) -> str | None:
    return folder.sha256(name) if folder.has(name) else None


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shapes differ: {a.shape} vs {b.shape}"
    diff = np.any(a != b, axis=tuple(range(1, a.ndim))) if a.ndim > 1 else a != b
    idx = np.flatnonzero(diff)
    return "identical" if idx.size == 0 else f"{idx.size} of {len(a)} images differ (first: index {idx[0]})"


def verify_build(
    build_root: str | os.PathLike[str],
    release_root: str | os.PathLike[str],
    *,
    em_tolerance: EMTolerance | None = None,
    effect: bool = True,
    effect_epochs: int = 3,
    effect_max_accuracy: float | None = None,
    device: str | None = None,
) -> VerifyReport:
    """Check the build under ``build_root`` against the release under ``release_root``.

    Both are data roots (holding ``cifar10s-v1/``); a release fetched from the Hub is installed as
    such a root by :func:`cifar10s.hub.client.fetch_variant`. ``effect_max_accuracy`` defaults to the
    accuracy of the same short run on the clean training set minus 0.15. ``em_tolerance``
    defaults to the one the release's recipe states (``verify`` in recipes from v2 on), else the
    widest (report only); the report says which recipe and which tolerance were used.
    """
    build, release = Path(build_root), Path(release_root)
    report = VerifyReport(str(build), str(release))
    bf, rf = _folders(build), _folders(release)
    manifests: dict[tuple[str, str], VariantFolder] = {}
    for side, folders in (("build", bf), ("release", rf)):
        if not folders:
            report.add(f"{side} present", False, f"no built variants under {data_dir(build if side == 'build' else release)}")
        for name, folder in folders.items():
            try:
                manifests[(side, name)] = open_folder(folder, check_hashes=True)
                report.add(f"{side}/{name} integrity", True, "every file matches its manifest sha256")
            except IntegrityError as exc:
                report.add(f"{side}/{name} integrity", False, str(exc))
    if not report.passed:
        return report
    shared = sorted(set(bf) & set(rf))
    missing = sorted(set(rf) - set(bf))
    if missing:
        report.add("variants present", False, f"release has {missing}, the build does not")
    if "clean" not in shared:
        report.add("clean data", False, "both sides need the clean folder")
        return report

    bc, rc = manifests[("build", "clean")], manifests[("release", "clean")]
    report.add("source fingerprint", bc.source.fingerprint == rc.source.fingerprint,
               f"build {bc.source.fingerprint[:16]} vs release {rc.source.fingerprint[:16]}"
               + ("" if rc.source.official else " (release NOT built from official CIFAR-10)"))
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        report.add(f"clean/{name}", _sha(bc, name) == _sha(rc, name), f"sha256 {str(_sha(bc, name))[:16]} vs {str(_sha(rc, name))[:16]}")

    clean_x = np.asarray(rc.load(TRAIN_IMAGES))
    labels = np.asarray(rc.load(TRAIN_LABELS))
    for name in shared:
        bm, rm = manifests[("build", name)], manifests[("release", name)]
        if rm.has(SHORTCUT_FILE):
            b_search, r_search = load_shortcut(bf[name]), load_shortcut(rf[name])
            report.add(f"{name} OPS choice", b_search == r_search,
                       "pixels, colours and scores identical" if b_search == r_search
                       else f"build {[(s.row, s.col, s.colour) for s in b_search.shortcuts]} vs release "
                            f"{[(s.row, s.col, s.colour) for s in r_search.shortcuts]}")
            again = search_shortcuts(clean_x, labels, pixels_per_class=r_search.pixels_per_class,
                                     objective=r_search.objective)  # type: ignore[arg-type]
            report.add(f"{name} OPS re-searched on release clean data", again == r_search,
                       "release's shortcut.json is what the search gives" if again == r_search
                       else "the release's shortcut.json is NOT what the search gives on its clean data")
        if name.startswith("ops"):
            report.add(f"{name}/{TRAIN_IMAGES}", _sha(bm, TRAIN_IMAGES) == _sha(rm, TRAIN_IMAGES),
                       "bit-identical" if _sha(bm, TRAIN_IMAGES) == _sha(rm, TRAIN_IMAGES) else "differs")

    if "em" in shared:
        _check_em(report, bf, rf, manifests, clean_x, labels, em_tolerance)
    if effect and "cifar10s" in bf:
        _check_effect(report, bf, manifests, effect_epochs, effect_max_accuracy, device)
    return report


def _check_em(report: VerifyReport, bf: dict[str, Path], rf: dict[str, Path],
              manifests: dict[tuple[str, str], VariantFolder], clean_x: np.ndarray, labels: np.ndarray,
              tol: EMTolerance | None) -> None:
    bm, rm = manifests[("build", "em")], manifests[("release", "em")]
    b_noise = np.asarray(bm.load(EM_NOISE))
    r_noise = np.asarray(rm.load(EM_NOISE))
    b_recipe, r_recipe = bm.recipe, rm.recipe
    report.add("EM recipe", b_recipe == r_recipe,
               f"build {b_recipe.get('version')} vs release {r_recipe.get('version')}")
    if tol is None:
        stated = EMTolerance.of_recipe(r_recipe)
        tol, source = (stated, f"stated by recipe {r_recipe.get('version')}") if stated else (
            EMTolerance(), f"default: recipe {r_recipe.get('version')} states none")
    else:
        source = "given"
    report.add("EM tolerance", True, f"{tol.describe()} ({source})", "tolerance")
    # Downstream of a fixed EM: recompute from each side's own noise, compare bit for bit.
    recomposed_by_side: dict[str, np.ndarray] = {}
    for side, folders, noise in (("release", rf, r_noise), ("build", bf, b_noise)):
        m_em = manifests[(side, "em")]
        em_x = np.asarray(m_em.load(TRAIN_IMAGES))
        recomposed = recomposed_by_side[side] = apply_noise(clean_x, noise)
        report.add(f"{side}: clean + EM noise == em images", np.array_equal(recomposed, em_x),
                   _first_difference(recomposed, em_x))
        if "cifar10s" in folders:
            m_s = manifests[(side, "cifar10s")]
            composed = apply_shortcuts(recomposed, labels, load_shortcut(folders["cifar10s"]))
            s_x = np.asarray(m_s.load(TRAIN_IMAGES))
            report.add(f"{side}: OPS on EM images == cifar10s images", np.array_equal(composed, s_x),
                       _first_difference(composed, s_x))
    if "cifar10s" in bf and "cifar10s" in rf:
        # With the release's EM fixed, the build's pipeline must give the release's bytes.
        composed = apply_shortcuts(recomposed_by_side["release"], labels, load_shortcut(bf["cifar10s"]))
        r_s = np.asarray(manifests[("release", "cifar10s")].load(TRAIN_IMAGES))
        report.add("build pipeline on release EM == release cifar10s", np.array_equal(composed, r_s),
                   _first_difference(composed, r_s))
    if b_noise.shape != r_noise.shape:
        report.add("EM noise", False, f"shapes differ: {b_noise.shape} vs {r_noise.shape}", "tolerance")
        return
    same = float(np.mean(b_noise == r_noise))
    diff = np.abs(b_noise.astype(np.int16) - r_noise.astype(np.int16))
    ok = same >= tol.min_identical_share and int(diff.max()) <= tol.max_abs_difference
    report.add("EM noise vs release", ok,
               f"{same:.4f} of values identical, max |diff| {int(diff.max())}/255, mean |diff| "
               f"{float(diff.mean()):.3f}/255; required: {tol.describe()}"
               + ("; bit-identical" if same == 1.0 else ""), "tolerance")


def _check_effect(report: VerifyReport, bf: dict[str, Path], manifests: dict[tuple[str, str], VariantFolder],
                  epochs: int, max_accuracy: float | None, device: str | None) -> None:
    from .effect import train_and_test

    clean_m, s_m = manifests[("build", "clean")], manifests[("build", "cifar10s")]
    test_x = clean_m.load(TEST_IMAGES)
    test_y = np.asarray(clean_m.load(TEST_LABELS))
    labels = np.asarray(s_m.load(TRAIN_LABELS))
    acc = train_and_test(s_m.load(TRAIN_IMAGES), labels, test_x, test_y,
                         epochs=epochs, device=device)
    if max_accuracy is None:
        clean_acc = train_and_test(clean_m.load(TRAIN_IMAGES),
                                   np.asarray(clean_m.load(TRAIN_LABELS)), test_x, test_y,
                                   epochs=epochs, device=device)
        max_accuracy = clean_acc - 0.15
        basis = f"clean-trained {clean_acc:.3f} - 0.15"
    else:
        basis = "given"
    report.add("effect: short training on build cifar10s", acc <= max_accuracy,
               f"clean test accuracy {acc:.3f} after {epochs} epochs of a small CNN; must be <= "
               f"{max_accuracy:.3f} ({basis})", "effect")
