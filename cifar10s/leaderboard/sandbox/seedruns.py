"""One seed's training, and the final evaluation of every seed, each in a child process.

The parent side of :mod:`.worker`'s ``train`` and ``predict`` tasks: what each child is handed
(a copy of the training set; test *images* only, in a secret order), and how what it hands back
(per-epoch logits, safetensors weights, a report) becomes accuracies, computed here with the
labels of :class:`~.heldout.HeldOutTestSet`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...store import sha256_file
from .heldout import HeldOutTestSet
from .inert import inert_text
from ..submission.record import Submission
from .runner import WEIGHTS_NAME, WorkerFailed, WorkerRun, epoch_logits_name, read_logits
from .bwrap import Sandbox

__all__ = ["ChildSettings", "ScoringInterrupted", "evaluate_seeds", "train_seed"]


class ScoringInterrupted(RuntimeError):
    """Training stopped before its last epoch; running the same command again resumes it."""


@dataclass(frozen=True)
class ChildSettings:
    """How children run: device, CPU threads, time limits (seconds, None: none), the paths
    that no variable of their environment may name, and the sandbox (None: none)."""

    device: str
    threads: int | None
    train_limit_s: float | None
    predict_limit_s: float | None
    forbidden: tuple[str, ...] = ()
    progress: bool = False
    sandbox: Sandbox | None = None


def _eval_order(test: HeldOutTestSet, eval_subset: int | None, order_seed: int) -> np.ndarray:
    """Indices of the per-epoch test images, in the order the child sees them (secret, fixed per
    work folder so that a resumed run's earlier epochs keep their meaning)."""
    from ...training.evaluation import subset_indices

    idx = subset_indices(test.num_test, eval_subset, "eval")
    idx_np = np.arange(test.num_test) if idx is None else idx.numpy()
    return idx_np[np.random.default_rng(order_seed).permutation(len(idx_np))]


def _number(value: Any, what: str, *, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkerFailed(f"malformed training report: {what} is {inert_text(repr(value))[:200]}")
    return value


def _records(report: dict[str, Any], epochs: int, label: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = report.get("result")
    records = result.get("records") if isinstance(result, dict) else None
    if (not isinstance(records, list) or not all(isinstance(r, dict) for r in records)
            or [r.get("epoch") for r in records] != list(range(1, len(records) + 1)) or len(records) > epochs
            or not all(isinstance(r.get("evaluated"), bool) for r in records)):
        raise WorkerFailed(f"{label}: malformed training report from the child process")
    return result, records  # type: ignore[return-value]


def weights_sha256(path: Path, label: str) -> str:
    """sha256 of a child's safetensors file, after checking it parses as one (no code runs)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file() or path.is_symlink():
        raise WorkerFailed(f"{label}: the child process did not write {path.name}")
    try:
        with safe_open(str(path), framework="pt") as f:
            if not list(f.keys()):
                raise WorkerFailed(f"{label}: {path.name} holds no tensors")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WorkerFailed(f"{label}: {path.name} is not a safetensors file ({exc})") from None
    return sha256_file(path)


def train_seed(sub: Submission, config: Any, wd: Path, stamp: dict[str, Any], images: np.ndarray,
               labels: np.ndarray, test: HeldOutTestSet, settings: ChildSettings,
               stop_after_epoch: int | None = None) -> dict[str, Any]:
    """Train one seed in a child (resuming from ``wd``) and return its per-seed record.

    ``stamp`` is the work folder's record (:func:`cifar10s.leaderboard.provenance.stamp_workdir`); its ``_eval_order``
    fixes the secret order of the per-epoch test images. ``final_test_acc``/``flipped_test_acc``
    are filled in later by :func:`evaluate_seeds`.
    """
    seed = config.seed
    label = f"training seed {seed}"
    order = _eval_order(test, config.eval_subset, int(stamp["_eval_order"]))
    with WorkerRun(sub, label=label, forbidden=list(settings.forbidden), threads=settings.threads,
                   sandbox=settings.sandbox) as run:
        job = {
            "config": config.to_dict(),
            "workdir": str(wd.resolve()),
            "train_images": run.put_array("train_images.npy", images),
            "train_labels": run.put_array("train_labels.npy", labels),
            "eval_images": run.put_array("eval_images.npy", test.images[order]),
            "stop_after_epoch": stop_after_epoch,
        }
        report = run.run("train", job, time_limit_s=settings.train_limit_s, device=settings.device,
                         progress=settings.progress, writable=[wd.resolve()])
    result, records = _records(report, config.epochs, label)
    for r in records:
        if r["evaluated"]:
            logits = read_logits(wd / epoch_logits_name(r["epoch"]), len(order), config.num_classes,
                                 f"{label}, epoch {r['epoch']}")
            r["test_acc"] = test.accuracy(logits, order)
        else:
            r["test_acc"] = None
    if report.get("completed") is not True or len(records) != config.epochs:
        raise ScoringInterrupted(f"seed {seed}: training stopped after epoch {len(records)}/{config.epochs}; run "
                                 f"the same command again to resume from {wd}")
    evaluated = [r for r in records if r["test_acc"] is not None]
    best = max(evaluated, key=lambda r: (r["test_acc"], -r["epoch"])) if evaluated else None
    return {
        "seed": seed,
        "final_test_acc": None,
        "flipped_test_acc": None,
        "flip_gap": None,
        "final_epoch_eval_acc": records[-1]["test_acc"] if records else None,
        "best_test_acc": best["test_acc"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_train_acc": _number(result.get("final_train_acc"), "final_train_acc"),
        "num_train": _number(result.get("num_train"), "num_train"),
        "param_count": _number(result.get("param_count"), "param_count"),
        "train_time_s": _number(result.get("total_time"), "total_time", allow_none=False),
        "resumed_from_epoch": _number(result.get("resumed_from_epoch"), "resumed_from_epoch"),
        "device": inert_text(str(result.get("device", settings.device)))[:200],
        "precision": _precision(result.get("precision")),
        "records": records,
        "workdir": str(wd),
        "weights_sha256": weights_sha256(wd / WEIGHTS_NAME, label),
    }


def _precision(raw: Any) -> dict[str, Any]:
    """The numerics the child reports it trained with (bf16 autocast, TF32, channels-last, compile)."""
    keys = {"autocast": (str, type(None)), "tf32": (bool,), "channels_last": (bool,), "compiled": (bool,)}
    if not isinstance(raw, dict) or set(raw) != set(keys) or not all(isinstance(raw[k], keys[k]) for k in keys):
        raise WorkerFailed(f"the training child reported a malformed precision record: {inert_text(str(raw))[:200]}")
    return {k: raw[k] if not isinstance(raw[k], str) else inert_text(raw[k])[:20] for k in keys}


def evaluate_seeds(sub: Submission, per_seed: list[dict[str, Any]], config: Any, test: HeldOutTestSet,
                   settings: ChildSettings) -> None:
    """Score every seed's weights in one fresh child on the test images and their flips (secretly
    shuffled together); fills ``final_test_acc``, ``flipped_test_acc`` and ``flip_gap`` in place."""
    images, order = test.final_eval_images()
    label = "evaluating the trained models"
    with WorkerRun(sub, label=label, forbidden=list(settings.forbidden), threads=settings.threads,
                   sandbox=settings.sandbox) as run:
        models = []
        for p in per_seed:
            src = Path(p["workdir"]) / WEIGHTS_NAME
            name = f"weights-{p['seed']}.safetensors"
            shutil.copyfile(src, run.path(name))
            if sha256_file(run.path(name)) != p["weights_sha256"]:
                raise WorkerFailed(f"{src} changed after training; score again")
            models.append({"seed": p["seed"], "weights": name, "out": f"logits-{p['seed']}.npy"})
        job = {"images": run.put_array("test_images.npy", images), "models": models,
               "num_classes": config.num_classes, "batch_size": config.eval_batch_size,
               "channels_last": config.channels_last}
        run.run("predict", job, time_limit_s=settings.predict_limit_s, device=settings.device)
        for p, m in zip(per_seed, models):
            logits = read_logits(run.path(m["out"]), len(order), config.num_classes, f"{label}, seed {p['seed']}")
            plain, flipped = test.split_final_logits(logits, order)
            p["final_test_acc"] = test.accuracy(plain)
            p["flipped_test_acc"] = test.accuracy(flipped)
            p["flip_gap"] = p["final_test_acc"] - p["flipped_test_acc"]
