"""Error-minimizing (EM) noise: the min-min bi-level search of Huang et al. (ICLR 2021).

Each *round* (the authors' ``while condition`` loop in ``perturbation.py``):

1. train the generator (a CIFAR ResNet-18) for ``train_steps`` SGD steps on ``clip(x + noise)``;
   the batches come from one loader iterator that persists across rounds, so successive rounds
   walk through the epoch and a new epoch starts when it is exhausted;
2. freeze the generator in eval mode and, for every batch of the training set in loader order,
   run ``pgd_steps`` signed-gradient steps of ``step_size`` that *minimize* the cross-entropy,
   projecting onto the L-inf ``epsilon`` ball and keeping ``x + noise`` in [0, 1]
   (class-wise: one pattern per class, set to the batch mean of the per-sample updates);
3. evaluate the frozen generator on the whole perturbed training set and stop when its error is
   ``<= stop_error``.

The result is quantized to integer units of 1/255 and ADDED WITH ITS SIGN (see
:mod:`cifar10s.em.quantize`; the authors' dataset code drops negative values, an acknowledged
bug). Everything runs on tensors held on the device; the run is deterministic for a given seed on
a given machine, checkpointed atomically after every round and resumable bit-for-bit, and under
``torchrun`` the generator is wrapped in DDP and the noise search is sharded over the ranks.

This module drives the run round by round (resume, time guard, progress, result);
:mod:`cifar10s.em.run` holds the run's state machine.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cifar10s.em import budget
from cifar10s.em import checkpoint as ckpt
from cifar10s.em.config import RESUME_FREE_FIELDS, EMConfig
from cifar10s.em.errors import SlowBuildError
from cifar10s.em.progress import round_summary
from cifar10s.em.quantize import apply_noise, quantize_noise
from cifar10s.em.run import _EMRun, em_kernel_settings
from cifar10s.runtime import DistContext, all_reduce_sum, barrier, current_context, resolve_device

RoundCallback = Callable[[dict[str, Any]], None]


@dataclass
class EMResult:
    """Output of :func:`generate_em_noise`.

    ``noise`` is the effective integer noise (units of 1/255, ``|noise| <= epsilon``) and
    ``perturbed == images + noise`` exactly (no saturation left). For class-wise runs
    ``class_noise`` holds the per-class pattern before the per-image [0, 255] clipping.
    """

    noise: np.ndarray
    perturbed: np.ndarray
    rounds: int
    converged: bool
    log: list[dict[str, Any]]
    config: EMConfig
    class_noise: np.ndarray | None = None
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
def _check_inputs(images: np.ndarray, labels: np.ndarray, config: EMConfig) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"images must be uint8 (N, 32, 32, 3), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be (N,) matching images, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= config.num_classes):
        raise ValueError(f"labels must be in [0, {config.num_classes})")
    return images, labels.astype(np.int64)


def _check_resume(state: dict[str, Any], cfg: EMConfig, fingerprint: str, world: int) -> None:
    if state.get("fingerprint") != fingerprint:
        raise ValueError("the checkpoint in workdir was made from different images/labels")
    saved = dict(state["config"])
    now = cfg.to_dict()
    diff = sorted(k for k in set(saved) | set(now)
                  if k not in RESUME_FREE_FIELDS and saved.get(k) != now.get(k))
    if diff:
        raise ValueError(f"the checkpoint in workdir used a different config for {diff}; "
                         "use another workdir or the same config")
    if int(state.get("world_size", 1)) != world:
        warnings.warn(f"resuming a run made with world size {state.get('world_size')} on {world} "
                      "processes: the result will differ from an uninterrupted run", stacklevel=3)


def _estimate(images: np.ndarray, labels: np.ndarray, cfg: EMConfig, dev: torch.device, dd: DistContext,
              rounds_done: int) -> budget.EMTimeEstimate:
    """The probe's estimate of the rounds left; under torchrun the mean over ranks, so that every
    rank takes the same decision."""
    estimate = budget.measure_em_time(images, labels, cfg, dev, rounds_done=rounds_done,
                                      world_size=dd.world_size)
    if dd.distributed:
        total = all_reduce_sum(torch.tensor([estimate.round_seconds], dtype=torch.float64, device=dev), dd)
        estimate = estimate.with_round_seconds(float(total.item()) / dd.world_size)
    return estimate


def generate_em_noise(
    images: np.ndarray,
    labels: np.ndarray,
    config: EMConfig,
    *,
    device: str | torch.device | None = None,
    workdir: Path | None = None,
    progress: bool = True,
    on_round: RoundCallback | None = None,
    allow_slow: bool = False,
) -> EMResult:
    """Generate error-minimizing noise for ``images`` (uint8 NHWC) with labels ``labels``.

    ``workdir``: where ``em_checkpoint.pt`` (after every round, atomically) and ``em_log.jsonl``
    (one JSON line per round) go; if it already holds a checkpoint for the same data and config,
    the run continues from it and ends with the same noise as an uninterrupted run.
    ``on_round`` is called with each round's log record after its checkpoint is written.
    Before the first round a probe of a few seconds times the run on this device
    (:mod:`cifar10s.em.budget`); if the rounds left would take more than an hour,
    :class:`~cifar10s.em.errors.SlowBuildError` is raised unless ``allow_slow`` is set (which also
    skips the probe). ``progress`` shows bars for the rounds and their phases and, after each
    round, the accuracy trend and the time left.
    Under ``torchrun`` (an initialized default process group) every rank must call this with the
    same arguments; all ranks return the whole result, rank 0 writes the files.
    """
    cfg = config.resolved()
    images, labels = _check_inputs(images, labels, cfg)
    dd = current_context()
    dev = resolve_device(device)
    is_main = dd.is_main
    workdir = Path(workdir) if workdir is not None else None
    fingerprint = ckpt.data_fingerprint(images, labels)

    with em_kernel_settings(cfg, dev):
        run = _EMRun(images, labels, cfg, dev, dd)
        if workdir is not None:
            state = ckpt.load_state(workdir)
            if state is not None:
                _check_resume(state, cfg, fingerprint, dd.world_size)
                run.load(state)
                if is_main:
                    ckpt.rewrite_log(workdir, run.log)
                del state
        run._setup_forwards()

        from tqdm.auto import tqdm

        if not allow_slow and not run.converged and run.round < cfg.max_rounds:
            estimate = _estimate(images, labels, cfg, dev, dd, run.round)
            if progress and is_main:
                tqdm.write(f"EM time estimate: {estimate.describe()}", file=sys.stderr)
            if estimate.seconds > budget.SLOW_LIMIT_S:
                raise SlowBuildError(estimate, limit_s=budget.SLOW_LIMIT_S)

        target = 1.0 - cfg.stop_error
        bar = tqdm(total=cfg.max_rounds, initial=min(run.round, cfg.max_rounds), unit="round",
                   desc=f"EM {cfg.mode}", disable=not (progress and is_main))
        if run.log:
            bar.set_postfix_str(f"acc {run.log[-1]['eval_acc']:.4f} / target >= {target:.2f}")
        try:
            while not run.converged and run.round < cfg.max_rounds:
                t0 = time.perf_counter()
                rec: dict[str, Any] = {"round": run.round + 1}
                rec.update(run.train_window(progress and is_main))
                t1 = time.perf_counter()
                processed = run.search(progress and is_main)
                t2 = time.perf_counter()
                rec.update(run.evaluate())
                t3 = time.perf_counter()
                rec.update(run.noise_stats())
                run.round += 1
                run.converged = rec["eval_error"] <= cfg.stop_error
                rec.update({
                    "converged": run.converged,
                    "epoch": run.epoch,
                    "cursor": run.cursor,
                    "seconds": t3 - t0,
                    "seconds_train": t1 - t0,
                    "seconds_search": t2 - t1,
                    "seconds_eval": t3 - t2,
                    "images_x_pgd_steps_per_s": processed * int(cfg.pgd_steps) / max(t2 - t1, 1e-9),
                })
                run.log.append(rec)
                if workdir is not None and is_main:
                    st = run.state()
                    st["fingerprint"] = fingerprint
                    ckpt.save_state(workdir, st)
                    ckpt.append_log(workdir, rec)
                bar.update(1)
                bar.set_postfix_str(f"acc {rec['eval_acc']:.4f} / target >= {target:.2f}")
                if progress and is_main:
                    tqdm.write(round_summary(run.log, cfg.max_rounds, cfg.stop_error), file=sys.stderr)
                if on_round is not None:
                    on_round(dict(rec))
        finally:
            bar.close()
            with contextlib.suppress(Exception):
                barrier(dd)

        eps_int = cfg.epsilon_int
        class_noise = None
        if cfg.mode == "samplewise":
            float_noise = run.float_noise_nhwc()
        else:
            class_float = run.float_noise_nhwc()
            class_noise = quantize_noise(class_float, None, epsilon=eps_int)
            float_noise = class_float[labels]
        noise = np.empty(images.shape, dtype=np.int8)
        for s in range(0, len(images), 8192):  # chunks keep the float temporaries small
            noise[s:s + 8192] = quantize_noise(float_noise[s:s + 8192], images[s:s + 8192],
                                              epsilon=eps_int)
        perturbed = apply_noise(images, noise)
        return EMResult(
            noise=noise, perturbed=perturbed, rounds=run.round, converged=run.converged,
            log=list(run.log), config=cfg, class_noise=class_noise, world_size=dd.world_size,
            extra={"fingerprint": fingerprint, "device": str(dev),
                   "numerics": {**cfg.numerics(dev.type), **run.accel}},
        )


__all__ = ["EMResult", "generate_em_noise"]
