"""One seed's training, and the final evaluation of every seed, each in a child process.

The parent side of :mod:`.worker`'s ``train`` and ``predict`` tasks: what each child is handed
(a copy of the training set; test *images* only, in a secret order), and how what it hands back
(per-epoch logits, safetensors weights, a report) becomes accuracies, computed here with the
labels of :class:`~.heldout.HeldOutTestSet`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...training.selection import best_epoch
from .heldout import HeldOutTestSet
from ..sandbox.jobs import ModelToPredict, PredictJob, TrainJob
from .records import SeedResult
from ..sandbox.inert import inert_text
from ..submission.record import Submission
from ..sandbox.runner import EPOCH_LOGITS_DIR, WEIGHTS_NAME, WorkerFailed, WorkerRun, epoch_logits_name, read_logits
from ..sandbox.bwrap import Sandbox
from ..sandbox.runner import DEFAULT_PREDICT_LIMIT_S, DEFAULT_TRAIN_LIMIT_S
from ..sandbox.childfiles import keep_only, read_child_file
from ..sandbox.reports import ENVELOPE, check_keys, train_result
from ...errors import Cifar10sError

__all__ = ["ChildSettings", "ScoringInterrupted", "child_settings", "evaluate_seeds", "train_seed"]


class ScoringInterrupted(Cifar10sError, RuntimeError):
    """Training stopped before its last epoch; running the same command again resumes it."""


@dataclass(frozen=True)
class ChildSettings:
    """How children run: device, CPU threads, time limits (seconds, None: none), the paths
    that no variable of their environment may name, and the sandbox (None: none)."""

    device: str
    threads: int | None
    train_limit_s: float | None
    predict_limit_s: float | None
    sandbox: Sandbox | None  # no default: running submission code without one is a decision
    forbidden: tuple[str, ...] = ()
    progress: bool = False


def child_settings(dev: torch.device, root: Path, given: str | Path, time_limit_s: float | None,
                    progress: bool, sandbox: Sandbox | None, elsewhere: tuple[Path | None, ...] = ()) -> ChildSettings:
    """How this run's children run; the data root, the results and work folders are never named to
    a child, and its sandbox hides them."""
    forbidden = {str(root), str(Path(given).expanduser().absolute())}
    forbidden |= {str(Path(p).expanduser().absolute()) for p in elsewhere if p is not None}
    return ChildSettings(
        device=str(dev), threads=torch.get_num_threads(), progress=progress, forbidden=tuple(sorted(forbidden)),
        sandbox=sandbox,
        train_limit_s=DEFAULT_TRAIN_LIMIT_S if time_limit_s is None else time_limit_s,
        predict_limit_s=DEFAULT_PREDICT_LIMIT_S if time_limit_s is None else time_limit_s,
    )


def _eval_order(test: HeldOutTestSet, eval_subset: int | None, order_seed: int) -> np.ndarray:
    """Indices of the per-epoch test images, in the order the child sees them (secret, fixed per
    work folder so that a resumed run's earlier epochs keep their meaning)."""
    from ...training.evaluation import subset_indices

    idx = subset_indices(test.num_test, eval_subset, "eval")
    idx_np = np.arange(test.num_test) if idx is None else idx.numpy()
    return idx_np[np.random.default_rng(order_seed).permutation(len(idx_np))]


#: the largest weights file a training child may leave (WRN-28-10 in float32 is about 150 MB)
MAX_WEIGHTS_BYTES = 2 << 30
#: what a seed's work folder keeps between runs; anything else a child leaves there is deleted
_RESUME_FILES = frozenset({"checkpoint.pt", "theta0.pt", WEIGHTS_NAME})


def _needed_for_resume(rel: str) -> bool:
    if rel.endswith("/"):
        return rel == f"{EPOCH_LOGITS_DIR}/"
    head, _, name = rel.rpartition("/")
    return (not head and name in _RESUME_FILES) or (head == EPOCH_LOGITS_DIR and name.startswith("epoch-")
                                                    and name.endswith(".npy"))


def _records(report: dict[str, Any], epochs: int, label: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    check_keys(report, ENVELOPE | {"completed", "result", "weights"}, label, "")
    result = train_result(report.get("result"), label)
    records = result["records"]
    if [r["epoch"] for r in records] != list(range(1, len(records) + 1)) or len(records) > epochs:
        raise WorkerFailed(f"{label}: the child's report has epochs out of order or more than {epochs}")
    return result, records


def weights_bytes(wd: Path, label: str) -> bytes:
    """A child's safetensors file, read as someone else's bytes and checked to parse as one (no code runs)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    try:
        raw = read_child_file(wd, WEIGHTS_NAME, max_bytes=MAX_WEIGHTS_BYTES, what=label)
    except FileNotFoundError:
        raise WorkerFailed(f"{label}: the child process did not write {WEIGHTS_NAME}") from None
    try:
        if not load_safetensors(raw):
            raise WorkerFailed(f"{label}: {WEIGHTS_NAME} holds no tensors")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WorkerFailed(f"{label}: {WEIGHTS_NAME} is not a safetensors file ({str(exc)[:200]})") from None
    return raw


def train_seed(sub: Submission, config: Any, wd: Path, stamp: dict[str, Any], images: np.ndarray,
               labels: np.ndarray, test: HeldOutTestSet, settings: ChildSettings,
               stop_after_epoch: int | None = None) -> SeedResult:
    """Train one seed in a child (resuming from ``wd``) and return its per-seed record.

    ``stamp`` is the work folder's record (:func:`cifar10s.leaderboard.scoring.provenance.stamp_workdir`); its ``_eval_order``
    fixes the secret order of the per-epoch test images. ``final_test_acc``/``flipped_test_acc``
    come later, from :func:`evaluate_seeds`.
    """
    seed = config.seed
    label = f"training seed {seed}"
    order = _eval_order(test, config.eval_subset, int(stamp["_eval_order"]))
    with WorkerRun(sub, label=label, forbidden=list(settings.forbidden), threads=settings.threads,
                   sandbox=settings.sandbox) as run:
        job = TrainJob(
            config=config.to_dict(),
            workdir=str(wd.resolve()),
            train_images=run.put_array("train_images.npy", images),
            train_labels=run.put_array("train_labels.npy", labels),
            eval_images=run.put_array("eval_images.npy", test.images[order]),
            stop_after_epoch=stop_after_epoch,
        ).to_job()
        try:
            report = run.run("train", job, time_limit_s=settings.train_limit_s, device=settings.device,
                             progress=settings.progress, writable=[wd.resolve()])
        finally:  # success or not, what resuming does not need goes (the child's processes are gone)
            keep_only(wd, _needed_for_resume)
    result, records = _records(report, config.epochs, label)
    for r in records:
        if r["evaluated"]:
            logits = read_logits(wd, epoch_logits_name(r["epoch"]), len(order), config.num_classes,
                                 f"{label}, epoch {r['epoch']}")
            r["test_acc"] = test.accuracy(logits, order)
        else:
            r["test_acc"] = None
    if report.get("completed") is not True or len(records) != config.epochs:
        raise ScoringInterrupted(f"seed {seed}: training stopped after epoch {len(records)}/{config.epochs}; run "
                                 f"the same command again to resume from {wd}")
    best_acc, best_at = best_epoch((r["epoch"], r["test_acc"]) for r in records)
    return SeedResult(
        seed=seed,
        final_epoch_eval_acc=records[-1]["test_acc"] if records else None,
        best_test_acc=best_acc,
        best_epoch=best_at,
        final_train_acc=result.get("final_train_acc"),
        num_train=result["num_train"],
        param_count=result["param_count"],
        train_time_s=result["total_time"],
        resumed_from_epoch=result.get("resumed_from_epoch"),
        device=result.get("device", settings.device),
        precision=_precision(result.get("precision")),
        records=records,
        workdir=str(wd),
        weights_sha256=hashlib.sha256(weights_bytes(wd, label)).hexdigest(),
    )


def _precision(raw: Any) -> dict[str, Any]:
    """The numerics the child reports it trained with (bf16 autocast, TF32, channels-last, compile)."""
    keys = {"autocast": (str, type(None)), "tf32": (bool,), "channels_last": (bool,), "compiled": (bool,)}
    if not isinstance(raw, dict) or set(raw) != set(keys) or not all(isinstance(raw[k], keys[k]) for k in keys):
        raise WorkerFailed(f"the training child reported a malformed precision record: {inert_text(str(raw))[:200]}")
    return {k: raw[k] if not isinstance(raw[k], str) else inert_text(raw[k])[:20] for k in keys}


def evaluate_seeds(sub: Submission, per_seed: list[SeedResult], config: Any, test: HeldOutTestSet,
                   settings: ChildSettings) -> list[SeedResult]:
    """Score every seed's weights in one fresh child on the test images and their flips (secretly
    shuffled together); the seeds with their final and flipped accuracies."""
    images, order = test.final_eval_images()
    label = "evaluating the trained models"
    with WorkerRun(sub, label=label, forbidden=list(settings.forbidden), threads=settings.threads,
                   sandbox=settings.sandbox) as run:
        models = []
        for p in per_seed:
            raw = weights_bytes(Path(str(p.workdir)), f"training seed {p.seed}")
            if hashlib.sha256(raw).hexdigest() != p.weights_sha256:
                raise WorkerFailed(f"{Path(str(p.workdir)) / WEIGHTS_NAME} changed after training; score again")
            name = f"weights-{p.seed}.safetensors"
            run.path(name).write_bytes(raw)
            models.append(ModelToPredict(seed=p.seed, weights=name, out=f"logits-{p.seed}.npy"))
        job = PredictJob(images=run.put_array("test_images.npy", images), models=tuple(models),
                         num_classes=config.num_classes, batch_size=config.eval_batch_size,
                         channels_last=config.channels_last)
        report = run.run("predict", job.to_job(), time_limit_s=settings.predict_limit_s, device=settings.device)
        check_keys(report, ENVELOPE | {"outputs"}, label, "")
        done = []
        for p, m in zip(per_seed, models):
            logits = read_logits(run.scratch, m.out, len(order), config.num_classes, f"{label}, seed {p.seed}")
            plain, flipped = test.split_final_logits(logits, order)
            done.append(p.with_final(test.accuracy(plain), test.accuracy(flipped)))
    return done
