"""Train a submission on a CIFAR-10-S variant and score it on the clean CIFAR-10 test set.

The harness owns the data:

* the training set is loaded here, through :class:`~cifar10s.dataset.CIFAR10S`, which checks
  every array against its manifest. Submission code only ever sees the *training* set: copies
  handed to ``preprocess``, batches handed to ``train_step``, or nothing at all when the model
  is trained by :func:`cifar10s.training.trainer.train`.
* the test set lives in a :class:`HeldOutScorer`, the scorer's own evaluator. It keeps the
  test *images*, because the model has to see them to be scored. It does not keep the labels.
  After an evaluation's forward passes are done, it reads the labels from disk, checks them
  against the sha256 in the clean manifest (a tampered file is an error), compares them with
  the predictions and drops them. So no test-label array is in memory while submission code
  runs, and none is reachable from any object a hook receives.

This is protection against accidental leaks and casual cheating, not a sandbox. Submission code
runs in this process and can do anything the process can, such as searching the disk. Score
untrusted code in a container. Review the code (the result records the sha256 of every
submission file).

Results are one JSON file per (submission, training set, preset), written atomically, with
provenance: dataset manifest hashes, code version, seeds, preset and ``preset_diff``, device,
wall time, and per-seed final (full test set) and best-epoch accuracies with their mean and
sample standard deviation. Each seed trains in its own checkpointed work folder, so an
interrupted scoring run resumes and ends with the same result as an uninterrupted one.

It is one module (about 450 lines) because scoring is one pipeline (data, seeds, training,
evaluation, provenance, the result file) whose steps share the result record.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..version import __version__
from ..release.recipe import DEFAULT_RECIPE
from ..store import (
    MANIFEST,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IntegrityError,
    atomic_write_json,
    clean_folder,
    load_array,
    sha256_file,
    variant_folder,
    verify_folder,
)
from ..runtime import derive_seed, resolve_device
from ..training.evaluation import predict_logits, subset_indices
from ..variants import VariantSpec, parse_variant
from .baselines import compare, format_comparison, train_set_name
from .submission import Submission, SubmissionError, load_submission

__all__ = [
    "RESULT_FORMAT",
    "HeldOutScorer",
    "ScoringInterrupted",
    "code_version",
    "dataset_provenance",
    "predict",
    "result_stem",
    "score_submission",
]

RESULT_FORMAT = "cifar10s-leaderboard-result"
RESULT_FORMAT_VERSION = 1
STAMP_FILE = "scoring.json"
STD_DEFINITION = "sample standard deviation over seeds (divisor n - 1); 0.0 for a single seed"


class ScoringInterrupted(RuntimeError):
    """Training stopped before its last epoch; running the same command again resumes it."""


# ------------------------------------------------------------------------------------------------
# evaluation


def predict(model: nn.Module, images_nhwc_u8: torch.Tensor, *, device: torch.device | str | None = None,
            batch_size: int = 1000, channels_last: bool = False) -> torch.Tensor:
    """Arg-max predictions (int64, on the CPU) in eval mode, float32 (see :func:`predict_logits`)."""
    return predict_logits(model, images_nhwc_u8, device, batch_size, channels_last=channels_last).argmax(1)


class HeldOutScorer:
    """The scorer's own evaluator on the clean CIFAR-10 test set: ``scorer(model) -> accuracy``.

    ``__call__`` scores the fixed evaluation subset (``subset`` images, as the trainer's
    ``eval_subset``; all of them when None), used after every epoch. :meth:`full` scores the
    whole test set. The labels are read from disk only after the forward passes (see the module
    docstring).
    """

    def __init__(self, root: str | Path, *, batch_size: int = 1000, subset: int | None = None,
                 channels_last: bool = False) -> None:
        folder = clean_folder(root)
        manifest = verify_folder(folder, check_hashes=True)
        images = np.ascontiguousarray(load_array(folder, TEST_IMAGES, manifest, mmap=False))
        self._images = torch.from_numpy(images)
        self._labels_file = folder / TEST_LABELS
        self._labels_entry = dict(manifest["files"][TEST_LABELS])
        self.num_test = int(images.shape[0])
        self._subset = subset_indices(self.num_test, subset, "eval")
        self.num_eval = self.num_test if self._subset is None else int(self._subset.numel())
        self.batch_size = int(batch_size)
        self.channels_last = channels_last
        self._on_device: dict[str, torch.Tensor] = {}
        self.provenance = {
            "folder": folder.name,
            "manifest_sha256": sha256_file(folder / MANIFEST),
            "test_images_sha256": manifest["files"][TEST_IMAGES]["sha256"],
            "test_labels_sha256": self._labels_entry["sha256"],
            "num_test": self.num_test,
            "source_fingerprint": manifest["source"]["fingerprint"],
            "official_cifar10": bool(manifest["source"].get("official")),
        }

    def _read_labels(self) -> np.ndarray:
        raw = self._labels_file.read_bytes()
        if hashlib.sha256(raw).hexdigest() != self._labels_entry["sha256"]:
            raise IntegrityError(f"{self._labels_file} changed during scoring (sha256 mismatch with the manifest)")
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
        if arr.shape != (self.num_test,):
            raise IntegrityError(f"{self._labels_file}: shape {arr.shape}, expected ({self.num_test},)")
        return arr.astype(np.int64)

    def _images_on(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._on_device:
            self._on_device = {key: self._images.to(device)}
        return self._on_device[key]

    def _accuracy(self, model: nn.Module, subset: bool) -> float:
        device = next(model.parameters()).device
        images = self._images_on(device)
        idx = self._subset if subset else None
        if idx is not None:
            images = images[idx.to(device)]
        preds = predict(model, images, device=device, batch_size=self.batch_size,
                        channels_last=self.channels_last).numpy()
        labels = self._read_labels()  # only now, after the model has run
        if idx is not None:
            labels = labels[idx.numpy()]
        correct = int((preds == labels).sum())
        del labels
        return correct / len(preds) if len(preds) else float("nan")

    def __call__(self, model: nn.Module) -> float:
        return self._accuracy(model, subset=True)

    def full(self, model: nn.Module) -> float:
        """Accuracy on the whole clean test set."""
        return self._accuracy(model, subset=False)


# ------------------------------------------------------------------------------------------------
# provenance


def code_version() -> dict[str, Any]:
    """``cifar10s.__version__`` plus the git commit (and whether the tree is dirty) when available."""
    repo = Path(__file__).resolve().parents[2]
    commit: str | None = None
    dirty: bool | None = None
    if (repo / ".git").exists():
        try:
            r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "HEAD"], capture_output=True,
                               text=True, timeout=20)
            if r.returncode == 0 and r.stdout.strip():
                commit = r.stdout.strip()
                s = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=20)
                dirty = bool(s.stdout.strip()) if s.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            pass
    return {"cifar10s": __version__, "git_commit": commit, "git_dirty": dirty}


def dataset_provenance(root: str | Path, spec: VariantSpec) -> dict[str, Any]:
    """Which training data was used: variant, manifest sha256, array sha256s and source."""
    folder = variant_folder(root, spec)
    manifest = verify_folder(folder, check_hashes=False)
    files = manifest["files"]
    src = manifest["source"]
    return {
        "variant": spec.folder_name,
        "spec": spec.to_dict(),
        "paper_train_set": train_set_name(spec),
        "manifest_sha256": sha256_file(folder / MANIFEST),
        "train_images_sha256": files[TRAIN_IMAGES]["sha256"],
        "train_labels_sha256": files[TRAIN_LABELS]["sha256"],
        "num_train": int(files[TRAIN_IMAGES]["shape"][0]),
        "source_fingerprint": src["fingerprint"],
        "official_cifar10": bool(src.get("official")),
        "recipe": (manifest.get("recipe") or {}).get("version"),  # None for variants without EM
        "built_with_cifar10s": manifest.get("environment", {}).get("cifar10s"),
    }


def data_caveats(dataset: dict[str, Any]) -> list[str]:
    """Why a result's training data is not the data the paper trained on (empty when it is).

    Reads a result's ``dataset`` record: a non-official CIFAR-10 copy (e.g. a subset) or EM noise
    from another recipe than the release's make a number incomparable with the paper's, whatever
    the training settings.
    """
    out: list[str] = []
    if not dataset.get("official_cifar10", False):
        out.append(f"built from a CIFAR-10 copy that is not the official release "
                   f"({dataset.get('num_train', '?')} training images)")
    recipe = dataset.get("recipe")
    if recipe is not None and recipe != DEFAULT_RECIPE:
        out.append(f"EM noise from recipe {recipe!r}, not the release recipe {DEFAULT_RECIPE!r}")
    return out


def _environment(device: torch.device) -> dict[str, Any]:
    env = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def result_stem(sub: Submission, spec: VariantSpec, preset: str) -> str:
    return f"{sub.slug}--{spec.folder_name}--{preset}"


def _summary(values: Sequence[float | None]) -> dict[str, Any]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    mean = sum(vals) / n if n else None
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else (0.0 if n else None)  # type: ignore[operator]
    return {"mean": mean, "std": std, "n": n, "values": list(values)}


def _stamp_workdir(wd: Path, stamp: dict[str, Any]) -> None:
    path = wd / STAMP_FILE
    if path.exists():
        old = json.loads(path.read_text())
        if old != stamp:
            changed = sorted(k for k in set(old) | set(stamp) if old.get(k) != stamp.get(k))
            raise ValueError(
                f"{wd} holds a scoring run of something else (changed: {', '.join(changed)}); the "
                "submission files or the data changed since it was started. Use a fresh --workdir."
            )
    else:
        atomic_write_json(path, stamp)


# ------------------------------------------------------------------------------------------------
# training


def resolve_config(sub: Submission, preset: str, seed: int, overrides: dict[str, Any] | None = None) -> Any:
    """The TrainConfig of one seed: preset + submission method/defense/overrides + harness overrides."""
    from cifar10s.training.presets import resolve_preset

    changes: dict[str, Any] = dict(sub.overrides)
    changes.update(overrides or {})
    changes["seed"] = int(seed)
    if sub.defense is not None:
        changes.setdefault("defense", sub.defense)
        changes.setdefault("defense_kwargs", dict(sub.defense_kwargs) or None)
    return resolve_preset(preset, sub.model, method=sub.method, **changes)


def score_submission(
    submission: Submission | str | Path,
    root: str | Path,
    *,
    variant: str | VariantSpec = "cifar10s",
    preset: str = "paper",
    seeds: Sequence[int] = (0,),
    device: torch.device | str | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
    callback: Callable[..., Any] | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Validate, train (one run per seed) and score a submission; return (and write) its result.

    * ``variant``: the training set (``cifar10s`` default, ``clean``, ``em``, ``ops``, ``ops-kK``),
      which must be built under ``root``. The test set is always the clean CIFAR-10 test split.
    * ``out``: folder for the result JSON ``<slug>--<variant>--<preset>.json`` (None: not written).
    * ``workdir``: folder for the per-seed checkpoints (``seed-<k>/``); default
      ``<out>/.work/<stem>``. Running again with the same folders resumes an interrupted run.
    * ``overrides``: harness-level TrainConfig changes (e.g. ``{"epochs": 1}``); like the preset,
      every resulting difference from the paper's settings is recorded in ``preset_diff``.
    * ``callback(record, model)`` after each epoch (testing hook; ``True`` stops training, which
      raises :class:`ScoringInterrupted`).
    """
    from cifar10s.dataset import CIFAR10S
    from cifar10s.training.config import HookError
    from cifar10s.training.presets import PRESETS, diff_from_paper
    from cifar10s.training.trainer import train

    t_start = time.perf_counter()
    say = log or (lambda _msg: None)
    sub = submission if isinstance(submission, Submission) else load_submission(submission)
    spec = variant if isinstance(variant, VariantSpec) else parse_variant(variant)
    preset = preset.strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds}")
    dev = resolve_device(device)
    configs = {s: resolve_config(sub, preset, s, overrides) for s in seeds}  # fail early on bad settings

    train_ds = CIFAR10S(root, train=True, variant=spec, verify=True)
    dataset = dataset_provenance(root, spec)
    first = configs[seeds[0]]
    scorer = HeldOutScorer(root, batch_size=first.eval_batch_size, subset=first.eval_subset,
                           channels_last=first.channels_last)
    if dataset["source_fingerprint"] != scorer.provenance["source_fingerprint"]:
        raise IntegrityError("the training variant and the clean test folder come from different CIFAR-10 sources")
    base_images = torch.from_numpy(np.array(train_ds.data, copy=True))
    base_labels = torch.as_tensor(np.asarray(train_ds.targets), dtype=torch.int64)
    del train_ds

    stem = result_stem(sub, spec, preset)
    out_dir = Path(out) if out is not None else None
    work_root = Path(workdir) if workdir is not None else (out_dir / ".work" / stem if out_dir is not None else None)
    say(f"scoring {sub.name!r} ({sub.model or sub.entry}, method {sub.method}) on {spec.folder_name}, preset "
        f"{preset}, seeds {seeds}, device {dev}")

    per_seed = []
    trained_device = str(dev)
    for seed in seeds:
        config = configs[seed]
        wd = work_root / f"seed-{seed}" if work_root is not None else None
        if wd is not None:
            wd.mkdir(parents=True, exist_ok=True)
            _stamp_workdir(wd, {
                "submission_sha256": sub.digest, "variant": spec.folder_name,
                "train_manifest_sha256": dataset["manifest_sha256"],
                "test_manifest_sha256": scorer.provenance["manifest_sha256"], "preset": preset, "seed": seed,
            })
        torch.manual_seed(derive_seed(seed, "init"))
        try:
            model = sub.build_model(config.num_classes)
        except SubmissionError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code
            raise SubmissionError(sub.folder, f"building the model failed: {type(exc).__name__}: {exc}") from exc
        try:
            res = train(model, base_images, base_labels, config=config, device=dev, workdir=wd, progress=progress,
                        callback=callback, evaluator=scorer, hooks=sub.hooks)
        except HookError as exc:
            raise SubmissionError(sub.folder, f"{sub.entry}: {exc}") from exc
        if not res.completed:
            raise ScoringInterrupted(
                f"seed {seed}: training stopped after epoch {len(res.records)}/{config.epochs}; run the same "
                f"command again to resume" + (f" from {wd}" if wd else "")
            )
        final_acc = scorer.full(model)
        trained_device = res.device
        per_seed.append({
            "seed": seed,
            "final_test_acc": final_acc,
            "final_epoch_eval_acc": res.final_test_acc,
            "best_test_acc": res.best_test_acc,
            "best_epoch": res.best_epoch,
            "final_train_acc": res.final_train_acc,
            "num_train": res.num_train,
            "param_count": res.param_count,
            "train_time_s": res.total_time,
            "resumed_from_epoch": res.resumed_from_epoch,
            "records": [r.to_dict() for r in res.records],
            "workdir": str(wd) if wd is not None else None,
        })
        best = "n/a" if res.best_test_acc is None else f"{100 * res.best_test_acc:.2f}% at epoch {res.best_epoch}"
        say(f"  seed {seed}: final clean test accuracy {100 * final_acc:.2f}% "
            f"({scorer.num_test} images); best epoch {best} ({scorer.num_eval} images per epoch)")

    diff = diff_from_paper(first, first.model_name)
    diff.pop("seed", None)
    config_dict = first.to_dict()
    config_dict.pop("seed", None)
    finals = [p["final_test_acc"] for p in per_seed]
    comparisons = compare(sub.model, sub.method, spec, finals)
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "format_version": RESULT_FORMAT_VERSION,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "submission": sub.describe(),
        "dataset": dataset,
        "test_set": scorer.provenance,
        "code": code_version(),
        "preset": preset,
        "preset_diff": diff,
        "paper_setting": not diff and sub.defense is None and not sub.overrides and sub.hooks is None,
        "config": config_dict,
        "seeds": seeds,
        "device": trained_device,
        "environment": _environment(dev),
        "wall_time_s": time.perf_counter() - t_start,
        "train_time_s": sum(p["train_time_s"] for p in per_seed),
        "eval": {"per_epoch_images": scorer.num_eval, "final_images": scorer.num_test,
                 "accuracy_units": "fraction in [0, 1]"},
        "per_seed": per_seed,
        "summary": {
            "final_test_acc": _summary(finals),
            "best_test_acc": _summary([p["best_test_acc"] for p in per_seed]),
            "std_definition": STD_DEFINITION,
        },
        "paper": [c.to_dict() for c in comparisons],
    }
    s = result["summary"]["final_test_acc"]
    say(f"{sub.name}: final clean test accuracy {100 * s['mean']:.2f}% ± {100 * s['std']:.2f} over "
        f"{s['n']} seed(s)")
    lines = format_comparison(comparisons)
    for line in lines or [f"no paper row for ({sub.model or 'custom model'}, {sub.method}, {spec.folder_name})"]:
        say("  " + line)
    if diff:
        say(f"  note: differs from the paper's settings in {', '.join(sorted(diff))} (preset {preset}); "
            "not comparable with the paper's numbers")
    for caveat in data_caveats(dataset):
        say(f"  note: training data {caveat}; not comparable with the paper's numbers")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{stem}.json"
        atomic_write_json(path, result)
        result["_path"] = str(path)
        say(f"wrote {path}")
    return result
