"""The child process that runs submission code: ``python -I -B -m cifar10s.leaderboard.sandbox.worker job.json``.

Started by :mod:`.runner` (through ``runpy``, so that the child runs the scorer's own copy of the
package) in a fresh scratch folder (its working directory), with a minimal
environment and no path to the data root. What it is handed is in that folder (``job.json``, a
copy of the submission's files, the arrays of its task) and, for training, in the seed's work
folder. It never holds a test label:

* ``inspect``: import the entry (or look up the registered model), list its hooks, and with
  ``check_model`` build the model and run a dummy batch;
* ``train``: train one seed on the private copy of the training set, in the seed's work folder
  (checkpoints there, loaded with ``weights_only=True``, make an interrupted run resumable). After
  each evaluated epoch it writes the logits of the per-epoch test *images* (never labels) to
  ``epoch-logits/epoch-NNNN.npy``; at the end the weights as ``model.safetensors``;
* ``predict``: load trained weights (safetensors, no pickle) into a freshly built model and write
  its logits on the given images.

The last thing it does is write ``report.json`` (with the parent's nonce). The parent accepts no
task without it, and computes every accuracy itself.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from .jobs import PredictJob, TrainJob
from .runner import WEIGHTS_NAME, epoch_logits_name

__all__ = ["main"]

#: exit codes: 0 done, 3 the submission is at fault (report says why), 1 anything else
EXIT_SUBMISSION = 3


def _save_npy(path: Path, array: np.ndarray) -> None:
    from ...store import atomic_file

    with atomic_file(path) as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def _load_npy(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _prepare(job: dict[str, Any]) -> tuple[Any, Any]:
    """Threads, device and the submission's hooks (None for a registered model)."""
    import torch

    from ...runtime import resolve_device
    from .entry import load_hooks

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    spec = job["submission"]
    hooks = load_hooks(Path(spec["dir"]), spec["entry"]) if spec.get("entry") else None
    return resolve_device(job.get("device")), hooks


def _build(job: dict[str, Any], hooks: Any, seed: int, num_classes: int) -> Any:
    import torch

    from ...runtime import derive_seed
    from .entry import build_submission_model

    torch.manual_seed(derive_seed(seed, "init"))
    return build_submission_model(job["submission"], hooks, num_classes)


# ------------------------------------------------------------------------------------------------
# tasks


def _inspect(job: dict[str, Any]) -> dict[str, Any]:
    from .entry import check_model

    _device, hooks = _prepare(job)
    report: dict[str, Any] = {"hooks": hooks.names() if hooks is not None else [],
                              "training_method": hooks.training_method if hooks is not None else None}
    if job.get("check_model", True):
        report["param_count"] = check_model(job["submission"], hooks)
    return report


class _EpochLogits:
    """The trainer's evaluator: writes the model's logits on the per-epoch test images, returns NaN.

    The trainer evaluates after epochs ``e`` with ``e % eval_every == 0`` and after the last; the
    epochs still to come are known from the checkpoint, so each call knows its epoch.
    """

    def __init__(self, images: Any, workdir: Path, epochs: list[int], batch_size: int, channels_last: bool) -> None:
        self.images, self.workdir, self.pending = images, workdir, list(epochs)
        self.batch_size, self.channels_last = batch_size, channels_last
        self.last: int | None = None
        self._on: dict[str, Any] = {}

    def __call__(self, model: Any) -> float:
        from ...training.evaluation import predict_logits

        if not self.pending:
            raise RuntimeError("the trainer evaluated more epochs than expected")
        self.last = self.pending.pop(0)
        device = next(model.parameters()).device
        key = str(device)
        if key not in self._on:
            self._on = {key: self.images.to(device)}
        logits = predict_logits(model, self._on[key], device, self.batch_size, channels_last=self.channels_last)
        _save_npy(self.workdir / epoch_logits_name(self.last), logits.numpy().astype(np.float32))
        return float("nan")


def _start_epoch(workdir: Path) -> int:
    from ...training.checkpoint import CHECKPOINT_NAME, load_checkpoint

    path = workdir / CHECKPOINT_NAME
    return int(load_checkpoint(path)["epoch"]) if path.exists() else 0


def _train(job: dict[str, Any]) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_model

    from ...training.config import TrainConfig
    from ...training.trainer import train

    device, hooks = _prepare(job)
    task = TrainJob.from_job(job)
    config = TrainConfig.from_dict(task.config)
    workdir = Path(task.workdir)
    images = torch.from_numpy(_load_npy(task.train_images))
    labels = torch.from_numpy(_load_npy(task.train_labels))
    model = _build(job, hooks, config.seed, config.num_classes)
    start = _start_epoch(workdir)
    epochs = [e for e in range(start + 1, config.epochs + 1) if e % config.eval_every == 0 or e == config.epochs]
    evaluator = None
    if task.eval_images:
        evaluator = _EpochLogits(torch.from_numpy(_load_npy(task.eval_images)), workdir,
                                 epochs, config.eval_batch_size, config.channels_last)
    stop_after = task.stop_after_epoch

    def callback(record: Any, _model: Any) -> bool:
        if evaluator is not None and (record.test_acc is not None) != (evaluator.last == record.epoch):
            raise RuntimeError(f"per-epoch evaluation out of step at epoch {record.epoch}")
        return stop_after is not None and record.epoch >= int(stop_after)

    res = train(model, images, labels, config=config, device=device, workdir=workdir,
                progress=bool(job.get("progress")), callback=callback, evaluator=evaluator, hooks=hooks)
    if res.completed:
        tmp = workdir / f".{WEIGHTS_NAME}.tmp"
        save_model(model.cpu(), str(tmp))
        tmp.replace(workdir / WEIGHTS_NAME)
    out = res.to_dict()
    for r in out["records"]:  # the child has no labels: an evaluated epoch is one with a logits file
        r["evaluated"] = r.pop("test_acc") is not None
    for key in ("final_test_acc", "best_test_acc", "best_epoch"):
        out.pop(key, None)
    return {"completed": bool(res.completed), "result": out, "weights": WEIGHTS_NAME if res.completed else None}


def _predict(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    from ...training.evaluation import predict_logits
    from ...training.normalization import load_weights

    device, hooks = _prepare(job)
    task = PredictJob.from_job(job)
    images = torch.from_numpy(_load_npy(task.images))
    on_device = images.to(device)
    outputs = []
    for item in task.models:
        model = _build(job, hooks, int(item.seed), int(task.num_classes))
        load_weights(model, item.weights)  # strict; re-attaches a trained input normalisation
        model.to(device)
        logits = predict_logits(model, on_device, device, int(task.batch_size),
                                channels_last=bool(task.channels_last))
        _save_npy(Path(item.out), logits.numpy().astype(np.float32))
        outputs.append(item.out)
    return {"outputs": outputs}


TASKS = {"inspect": _inspect, "train": _train, "predict": _predict}


def _clean(obj: Any) -> Any:
    """JSON without NaN/inf (they become null)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    from ...store import atomic_write_json
    from .entry import EntryError

    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text())
    report: dict[str, Any] = {"nonce": job["nonce"], "task": job["task"]}
    code = 0
    try:
        report.update(ok=True, **TASKS[job["task"]](job))
    except EntryError as exc:
        report.update(ok=False, kind="submission", problems=exc.problems)
        code = EXIT_SUBMISSION
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        from ...training.config import HookError

        if isinstance(exc, HookError):
            entry = job["submission"].get("entry") or "submission"
            report.update(ok=False, kind="submission", problems=[f"{entry}: {exc}"])
            code = EXIT_SUBMISSION
        else:
            traceback.print_exc()
            report.update(ok=False, kind="error", message=f"{type(exc).__name__}: {exc}")
            code = 1
    atomic_write_json(Path(job["report"]), _clean(report))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
