"""Train a model on a (possibly unlearnable) CIFAR-10 training set; score it on clean test data.

The loop is built for speed and faithfulness to Wu et al. (ICLR 2023):

* the whole training set lives on the device as one uint8 ``(N, 3, 32, 32)`` tensor; every batch
  is gathered from it by index, converted to float in [0, 1] (no mean/std normalisation, like the
  authors' ``ToTensor()``-only pipeline) and augmented on the device by the augmentation object
  with per-image random parameters drawn from a seeded generator;
* on CUDA: channels-last memory format, bf16 autocast, optional ``torch.compile``;
* optional L-inf PGD adversarial training (:mod:`.adversarial`), gradients w.r.t. the
  perturbation only;
* per-epoch records (train loss/accuracy, clean test accuracy, ||theta - theta_0||_F, timings);
* atomic per-epoch checkpoints; a resumed run ends bitwise-identical to an uninterrupted one on
  CPU (all randomness is re-derived from (seed, epoch, rank) at the start of every epoch, and the
  RNG/generator states are saved too);
* test labels are never needed to train: evaluation is an optional ``evaluator`` the caller owns
  (or built from ``test_images``/``test_labels`` when given).

Accuracies are fractions in [0, 1] throughout (the paper prints percentages).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..store import atomic_file, atomic_write_bytes
from .adversarial import AdversarialConfig, pgd_linf
from .distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_object,
    current_context,
    shard_indices,
)
from .optim import build_optimizer, build_scheduler

__all__ = [
    "CHECKPOINT_NAME",
    "EpochRecord",
    "Evaluator",
    "TrainConfig",
    "TrainResult",
    "atomic_save",
    "atomic_write_text",
    "evaluate",
    "load_checkpoint",
    "parameter_distance",
    "train",
]

CHECKPOINT_NAME = "checkpoint.pt"
THETA0_NAME = "theta0.pt"
RESULT_NAME = "result.json"
MODEL_NAME = "model.pt"
CHECKPOINT_FORMAT = 1

PARAM_DISTANCE_DEFINITION = (
    "sqrt(sum over model.named_parameters() of ||p - p_0||_F^2): every parameter (weights, biases, "
    "normalisation affine weights), no buffers (BatchNorm running statistics excluded); computed in "
    "float64; the same quantity as the authors' utils.net_param_diff_norm"
)

# Fields that may change between an interrupted run and its resumption without changing the result.
_RESUME_FREE_FIELDS = frozenset({"eval_every", "eval_batch_size", "eval_subset", "checkpoint_every", "compile", "preset"})


# ----------------------------------------------------------------------------------------------
# configuration and results
# ----------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything that determines a training run. Defaults are the paper's CNN settings."""

    epochs: int = 200
    #: global batch size (split across ranks under DDP); paper: 128 (64 for WRN-28-10)
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" | "adamw"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    schedule: str = "multistep"  # "multistep" | "cosine" | "constant"; stepped once per epoch
    #: multistep milestones as fractions of ``epochs`` (values >= 1 are absolute epochs)
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    #: cosine floor (authors' code: CosineAnnealingLR(eta_min=1e-5))
    eta_min: float = 1e-5
    warmup_epochs: int = 0
    #: name understood by cifar10s.training.augment.build_augmentation
    augmentation: str = "standard"
    adversarial: AdversarialConfig | None = None
    #: name understood by cifar10s.training.defenses.build_defense; applied once to the uint8 set
    defense: str | None = None
    #: keyword settings for the defense, e.g. {"quality": 10} for "jpeg"
    defense_kwargs: dict[str, Any] | None = None
    #: keep the last, smaller batch of an epoch (the authors' DataLoader default)
    drop_last: bool = False
    #: train on a fixed random subset of this many images (smoke tests); None = all
    train_subset: int | None = None
    #: evaluate on a fixed random subset of this many test images; None = all
    eval_subset: int | None = None
    num_classes: int = 10
    seed: int = 0
    #: bf16 autocast (CUDA only; CPU always runs in float32)
    amp: bool = True
    #: channels-last memory format (CUDA only)
    channels_last: bool = True
    compile: bool = False
    #: cudnn.deterministic=True, benchmark=False (CUDA); CPU runs are deterministic regardless
    deterministic: bool = True
    eval_every: int = 1
    eval_batch_size: int = 1000
    checkpoint_every: int = 1
    #: informational: the preset this config came from and the model it was resolved for
    preset: str | None = None
    model_name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.adversarial, dict):
            self.adversarial = AdversarialConfig(**self.adversarial)
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.milestones = tuple(float(m) for m in self.milestones)
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs must be >= 0 and batch_size >= 1")
        if self.eval_every < 1 or self.checkpoint_every < 1:
            raise ValueError("eval_every and checkpoint_every must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["milestones"] = list(self.milestones)
        d["adversarial"] = None if self.adversarial is None else self.adversarial.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {sorted(unknown)}")
        d = dict(d)
        if d.get("adversarial") is not None and not isinstance(d["adversarial"], AdversarialConfig):
            d["adversarial"] = AdversarialConfig(**d["adversarial"])
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **_plain(changes)})


def _plain(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if isinstance(out.get("adversarial"), AdversarialConfig):
        out["adversarial"] = out["adversarial"].to_dict()
    return out


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    lr: float
    train_loss: float
    train_acc: float  # on the (augmented / adversarial) training batches, model in train mode
    test_acc: float | None  # clean test accuracy after this epoch (None: not evaluated)
    param_distance: float  # ||theta - theta_0||_F, see PARAM_DISTANCE_DEFINITION
    train_time: float  # seconds spent in the training steps of this epoch
    eval_time: float
    images_per_sec: float  # training images processed per second (all ranks together)
    elapsed: float  # seconds since the start of training (summed over resumed sessions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochRecord:
        return cls(**d)


@dataclass
class TrainResult:
    config: TrainConfig
    records: list[EpochRecord]
    final_test_acc: float | None
    best_test_acc: float | None
    best_epoch: int | None
    final_train_acc: float | None
    preset: str | None
    #: every config value that differs from the paper's settings for this model: {field: {"paper", "used"}}
    preset_diff: dict[str, dict[str, Any]]
    completed: bool
    num_train: int
    world_size: int
    device: str
    total_time: float
    resumed_from_epoch: int
    param_count: int
    param_distance_definition: str = PARAM_DISTANCE_DEFINITION
    environment: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        d["records"] = [r.to_dict() for r in self.records]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainResult:
        d = dict(d)
        d["config"] = TrainConfig.from_dict(d["config"])
        d["records"] = [EpochRecord.from_dict(r) for r in d["records"]]
        return cls(**d)

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainResult:
        return cls.from_dict(json.loads(Path(path).read_text()))


# ----------------------------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------------------------


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through :func:`cifar10s.store.atomic_file` (temp file, fsync, rename)."""
    with atomic_file(path) as f:
        torch.save(obj, f)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`train` (``weights_only=True``: no code is executed)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def _derive_seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _as_images(images: Any, name: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a uint8 numpy array or tensor, got {type(images).__name__}")
    if t.dtype != torch.uint8 or t.dim() != 4 or t.shape[-1] != 3:
        raise ValueError(f"{name}: expected uint8 (N, H, W, 3), got {tuple(t.shape)} {t.dtype}")
    return t


def _as_labels(labels: Any, n: int, num_classes: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    t = t.to(torch.int64).reshape(-1)
    if t.numel() != n:
        raise ValueError(f"{name}: {t.numel()} labels for {n} images")
    if n and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"{name}: labels must lie in [0, {num_classes})")
    return t


def _subset_indices(n: int, k: int | None, tag: str) -> torch.Tensor | None:
    """A fixed (seed-independent) random subset of ``k`` of ``n`` indices, in increasing order."""
    if k is None or k >= n:
        return None
    g = torch.Generator().manual_seed(_derive_seed("subset", tag, n, k))
    return torch.randperm(n, generator=g)[:k].sort().values


def _to_float_nchw(batch_u8_nhwc: torch.Tensor) -> torch.Tensor:
    return batch_u8_nhwc.permute(0, 3, 1, 2).float().div_(255)


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def parameter_distance(model: nn.Module, theta0: dict[str, torch.Tensor]) -> float:
    """||theta - theta_0||_F over all ``named_parameters`` (see ``PARAM_DISTANCE_DEFINITION``)."""
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for name, p in model.named_parameters():
            d = p.detach().double() - theta0[name].to(p.device).double()
            total += d.pow(2).sum().cpu()
    return float(total.sqrt())


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: Any,
    labels: Any,
    device: torch.device | str | None = None,
    batch_size: int = 1000,
    *,
    amp: bool = False,
    channels_last: bool = True,
) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` in eval mode on uint8 ``(N, 32, 32, 3)`` images.

    Images are scaled to [0, 1] exactly as in training. ``amp`` (bf16, CUDA only) is off by
    default so that scores are computed in float32. The model's train/eval mode is restored.
    """
    imgs = _as_images(images, "images")
    labs = _as_labels(labels, imgs.shape[0], 1 << 62, "labels")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    cl = channels_last and device.type == "cuda"
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        for s in range(0, imgs.shape[0], batch_size):
            x = _to_float_nchw(imgs[s : s + batch_size].to(device, non_blocking=True))
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            y = labs[s : s + batch_size].to(device, non_blocking=True)
            with _autocast(device, amp):
                logits = model(x)
            correct += (logits.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    n = imgs.shape[0]
    return float(correct.item()) / n if n else float("nan")


class Evaluator:
    """Clean-accuracy evaluator owned by the caller: ``Evaluator(images, labels)(model) -> float``.

    The test images are copied to the model's device once (as uint8) on first use.
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        *,
        batch_size: int = 1000,
        amp: bool = False,
        subset: int | None = None,
    ) -> None:
        imgs = _as_images(images, "test_images")
        labs = _as_labels(labels, imgs.shape[0], 1 << 62, "test_labels")
        idx = _subset_indices(imgs.shape[0], subset, "eval")
        if idx is not None:
            imgs, labs = imgs[idx], labs[idx]
        self.images, self.labels = imgs, labs
        self.batch_size = batch_size
        self.amp = amp
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __call__(self, model: nn.Module) -> float:
        device = next(model.parameters()).device
        key = str(device)
        if key not in self._cache:
            self._cache = {key: (self.images.to(device), self.labels.to(device))}
        imgs, labs = self._cache[key]
        return evaluate(model, imgs, labs, device, self.batch_size, amp=self.amp)


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------


def _check_resume_compatible(saved: dict[str, Any], current: dict[str, Any]) -> None:
    diffs = {
        k: (saved.get(k), current.get(k))
        for k in set(saved) | set(current)
        if k not in _RESUME_FREE_FIELDS and saved.get(k) != current.get(k)
    }
    if diffs:
        lines = ", ".join(f"{k}: checkpoint={a!r} now={b!r}" for k, (a, b) in sorted(diffs.items()))
        raise ValueError(
            "the checkpoint in workdir was written with a different training configuration "
            f"({lines}); use a fresh workdir or the original configuration"
        )


def _apply_defense(name: str, kwargs: dict[str, Any] | None, images: torch.Tensor) -> torch.Tensor:
    """Apply ``cifar10s.training.defenses.build_defense(name, **kwargs)`` once to the uint8 set."""
    from .defenses import build_defense

    defense = build_defense(name, **(kwargs or {}))
    out = defense(images.contiguous(), channels_last=True)
    out = torch.from_numpy(np.ascontiguousarray(out)) if isinstance(out, np.ndarray) else out
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or out.shape != images.shape:
        raise ValueError(f"defense {name!r} must return uint8 images of shape {tuple(images.shape)}")
    return out


def prepare_training_data(
    images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training subset with its defense applied, as one (N, 3, H, W) uint8 tensor on ``device``.

    Shared by :func:`train` and the leaderboard's custom-loop scorer, so both see the same data.
    """
    idx = _subset_indices(images.shape[0], config.train_subset, "train")
    if idx is not None:
        images, labels = images[idx], labels[idx]
    if config.defense:
        images = _apply_defense(config.defense, config.defense_kwargs, images.cpu())
    if int(images.shape[0]) == 0:
        raise ValueError("empty training set")
    return images.to(device).permute(0, 3, 1, 2).contiguous(), labels.to(device)


def _is_mixing_stage(stage: Any) -> bool:
    return type(stage).__name__ == "Mixup" or bool(getattr(stage, "mixes_labels", False))


def _split_for_attack(aug: Any, name: str) -> tuple[Any, list[Any]]:
    """Split an augmentation into (label-preserving part, mixing stages) for adversarial training.

    The authors attack the augmented batch *before* Mixup and mix the adversarial images
    (augmentation/Mixup.py: ``X = X + delta`` then ``mixup_data``). For a
    :class:`~cifar10s.training.augment.AugmentationPipeline` the stages up to the first mixing
    stage run first, then the attack, then the remaining stages. A custom callable that declares
    ``mixes_labels = True`` is run entirely after the attack; otherwise entirely before it.
    """
    stages = getattr(aug, "stages", None)
    if stages is not None and any(_is_mixing_stage(s) for s in stages):
        from .augment import AugmentationPipeline

        k = next(i for i, s in enumerate(stages) if _is_mixing_stage(s))
        pre = AugmentationPipeline(stages[:k], getattr(aug, "num_classes", 10), name=f"{name}[pre-mix]")
        return pre, list(stages[k:])
    if bool(getattr(aug, "mixes_labels", False)):
        return None, [aug]
    return aug, []


def _resolve_device(device: torch.device | str | None, ctx: DistContext) -> torch.device:
    if device is not None:
        return torch.device(device)
    return ctx.default_device()


def train(
    model: nn.Module | str,
    train_images: Any,
    train_labels: Any,
    test_images: Any = None,
    test_labels: Any = None,
    config: TrainConfig | None = None,
    *,
    device: torch.device | str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    callback: Callable[[EpochRecord, nn.Module], bool | None] | None = None,
    evaluator: Callable[[nn.Module], float] | None = None,
    augmentation: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
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

    The model is trained in place; under ``torchrun`` the same call trains with DDP (see
    :mod:`.distributed`). The global torch RNG is re-seeded from ``(config.seed, epoch, rank)`` at
    the start of every epoch.
    """
    config = config or TrainConfig()
    ctx = current_context()
    device = _resolve_device(device, ctx)
    cuda = device.type == "cuda"
    if config.batch_size % ctx.world_size:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by world size {ctx.world_size}")
    local_bs = config.batch_size // ctx.world_size

    if cuda:
        torch.backends.cudnn.deterministic = config.deterministic
        torch.backends.cudnn.benchmark = not config.deterministic
        # TF32 only together with bf16 autocast; amp=False means float32 throughout
        torch.backends.cuda.matmul.allow_tf32 = config.amp
        torch.backends.cudnn.allow_tf32 = config.amp

    if isinstance(model, str):
        from cifar10s.models import build_model

        config = config if config.model_name else config.replace(model_name=model)
        torch.manual_seed(_derive_seed(config.seed, "init"))
        model = build_model(model, num_classes=config.num_classes)

    # ---- data: one uint8 tensor on the device -----------------------------------------------
    images = _as_images(train_images, "train_images")
    labels = _as_labels(train_labels, images.shape[0], config.num_classes, "train_labels")
    data_u8, data_y = prepare_training_data(images, labels, config, device)
    n_train = int(data_u8.shape[0])

    if evaluator is None and test_images is not None:
        if test_labels is None:
            raise ValueError("test_images given without test_labels")
        evaluator = Evaluator(test_images, test_labels, batch_size=config.eval_batch_size, subset=config.eval_subset)

    if augmentation is None:
        from .augment import build_augmentation

        augmentation = build_augmentation(config.augmentation, num_classes=config.num_classes)
    adv = config.adversarial
    if adv is not None:
        pre_attack, post_attack = _split_for_attack(augmentation, config.augmentation)
    else:
        pre_attack, post_attack = augmentation, []

    # ---- model, optimiser, schedule -----------------------------------------------------------
    raw = model.to(device)
    if cuda and config.channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    theta0 = {k: v.detach().clone() for k, v in raw.named_parameters()}
    optimizer = build_optimizer(raw, config)
    scheduler = build_scheduler(optimizer, config)
    param_count = sum(p.numel() for p in raw.parameters() if p.requires_grad)

    records: list[EpochRecord] = []
    start_epoch = 0
    elapsed_before = 0.0
    wd = Path(workdir) if workdir is not None else None
    ckpt_path = wd / CHECKPOINT_NAME if wd else None
    theta0_path = wd / THETA0_NAME if wd else None
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{ckpt_path}: unsupported checkpoint format {ckpt.get('format')!r}")
        _check_resume_compatible(ckpt["config"], config.to_dict())
        if ckpt.get("world_size", 1) != ctx.world_size or ckpt.get("num_train") != n_train:
            raise ValueError(
                f"{ckpt_path}: written with world_size={ckpt.get('world_size')} and {ckpt.get('num_train')} "
                f"training images; now world_size={ctx.world_size}, {n_train} images"
            )
        raw.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if cuda and ckpt["rng"].get("cuda"):
            with contextlib.suppress(Exception):
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"][0], device)
        records = [EpochRecord.from_dict(r) for r in ckpt["records"]]
        start_epoch = int(ckpt["epoch"])
        elapsed_before = float(ckpt.get("elapsed", 0.0))
        if theta0_path is None or not theta0_path.exists():
            raise FileNotFoundError(f"{theta0_path} is missing: cannot resume ||theta - theta_0|| records")
        theta0 = {k: v.to(device) for k, v in load_checkpoint(theta0_path).items()}
        del ckpt
    elif theta0_path is not None and ctx.is_main:
        atomic_save({k: v.cpu() for k, v in theta0.items()}, theta0_path)

    fwd: nn.Module = raw
    attack_fwd: nn.Module = raw
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(raw, device_ids=[device.index] if cuda else None)
    if config.compile:
        fwd = torch.compile(fwd)  # type: ignore[assignment]
        attack_fwd = fwd if not ctx.distributed else torch.compile(raw)  # type: ignore[assignment]
    amp_on = config.amp and cuda

    # ---- epochs -------------------------------------------------------------------------------
    completed = True
    session_start = time.perf_counter()
    show = progress and ctx.is_main

    for epoch in range(start_epoch, config.epochs):
        lr = scheduler.set_epoch(epoch)[0]
        # every source of randomness is a function of (seed, epoch[, rank]): exact resumption
        torch.manual_seed(_derive_seed(config.seed, epoch, ctx.rank, "global"))
        perm_gen = torch.Generator().manual_seed(_derive_seed(config.seed, epoch, "perm"))
        aug_gen = torch.Generator(device=device).manual_seed(_derive_seed(config.seed, epoch, ctx.rank, "aug"))

        perm = torch.randperm(n_train, generator=perm_gen)
        shard = shard_indices(perm, ctx.rank, ctx.world_size).to(device)
        n_local = shard.numel()
        n_steps = n_local // local_bs if config.drop_last else -(-n_local // local_bs)

        raw.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct_sum = torch.zeros((), dtype=torch.float64, device=device)
        seen = torch.zeros((), dtype=torch.float64, device=device)
        bar = tqdm(total=n_steps, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, dynamic_ncols=True) if show else None
        for step in range(n_steps):
            bidx = shard[step * local_bs : (step + 1) * local_bs]
            if bidx.numel() < 2 and n_steps > 1:
                continue  # a 1-image tail batch would break BatchNorm in train mode
            x = data_u8[bidx].float().div_(255)
            y = data_y[bidx]
            if pre_attack is not None:
                x, targets = pre_attack(x, y, aug_gen)
            else:  # custom mixing augmentation: attack the raw batch with hard labels
                targets = F.one_hot(y, config.num_classes).float()
            if cuda and config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if adv is not None:
                x = pgd_linf(raw, x, targets, eps=adv.eps, step_size=adv.step_size, steps=adv.steps,
                             random_start=adv.random_start, generator=aug_gen, bn_mode=adv.bn_mode,
                             autocast_dtype=torch.bfloat16 if amp_on else None, forward=attack_fwd)
                for stage in post_attack:
                    x, targets = stage(x, targets, aug_gen)
                if cuda and config.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, amp_on):
                logits = fwd(x)
            loss = F.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                b = x.shape[0]
                loss_sum += loss.detach().double() * b
                # soft-label accuracy: one-hot -> correct count; mixup -> lam*[p==a] + (1-lam)*[p==b]
                correct_sum += targets.gather(1, logits.detach().argmax(1, keepdim=True)).double().sum()
                seen += b
            if bar is not None:
                bar.update(1)
                if step % 20 == 0 or step == n_steps - 1:
                    bar.set_postfix(loss=f"{loss_sum.item() / max(seen.item(), 1):.3f}",
                                    acc=f"{correct_sum.item() / max(seen.item(), 1):.3f}")
        if bar is not None:
            bar.close()
        totals = all_reduce_sum(torch.stack([loss_sum, correct_sum, seen]), ctx).tolist()
        if cuda:
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - t0
        scheduler.step()

        t1 = time.perf_counter()
        test_acc: float | None = None
        is_last = epoch + 1 == config.epochs
        if evaluator is not None and ((epoch + 1) % config.eval_every == 0 or is_last):
            test_acc = float(evaluator(raw)) if ctx.is_main else None
            test_acc = broadcast_object(test_acc, ctx)
        eval_time = time.perf_counter() - t1
        record = EpochRecord(
            epoch=epoch + 1,
            lr=float(lr),
            train_loss=totals[0] / max(totals[2], 1),
            train_acc=totals[1] / max(totals[2], 1),
            test_acc=test_acc,
            param_distance=parameter_distance(raw, theta0),
            train_time=train_time,
            eval_time=eval_time,
            images_per_sec=totals[2] / train_time if train_time > 0 else float("nan"),
            elapsed=elapsed_before + (time.perf_counter() - session_start),
        )
        records.append(record)
        if show:
            acc = "-" if test_acc is None else f"{test_acc:.4f}"
            tqdm.write(
                f"epoch {record.epoch}/{config.epochs} lr {record.lr:.5f} loss {record.train_loss:.4f} "
                f"train_acc {record.train_acc:.4f} test_acc {acc} |theta-theta0| {record.param_distance:.3f} "
                f"{record.images_per_sec:.0f} img/s"
            )

        if ckpt_path is not None and ((epoch + 1) % config.checkpoint_every == 0 or is_last):
            if ctx.is_main:
                state = {
                    "format": CHECKPOINT_FORMAT,
                    "epoch": epoch + 1,
                    "config": config.to_dict(),
                    "model": raw.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": {
                        "torch": torch.get_rng_state(),
                        "cuda": [torch.cuda.get_rng_state(device)] if cuda else [],
                        "perm_generator": perm_gen.get_state(),
                        "aug_generator": aug_gen.get_state(),
                    },
                    "records": [r.to_dict() for r in records],
                    "world_size": ctx.world_size,
                    "num_train": n_train,
                    "elapsed": record.elapsed,
                }
                atomic_save(state, ckpt_path)
            barrier(ctx)

        if callback is not None and callback(record, raw):
            completed = epoch + 1 == config.epochs
            break

    result = _make_result(config, records, completed and len(records) == config.epochs, n_train, ctx, device,
                          start_epoch, param_count, elapsed_before + (time.perf_counter() - session_start))
    if wd is not None and ctx.is_main:
        if result.completed:
            atomic_save(raw.state_dict(), wd / MODEL_NAME)
        result.save(wd / RESULT_NAME)
    barrier(ctx)
    return result


def _make_result(
    config: TrainConfig,
    records: Sequence[EpochRecord],
    completed: bool,
    n_train: int,
    ctx: DistContext,
    device: torch.device,
    start_epoch: int,
    param_count: int,
    total_time: float,
) -> TrainResult:
    from .presets import diff_from_paper

    evaluated = [r for r in records if r.test_acc is not None]
    best = max(evaluated, key=lambda r: (r.test_acc, -r.epoch)) if evaluated else None
    final = records[-1] if records else None
    try:
        diff = diff_from_paper(config, config.model_name)
    except Exception as exc:  # never lose a finished run over bookkeeping
        diff = {"_error": {"paper": None, "used": repr(exc)}}
    return TrainResult(
        config=config,
        records=list(records),
        final_test_acc=final.test_acc if final is not None else None,
        best_test_acc=best.test_acc if best is not None else None,
        best_epoch=best.epoch if best is not None else None,
        final_train_acc=final.train_acc if final is not None else None,
        preset=config.preset,
        preset_diff=diff,
        completed=completed,
        num_train=n_train,
        world_size=ctx.world_size,
        device=str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        total_time=total_time,
        resumed_from_epoch=start_epoch,
        param_count=param_count,
        environment={
            "torch": torch.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    )
