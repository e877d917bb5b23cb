"""The training loop: one function, :func:`train`, for the package, the scorer and submissions.

Read top to bottom, a run is: set up (data on the device, model, optimiser, schedule) ->
resume (from the work folder's checkpoint, if any) -> epochs (train one epoch, evaluate,
record, checkpoint) -> result. Built for speed and faithfulness to Wu et al. (ICLR 2023):

* the whole training set lives on the device as one uint8 ``(N, 3, 32, 32)`` tensor; every batch
  is gathered from it by index, scaled to [0, 1] (no mean/std normalisation, like the authors'
  ``ToTensor()``-only pipeline, unless ``normalize`` asks for it inside the model, see
  :mod:`.normalization`) and augmented on the device with per-image random parameters drawn
  from a seeded generator;
* optional bf16 autocast (TF32 on CUDA with it), channels-last and ``torch.compile``, on CUDA and
  on the CPU alike; the paper preset runs float32 like the authors' code;
* optional L-inf PGD adversarial training (:mod:`.adversarial`);
* optional submission hooks (:class:`~.config.TrainingHooks`): ``preprocess``,
  ``make_optimizer`` and ``train_step`` replace their part of the loop and nothing else, so a
  submission gets the same data, seeding, checkpoints and records as a registered model;
* atomic per-epoch checkpoints; a resumed run ends bitwise-identical to an uninterrupted one on
  CPU (all randomness is re-derived from (seed, epoch, rank) at the start of every epoch);
* test labels are never needed to train: evaluation is an optional ``evaluator`` the caller owns.

Accuracies are fractions in [0, 1] throughout (the paper prints percentages).

It stays one module (a little over 400 lines) because its phases share one ``_Run`` state and
read best in the order they run; the data, evaluation, checkpoint-file and config pieces live
in their own modules beside it.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..runtime import DistContext, current_context, derive_seed, kernel_settings, resolve_device
from .accel import mark_step, training_fast_path
from .adversarial import pgd_linf
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    MODEL_NAME,
    RESULT_NAME,
    THETA0_NAME,
    check_resume_compatible,
    load_checkpoint,
    save_checkpoint,
)
from .data import prepare_training_data, split_for_attack
from .config import RESUME_FREE_FIELDS, EpochRecord, HookError, TrainConfig, TrainingHooks, TrainResult
from .distributed import all_reduce_sum, barrier, broadcast_object, shard_indices
from .evaluation import Evaluator, as_images, as_labels, autocast, parameter_distance
from .normalization import attach_input_normalization
from .optim import build_optimizer, build_scheduler

__all__ = ["train"]


# ----------------------------------------------------------------------------------------------
# set-up: everything an epoch needs, decided once
# ----------------------------------------------------------------------------------------------


@dataclass
class _Run:
    config: TrainConfig
    ctx: DistContext
    device: torch.device
    data_u8: torch.Tensor  # (N, 3, H, W) uint8 on the device
    data_y: torch.Tensor
    raw: nn.Module  # the model being trained (unwrapped)
    fwd: nn.Module  # what the training forward pass calls (DDP and/or compiled)
    attack_fwd: nn.Module  # what PGD calls (never DDP: it must not trigger gradient reduction)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    pre_attack: Any  # label-preserving augmentation (None: custom mixing augmentation)
    post_attack: list[Any]  # mixing stages that run after the attack
    train_step: Callable[..., Any] | None  # a submission's step, or None for the built-in one
    theta0: dict[str, torch.Tensor]
    param_count: int
    fast: dict[str, Any]  # what training_fast_path decided (fused optimizer, compile mode, CUDA graphs)
    records: list[EpochRecord] = field(default_factory=list)
    start_epoch: int = 0
    elapsed_before: float = 0.0

    @property
    def n_train(self) -> int:
        return int(self.data_u8.shape[0])

    @property
    def channels_last(self) -> bool:
        return self.config.channels_last

    @property
    def amp(self) -> bool:
        return self.config.amp

    def precision(self) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {"autocast": "bfloat16" if self.amp else None, "tf32": bool(self.amp and cuda),
                "channels_last": self.channels_last, "compiled": self.config.compile}


def _make_optimizer(model: nn.Module, config: TrainConfig, hooks: TrainingHooks | None) -> torch.optim.Optimizer:
    factory = getattr(hooks, "make_optimizer", None)
    if factory is None:
        return build_optimizer(model, config)
    try:
        optimizer = factory(model, config)
    except Exception as exc:  # noqa: BLE001 - submission code
        raise HookError(f"make_optimizer failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise HookError(f"make_optimizer must return a torch.optim.Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _preprocess(hooks: TrainingHooks | None, images: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """A submission's ``preprocess`` on a copy of the training set; must return the same uint8 shape."""
    fn = getattr(hooks, "preprocess", None)
    if fn is None:
        return images
    torch.manual_seed(derive_seed(seed, "preprocess"))
    try:
        out = fn(images.clone(), labels.clone())
    except Exception as exc:  # noqa: BLE001 - submission code
        raise HookError(f"preprocess failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(out))
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or tuple(out.shape) != tuple(images.shape):
        got = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise HookError(f"preprocess must return uint8 images of shape {tuple(images.shape)}, got {got}")
    return out.cpu().contiguous()


def _set_up(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
            ctx: DistContext, device: torch.device, augmentation: Any, hooks: TrainingHooks | None) -> _Run:
    if config.batch_size % ctx.world_size:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by world size {ctx.world_size}")
    train_step = getattr(hooks, "train_step", None)
    if train_step is not None and config.adversarial is not None:
        raise ValueError("a train_step hook cannot be combined with adversarial training: attack inside the step")
    images = _preprocess(hooks, images, labels, config.seed)
    data_u8, data_y = prepare_training_data(images, labels, config, device)

    if augmentation is None:
        from .augment import build_augmentation

        augmentation = build_augmentation(config.augmentation, num_classes=config.num_classes)
    if config.adversarial is not None:
        pre_attack, post_attack = split_for_attack(augmentation, config.augmentation)
    else:
        pre_attack, post_attack = augmentation, []

    raw = model.to(device)
    if config.normalize:
        attach_input_normalization(raw)
    if config.channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(raw, config, hooks)
    fwd: nn.Module = raw
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(raw, device_ids=[device.index] if device.type == "cuda" else None)
    fwd, attack_fwd, optimizer, fast = training_fast_path(  # plain on CPU and under `deterministic`
        raw, fwd, optimizer, device, compile=config.compile, deterministic=config.deterministic,
        distributed=ctx.distributed, own_optimizer=getattr(hooks, "make_optimizer", None) is not None,
        own_step=train_step is not None)
    return _Run(
        config=config, ctx=ctx, device=device, data_u8=data_u8, data_y=data_y, raw=raw, fwd=fwd,
        attack_fwd=attack_fwd, optimizer=optimizer, scheduler=build_scheduler(optimizer, config),
        pre_attack=pre_attack, post_attack=post_attack, train_step=train_step,
        theta0={k: v.detach().clone() for k, v in raw.named_parameters()},
        param_count=sum(p.numel() for p in raw.parameters() if p.requires_grad), fast=fast,
    )


# ----------------------------------------------------------------------------------------------
# resume and checkpoint
# ----------------------------------------------------------------------------------------------


def _resume(run: _Run, workdir: Path | None) -> None:
    """Continue from ``workdir``'s checkpoint if there is one; else record theta_0 there."""
    if workdir is None:
        return
    ckpt_path, theta0_path = workdir / CHECKPOINT_NAME, workdir / THETA0_NAME
    if not ckpt_path.exists():
        if run.ctx.is_main:
            save_checkpoint({k: v.cpu() for k, v in run.theta0.items()}, theta0_path)
        return
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{ckpt_path}: unsupported checkpoint format {ckpt.get('format')!r}")
    check_resume_compatible(ckpt["config"], run.config.to_dict(), RESUME_FREE_FIELDS)
    if ckpt.get("world_size", 1) != run.ctx.world_size or ckpt.get("num_train") != run.n_train:
        raise ValueError(
            f"{ckpt_path}: written with world_size={ckpt.get('world_size')} and {ckpt.get('num_train')} "
            f"training images; now world_size={run.ctx.world_size}, {run.n_train} images"
        )
    if not theta0_path.exists():
        raise FileNotFoundError(f"{theta0_path} is missing: cannot resume ||theta - theta_0|| records")
    run.raw.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if run.device.type == "cuda" and ckpt["rng"].get("cuda"):
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"][0], run.device)
    run.records = [EpochRecord.from_dict(r) for r in ckpt["records"]]
    run.start_epoch = int(ckpt["epoch"])
    run.elapsed_before = float(ckpt.get("elapsed", 0.0))
    run.theta0 = {k: v.to(run.device) for k, v in load_checkpoint(theta0_path).items()}


def _checkpoint(run: _Run, workdir: Path, epoch: int, elapsed: float) -> None:
    """Everything needed to continue after ``epoch`` (1-based), written by rank 0."""
    if run.ctx.is_main:
        cuda = run.device.type == "cuda"
        save_checkpoint({
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "config": run.config.to_dict(),
            "model": run.raw.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": [torch.cuda.get_rng_state(run.device)] if cuda else []},
            "records": [r.to_dict() for r in run.records],
            "world_size": run.ctx.world_size,
            "num_train": run.n_train,
            "elapsed": elapsed,
        }, workdir / CHECKPOINT_NAME)
    barrier(run.ctx)


# ----------------------------------------------------------------------------------------------
# one epoch
# ----------------------------------------------------------------------------------------------


def _builtin_step(run: _Run, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward (autocast if asked), float32 cross-entropy, backward, optimiser step -> (loss, logits)."""
    mark_step(run.fast["cuda_graphs"])
    with autocast(run.device, run.amp):
        logits = run.fwd(x)
    loss = F.cross_entropy(logits.float(), targets)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return loss.detach(), logits.detach()


def _train_epoch(run: _Run, epoch: int, show: bool) -> tuple[list[float], float]:
    """One pass over this rank's shard; returns the all-reduced [loss sum, correct, seen] and seconds.

    Every random draw of the epoch comes from (seed, epoch[, rank]), so a resumed run repeats it.
    """
    cfg, ctx, device = run.config, run.ctx, run.device
    torch.manual_seed(derive_seed(cfg.seed, epoch, ctx.rank, "global"))
    perm_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, epoch, "perm"))
    aug_gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, epoch, ctx.rank, "aug"))
    hook_gen = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, epoch, "hook"))
    local_bs = cfg.batch_size // ctx.world_size
    shard = shard_indices(torch.randperm(run.n_train, generator=perm_gen), ctx.rank, ctx.world_size).to(device)
    n_steps = shard.numel() // local_bs if cfg.drop_last else -(-shard.numel() // local_bs)

    run.raw.train()
    t0 = time.perf_counter()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * batch, correct, seen
    bar = tqdm(total=n_steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True) if show else None
    for step in range(n_steps):
        bidx = shard[step * local_bs : (step + 1) * local_bs]
        if bidx.numel() < 2 and n_steps > 1:
            continue  # a 1-image tail batch would break BatchNorm in train mode
        x = run.data_u8[bidx].float().div_(255)
        y = run.data_y[bidx]
        if run.pre_attack is not None:
            x, targets = run.pre_attack(x, y, aug_gen)
        else:  # custom mixing augmentation: attack the raw batch with hard labels
            targets = F.one_hot(y, cfg.num_classes).float()
        if run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg.adversarial is not None:
            adv = cfg.adversarial
            x = pgd_linf(run.raw, x, targets, eps=adv.eps, step_size=adv.step_size, steps=adv.steps,
                         random_start=adv.random_start, generator=aug_gen, bn_mode=adv.bn_mode,
                         autocast_dtype=torch.bfloat16 if run.amp else None, forward=run.attack_fwd)
            for stage in run.post_attack:
                x, targets = stage(x, targets, aug_gen)
            if run.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        b = x.shape[0]
        if run.train_step is None:
            loss, logits = _builtin_step(run, x, targets)
            with torch.no_grad():
                # soft-label accuracy: one-hot -> correct count; mixup -> lam*[p==a] + (1-lam)*[p==b]
                sums[1] += targets.gather(1, logits.argmax(1, keepdim=True)).double().sum()
        else:
            try:
                loss = run.train_step(run.fwd, x, targets, run.optimizer, epoch=epoch, step=step, generator=hook_gen)
            except Exception as exc:  # noqa: BLE001 - submission code
                raise HookError(f"train_step failed at epoch {epoch + 1} step {step}: "
                                f"{type(exc).__name__}: {exc}") from exc
            loss = torch.as_tensor(float("nan") if loss is None else loss.detach() if isinstance(loss, torch.Tensor)
                                   else float(loss), device=device)
        sums[0] += loss.double() * b
        sums[2] += b
        if bar is not None:
            bar.update(1)
            if step % 20 == 0 or step == n_steps - 1:
                seen = max(sums[2].item(), 1)
                bar.set_postfix(loss=f"{sums[0].item() / seen:.3f}", acc=f"{sums[1].item() / seen:.3f}")
    if bar is not None:
        bar.close()
    totals = all_reduce_sum(sums, ctx).tolist()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return totals, time.perf_counter() - t0


def _record_epoch(run: _Run, epoch: int, lr: float, totals: list[float], train_time: float,
                  evaluator: Callable[[nn.Module], float] | None, elapsed: Callable[[], float]) -> EpochRecord:
    """Evaluate (every ``eval_every`` epochs and after the last) and build the epoch's record."""
    cfg = run.config
    t1 = time.perf_counter()
    test_acc: float | None = None
    if evaluator is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
        test_acc = float(evaluator(run.raw)) if run.ctx.is_main else None
        test_acc = broadcast_object(test_acc, run.ctx)
    seen = max(totals[2], 1)
    return EpochRecord(
        epoch=epoch + 1,
        lr=lr,
        train_loss=totals[0] / seen,
        train_acc=totals[1] / seen if run.train_step is None else None,  # type: ignore[arg-type]
        test_acc=test_acc,
        param_distance=parameter_distance(run.raw, run.theta0),
        train_time=train_time,
        eval_time=time.perf_counter() - t1,
        images_per_sec=totals[2] / train_time if train_time > 0 else float("nan"),
        elapsed=elapsed(),
    )


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------


def train(
    model: nn.Module | str,
    train_images: Any,
    train_labels: Any,
    test_images: Any = None,
    test_labels: Any = None,
    config: TrainConfig | None = None,
    *,
    device: torch.device | str | None = None,
    workdir: str | Path | None = None,
    progress: bool = True,
    callback: Callable[[EpochRecord, nn.Module], bool | None] | None = None,
    evaluator: Callable[[nn.Module], float] | None = None,
    augmentation: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
    hooks: TrainingHooks | None = None,
) -> TrainResult:
    """Train ``model`` on uint8 ``(N, 32, 32, 3)`` images and int labels; return a :class:`TrainResult`.

    * ``test_images``/``test_labels`` are optional; when given (and no ``evaluator``), clean test
      accuracy is measured every ``config.eval_every`` epochs and after the last epoch. Pass your
      own ``evaluator(model) -> accuracy`` instead to keep test data away from this function.
    * ``model`` may be a registry name (``cifar10s.models.build_model``), built with the seed.
    * ``workdir``: per-epoch atomic checkpoints; if it already holds a checkpoint of the same
      configuration, training resumes from it (and ends with identical weights).
    * ``callback(record, model)`` runs after each epoch (after the checkpoint is written);
      returning ``True`` stops training (the result then has ``completed=False``). Under DDP it
      runs on every rank and must return the same value everywhere.
    * ``augmentation``: an augmentation object to use instead of ``build_augmentation(config.augmentation)``.
    * ``hooks``: a submission's ``preprocess`` / ``make_optimizer`` / ``train_step``
      (:class:`~.config.TrainingHooks`); failures raise :class:`~.config.HookError`.

    The model is trained in place; under ``torchrun`` the same call trains with DDP (see
    :mod:`.distributed`).
    """
    config = config or TrainConfig()
    ctx = current_context()
    device = resolve_device(device, ctx)
    if isinstance(model, str):
        from ..models import build_model

        config = config if config.model_name else config.replace(model_name=model)
        torch.manual_seed(derive_seed(config.seed, "init"))
        model = build_model(model, num_classes=config.num_classes)
    images = as_images(train_images, "train_images")
    labels = as_labels(train_labels, images.shape[0], config.num_classes, "train_labels")
    if evaluator is None and test_images is not None:
        if test_labels is None:
            raise ValueError("test_images given without test_labels")
        evaluator = Evaluator(test_images, test_labels, batch_size=config.eval_batch_size, subset=config.eval_subset)

    # TF32 only together with bf16 autocast (amp=False means float32 throughout); the process's
    # flags are restored after the run
    with kernel_settings(device, deterministic=config.deterministic, tf32=config.amp):
        return _train_loop(model, images, labels, config, ctx, device, workdir, progress, callback, evaluator,
                           augmentation, hooks)


def _train_loop(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                ctx: DistContext, device: torch.device, workdir: str | Path | None, progress: bool,
                callback: Callable[[EpochRecord, nn.Module], bool | None] | None,
                evaluator: Callable[[nn.Module], float] | None, augmentation: Any,
                hooks: TrainingHooks | None) -> TrainResult:
    run = _set_up(model, images, labels, config, ctx, device, augmentation, hooks)
    wd = Path(workdir) if workdir is not None else None
    _resume(run, wd)
    session_start = time.perf_counter()

    def elapsed() -> float:
        return run.elapsed_before + (time.perf_counter() - session_start)

    show = progress and ctx.is_main
    completed = True
    for epoch in range(run.start_epoch, config.epochs):
        lr = run.scheduler.set_epoch(epoch)[0]
        totals, train_time = _train_epoch(run, epoch, show)
        run.scheduler.step()
        record = _record_epoch(run, epoch, float(lr), totals, train_time, evaluator, elapsed)
        run.records.append(record)
        if show:
            _print_record(record, config.epochs)
        if wd is not None and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs):
            _checkpoint(run, wd, epoch + 1, record.elapsed)
        if callback is not None and callback(record, run.raw):
            completed = epoch + 1 == config.epochs
            break

    result = _make_result(run, completed and len(run.records) == config.epochs, elapsed())
    if wd is not None and ctx.is_main:
        if result.completed:
            save_checkpoint(run.raw.state_dict(), wd / MODEL_NAME)
        result.save(wd / RESULT_NAME)
    barrier(ctx)
    return result


def _print_record(record: EpochRecord, epochs: int) -> None:
    acc = "-" if record.test_acc is None else f"{record.test_acc:.4f}"
    train_acc = "-" if record.train_acc is None else f"{record.train_acc:.4f}"
    tqdm.write(
        f"epoch {record.epoch}/{epochs} lr {record.lr:.5f} loss {record.train_loss:.4f} "
        f"train_acc {train_acc} test_acc {acc} |theta-theta0| {record.param_distance:.3f} "
        f"{record.images_per_sec:.0f} img/s"
    )


def _make_result(run: _Run, completed: bool, total_time: float) -> TrainResult:
    from .presets import diff_from_paper
    from .selection import best_epoch

    config, records = run.config, run.records
    best_acc, best_at = best_epoch((r.epoch, r.test_acc) for r in records)
    final: EpochRecord | None = records[-1] if records else None
    try:
        diff = diff_from_paper(config, config.model_name)
    except Exception as exc:  # noqa: BLE001 - never lose a finished run over bookkeeping
        diff = {"_error": {"paper": None, "used": repr(exc)}}
    device = run.device
    return TrainResult(
        config=config,
        records=list(records),
        final_test_acc=final.test_acc if final is not None else None,
        best_test_acc=best_acc,
        best_epoch=best_at,
        final_train_acc=final.train_acc if final is not None else None,
        preset=config.preset,
        preset_diff=diff,
        completed=completed,
        num_train=run.n_train,
        world_size=run.ctx.world_size,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        total_time=total_time,
        resumed_from_epoch=run.start_epoch,
        param_count=run.param_count,
        environment={"torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__,
                     "fast_path": dict(run.fast)},
        precision=run.precision(),
    )
