"""Build dataset variants from a CIFAR-10 source into ``<root>/cifar10s-v1/<variant>/``.

Each builder reads its inputs (the clean folder, for everything but ``clean`` itself), computes
the variant, and publishes it atomically under the build lock. A variant that is already
complete, verified and made from the same source is left alone (``force=True`` rebuilds).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..folder import VariantFolder, open_folder
from ..onepixel import ShortcutSearch, apply_shortcuts, search_shortcuts
from ..sources.cifar10 import CIFAR10Arrays, load_cifar10, resolve_cifar10
from ..store import (
    EM_LOG,
    EM_NOISE,
    SHORTCUT_FILE,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    WORK_DIR,
    IntegrityError,
    atomic_write_bytes,
    build_lock,
    clean_folder,
    data_dir,
    environment_record,
    file_entry,
    is_complete,
    publish,
    read_manifest,
    remove_stale_staging,
    save_array,
    staging_folder,
    variant_folder,
)
from ..variants import VariantSpec
from .recipe import Recipe, load_recipe

#: Bump when the OPS search or its application changes output bytes (invalidates cached builds).
OPS_ALGORITHM_VERSION = 1


def _build_clean(root: Path, src: CIFAR10Arrays, seconds_to_decode: float) -> Path:
    t0 = time.perf_counter()
    final = clean_folder(root)
    with staging_folder(root, final.name) as staging:
        files = {
            TRAIN_IMAGES: save_array(staging / TRAIN_IMAGES, src.train_images),
            TRAIN_LABELS: save_array(staging / TRAIN_LABELS, src.train_labels),
            TEST_IMAGES: save_array(staging / TEST_IMAGES, src.test_images),
            TEST_LABELS: save_array(staging / TEST_LABELS, src.test_labels),
        }
        return publish(
            staging,
            final,
            {
                "variant": VariantSpec("clean").to_dict(),
                "classes": list(src.classes),
                "source": src.describe(),
                "files": files,
                "environment": environment_record(),
                "timings_s": {
                    "decode": round(seconds_to_decode, 3),
                    "write": round(time.perf_counter() - t0, 3),
                },
            },
        )


def _build_ops(root: Path, spec: VariantSpec, base_images: np.ndarray, labels: np.ndarray,
               clean: VariantFolder, extra: dict[str, Any] | None = None) -> Path:
    """Search OPS on the clean training images and write it on top of ``base_images``."""
    t0 = time.perf_counter()
    search = search_shortcuts(
        np.asarray(clean.load(TRAIN_IMAGES)), labels, pixels_per_class=spec.pixels,
        objective=spec.objective,  # type: ignore[arg-type]
        num_classes=len(clean.classes),
    )
    t_search = time.perf_counter() - t0
    perturbed = apply_shortcuts(np.asarray(base_images), labels, search)
    final = variant_folder(root, spec)
    with staging_folder(root, final.name) as staging:
        atomic_write_bytes(staging / SHORTCUT_FILE, (search.to_json() + "\n").encode())
        files = {
            SHORTCUT_FILE: file_entry(staging / SHORTCUT_FILE),
            TRAIN_IMAGES: save_array(staging / TRAIN_IMAGES, perturbed),
            TRAIN_LABELS: save_array(staging / TRAIN_LABELS, labels),
        }
        return publish(
            staging,
            final,
            {
                "variant": spec.to_dict(),
                "classes": clean.classes,
                "source": dict(clean.source.record),
                "files": files,
                "shortcut": search.to_dict(),
                "environment": environment_record(),
                "timings_s": {"ops_search": round(t_search, 4)},
                **(extra or {}),
            },
        )


def _up_to_date(folder: Path, source_fingerprint: str | None, inputs_key: str | None = None) -> VariantFolder | None:
    """The folder, opened, when it is complete, intact (every sha256), well-formed, holding the
    variant its name says (the clean one with its test split), built from this source and (if
    given) from these exact inputs; else None."""
    if not is_complete(folder):
        return None
    try:
        opened = open_folder(folder, check_hashes=True)
        variant = opened.variant_record
        spec = VariantSpec(**variant) if variant is not None else None
    except (IntegrityError, TypeError, ValueError):
        return None
    if spec is None or spec.folder_name != folder.name:
        return None
    if spec.kind == "clean" and not (opened.has(TEST_IMAGES) and opened.has(TEST_LABELS)):
        return None
    if source_fingerprint is not None and opened.source.fingerprint != source_fingerprint:
        return None
    if inputs_key is not None and opened.inputs_key != inputs_key:
        return None
    return opened


def _key(**parts: Any) -> str:
    """Cache key of a stage: sha256 over the canonical JSON of everything it depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _ops_key(spec: VariantSpec, clean: VariantFolder, base: VariantFolder | None) -> str:
    return _key(
        stage="ops", algorithm=OPS_ALGORITHM_VERSION, pixels=spec.pixels, objective=spec.objective,
        clean_train=clean.sha256(TRAIN_IMAGES), base_train=None if base is None else base.sha256(TRAIN_IMAGES),
    )


def em_inputs_key(clean: VariantFolder, recipe: Recipe) -> str:
    """What the EM stage depends on: the clean training images and the EM part of the recipe."""
    return _key(stage="em", clean_train=clean.sha256(TRAIN_IMAGES), em=recipe.em_key)


def _em_work_key(clean: VariantFolder, recipe: Recipe) -> str:
    """Name of the EM checkpoint folder: like :func:`em_inputs_key` but blind to the fields a run
    may change when resumed (``max_rounds``), so a larger ``max_rounds`` continues a stopped run."""
    from ..em.config import RESUME_FREE_FIELDS

    em = {k: v for k, v in recipe.em.to_dict().items() if k not in RESUME_FREE_FIELDS}
    return _key(stage="em-work", clean_train=clean.sha256(TRAIN_IMAGES), em=em)


def _build_em(root: Path, clean: VariantFolder, recipe: Recipe, key: str, device: str | None, progress: bool,
              *, allow_slow: bool = False, allow_unconverged: bool = False) -> Path:
    """Generate EM noise for the clean training set (resumable) and publish the ``em`` folder.

    Refuses (:class:`~cifar10s.em.SlowBuildError`, within seconds) a run the probe expects to
    last more than an hour on ``device`` unless ``allow_slow``, and publishes nothing for noise
    that reached ``max_rounds`` without meeting the stop condition
    (:class:`~cifar10s.em.UnconvergedEMError`) unless ``allow_unconverged``; such a variant is
    then marked ``"release_grade": false``.
    """
    from ..em import UnconvergedEMError, generate_em_noise
    from ..em.checkpoint import read_log

    images = np.array(clean.load(TRAIN_IMAGES))  # a writable in-memory copy
    labels = np.array(clean.load(TRAIN_LABELS))
    workdir = data_dir(root) / WORK_DIR / f"em-{_em_work_key(clean, recipe)[:16]}"
    if any(r["round"] > recipe.em.max_rounds for r in read_log(workdir)):
        shutil.rmtree(workdir)  # a stopped run longer than this recipe allows: start afresh
    t0 = time.perf_counter()
    result = generate_em_noise(images, labels, recipe.em, device=device, workdir=workdir,
                               progress=progress, allow_slow=allow_slow)
    seconds = time.perf_counter() - t0
    final_accuracy = result.log[-1].get("eval_acc") if result.log else None
    if not result.converged:
        if not allow_unconverged:
            raise UnconvergedEMError(rounds=result.rounds, accuracy=final_accuracy,
                                     stop_error=recipe.em.stop_error, workdir=workdir)
        warnings.warn(
            f"EM stopped after {result.rounds} rounds without reaching the stop criterion "
            f"(error <= {recipe.em.stop_error}); published as asked, marked release_grade=false "
            "and converged=false", stacklevel=2
        )

    final = variant_folder(root, VariantSpec("em"))
    with staging_folder(root, final.name) as staging:
        atomic_write_bytes(staging / EM_LOG, (json.dumps(result.log, indent=1) + "\n").encode())
        files = {
            TRAIN_IMAGES: save_array(staging / TRAIN_IMAGES, result.perturbed),
            TRAIN_LABELS: save_array(staging / TRAIN_LABELS, labels),
            EM_NOISE: save_array(staging / EM_NOISE, result.noise),
            EM_LOG: file_entry(staging / EM_LOG),
        }
        published = publish(
            staging,
            final,
            {
                "variant": VariantSpec("em").to_dict(),
                "inputs_key": key,
                "classes": clean.classes,
                "source": dict(clean.source.record),
                "files": files,
                "recipe": recipe.to_dict(),
                "release_grade": bool(result.converged),
                "em": {"rounds": result.rounds, "converged": result.converged,
                       "final_accuracy": final_accuracy,
                       "device": result.extra.get("device"),
                       "numerics": result.extra.get("numerics")},
                "environment": environment_record(),
                "timings_s": {"em": round(seconds, 1)},
            },
        )
    shutil.rmtree(workdir, ignore_errors=True)  # checkpoints are only needed until publication
    return published


@dataclass(frozen=True)
class BuildOutcome:
    """What :func:`build_variant` did: ``status`` is ``"built"`` when this call published the
    variant's folder, ``"cached"`` when an up-to-date one was already there (decided by the build
    itself, not guessed from the files afterwards). ``seconds`` is the call's wall time,
    ``timings`` the folder's recorded build timings. Path-like: ``open_folder(outcome)`` and
    ``Path(outcome)`` give the folder."""

    spec: VariantSpec
    path: Path
    status: Literal["built", "cached"]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def built(self) -> bool:
        return self.status == "built"

    def __fspath__(self) -> str:
        return str(self.path)

    # build_variant returned the folder's Path before it returned an outcome: keep that use working
    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str | os.PathLike[str]) -> Path:
        return self.path / name


def build_variant(
    root: str | os.PathLike[str],
    spec: VariantSpec,
    *,
    cifar10: str | os.PathLike[str] | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = True,
    recipe: Recipe | str | os.PathLike[str] | None = None,
    device: str | None = None,
    allow_slow: bool = False,
    allow_unconverged: bool = False,
) -> BuildOutcome:
    """Build ``spec`` (and the stages it needs) under ``root``; say what was done (:class:`BuildOutcome`).

    ``cifar10`` is an archive or extracted folder; without it a copy under ``root`` is used, or the
    official archive is downloaded when ``download`` is set. Stages (clean -> EM -> OPS/compose)
    are cached: one is redone only when its inputs changed, its files fail verification, or
    ``force`` is set (which rebuilds the requested variant only). ``recipe`` fixes the EM
    hyper-parameters (default: the packaged ``v1``); ``device`` is where EM runs (default: CUDA if
    available). EM that a few-second probe expects to take more than an hour on that device is
    refused (:class:`~cifar10s.em.SlowBuildError`) unless ``allow_slow``; EM that reaches
    ``max_rounds`` without meeting its stop condition publishes nothing
    (:class:`~cifar10s.em.UnconvergedEMError`) unless ``allow_unconverged``, and is then marked
    ``"release_grade": false`` in its manifest and in those of the variants built on it.
    """
    root = Path(root).expanduser()
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if cifar10 is not None and not Path(cifar10).expanduser().exists():
        load_cifar10(cifar10)  # raises SourceError saying what to pass, before anything is created
    t0 = time.perf_counter()
    with build_lock(root):
        remove_stale_staging(root)  # safe: no other build can hold a staging folder while we hold the lock
        path, built = _build_stages(root, spec, cifar10=cifar10, download=download, force=force, progress=progress,
                                    recipe=recipe, device=device, allow_slow=allow_slow,
                                    allow_unconverged=allow_unconverged)
        timings = open_folder(path, check_hashes=False).timings_s
    return BuildOutcome(spec, path, "built" if built else "cached", time.perf_counter() - t0,
                        {str(k): float(v) for k, v in timings.items()})


def _build_stages(root: Path, spec: VariantSpec, *, cifar10: str | os.PathLike[str] | None, download: bool,
                  force: bool, progress: bool, recipe: Recipe, device: str | None, allow_slow: bool,
                  allow_unconverged: bool) -> tuple[Path, bool]:
    """Every stage ``spec`` needs, each redone only when out of date (call under the build lock);
    returns the variant's folder and whether this call published it."""
    clean_dir = clean_folder(root)
    rebuild_clean = _up_to_date(clean_dir, None) is None or (force and spec.kind == "clean")
    built_clean = False
    if cifar10 is not None or rebuild_clean:
        t0 = time.perf_counter()
        src = load_cifar10(resolve_cifar10(root, cifar10, download=download, progress=progress))
        if rebuild_clean or _up_to_date(clean_dir, src.fingerprint) is None:
            _build_clean(root, src, time.perf_counter() - t0)
            built_clean = True
    clean = open_folder(clean_dir, check_hashes=False)
    if spec.kind == "clean":
        return clean_dir, built_clean
    fingerprint = clean.source.fingerprint
    labels = np.asarray(clean.load(TRAIN_LABELS))

    em: VariantFolder | None = None
    em_dir = variant_folder(root, VariantSpec("em"))
    if spec.kind in ("em", "cifar10s"):
        key = em_inputs_key(clean, recipe)
        em = None if force and spec.kind == "em" else _up_to_date(em_dir, fingerprint, key)
        if em is None:
            _build_em(root, clean, recipe, key, device, progress, allow_slow=allow_slow,
                      allow_unconverged=allow_unconverged)
            em = open_folder(em_dir, check_hashes=False)
            if spec.kind == "em":
                return em_dir, True
        elif spec.kind == "em":
            return em_dir, False

    final = variant_folder(root, spec)
    key = _ops_key(spec, clean, em)
    if not force and _up_to_date(final, fingerprint, key) is not None:
        return final, False
    if em is None:
        base = clean.load(TRAIN_IMAGES)
        extra: dict[str, Any] = {}
    else:
        base = em.load(TRAIN_IMAGES)
        record = em.manifest
        extra = {"recipe": record["recipe"], "em": record["em"],
                 "release_grade": bool(record.get("release_grade", record["em"]["converged"])),
                 "em_manifest_sha256": em.manifest_sha256()}
    return _build_ops(root, spec, base, labels, clean, {"inputs_key": key, **extra}), True


def load_shortcut(folder: str | os.PathLike[str]) -> ShortcutSearch:
    """The OPS search stored next to a built variant's arrays."""
    return ShortcutSearch.from_json(Path(folder, SHORTCUT_FILE).read_text())


def built_variants(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Manifests of every complete variant folder under ``root`` (schema-checked, hashes not checked).

    A folder whose manifest is malformed is left out with a warning naming it, so one broken
    folder does not hide the others.
    """
    out: dict[str, dict[str, Any]] = {}
    d = data_dir(root)
    if not d.is_dir():
        return out
    for folder in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if is_complete(folder):
            try:
                out[folder.name] = read_manifest(folder)
            except (IntegrityError, ValueError) as exc:
                warnings.warn(f"skipping {folder}: {exc}", stacklevel=2)
    return out
