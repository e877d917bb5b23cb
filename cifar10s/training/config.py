"""What a training run is given and what it returns: config, hooks, per-epoch records, result.

Kept apart from the loop so that presets, optimisers and the scorer can name these types
without importing the loop (and the loop's imports of them).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..checks import check_type
from ..atomic import atomic_write_bytes
from .adversarial import AdversarialConfig
from ..errors import Cifar10sError

__all__ = [
    "PARAM_DISTANCE_DEFINITION",
    "EpochRecord",
    "HookError",
    "TrainConfig",
    "TrainResult",
    "TrainingHooks",
]

PARAM_DISTANCE_DEFINITION = (
    "sqrt(sum over model.named_parameters() of ||p - p_0||_F^2): every parameter (weights, biases, "
    "normalisation affine weights), no buffers (BatchNorm running statistics excluded); computed in "
    "float64; the same quantity as the authors' utils.net_param_diff_norm"
)

#: Fields that may change between an interrupted run and its resumption without changing the result.
RESUME_FREE_FIELDS = frozenset({"eval_every", "eval_batch_size", "eval_subset", "checkpoint_every", "compile", "preset"})


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
    #: per-channel CIFAR-10 mean/std input normalisation inside the model (.normalization); the
    #: paper, like the authors' code, feeds [0, 1] inputs, so True is a difference from the paper
    normalize: bool = False
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
    #: bf16 autocast (on CUDA also TF32 matmuls); the authors' code trains in float32, so the
    #: paper preset leaves it off and a run with it on records it as a difference
    amp: bool = False
    #: channels-last memory format for the model and its inputs
    channels_last: bool = False
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
        hints = _hints()
        for f in dataclasses.fields(self):
            check_type(f"training setting {f.name!r}", getattr(self, f.name), hints[f.name])
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


@functools.cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


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
    #: the numerics that actually ran: {"autocast": "bfloat16" | None, "tf32": bool,
    #: "channels_last": bool, "compiled": bool}
    precision: dict[str, Any] = field(default_factory=dict)

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
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=2).encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainResult:
        return cls.from_dict(json.loads(Path(path).read_text()))


class HookError(Cifar10sError, RuntimeError):
    """A training hook (``make_optimizer``, ``train_step``, ``preprocess``) raised or returned garbage."""


class TrainingHooks(Protocol):
    """Optional callables that replace parts of the loop (a leaderboard submission's hooks).

    Any attribute may be ``None``:

    * ``preprocess(images_u8_nhwc, labels) -> images_u8_nhwc``: once, on a copy of the training set;
    * ``make_optimizer(model, config) -> torch.optim.Optimizer``: instead of the config's optimiser
      (the config's schedule still drives its learning rate);
    * ``train_step(model, x, y, optimizer, *, epoch, step, generator) -> loss``: instead of the
      built-in forward/backward/step, on the augmented batch (``y`` soft labels).
    """

    preprocess: Callable[..., Any] | None
    make_optimizer: Callable[[nn.Module, TrainConfig], torch.optim.Optimizer] | None
    train_step: Callable[..., Any] | None
