"""Optimisers and per-epoch learning-rate schedules used by the One-Pixel Shortcut paper.

* CNNs: SGD (lr 0.1, momentum 0.9, weight decay 5e-4), learning rate x0.1 at 1/2 and 3/4 of
  training (the authors' ``MultiStepLR(milestones=[epochs/2, epochs*3/4])``).
* Compact transformers (CCT/CVT): AdamW (lr 5e-4, betas (0.9, 0.999), weight decay 3e-2) with
  cosine decay to ``eta_min`` = 1e-5 (the authors' ``CosineAnnealingLR(T_max=epochs, eta_min=1e-5)``);
  no warm-up (neither the paper nor the code uses one; ``warmup_epochs`` exists for experiments).

Like the authors' code, the schedule is stepped once per *epoch*, and weight decay applies to
every parameter (biases and normalisation weights included). The schedule is a closed-form
function of the epoch index, so resuming from a checkpoint reproduces it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..checks import check_choice

if TYPE_CHECKING:  # pragma: no cover
    from .config import TrainConfig

__all__ = ["EpochLRSchedule", "build_optimizer", "build_scheduler", "lr_at_epoch", "milestone_epochs"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("multistep", "cosine", "constant")


def build_optimizer(params: nn.Module | Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over ``params`` (a module's parameters, or an iterable of tensors)."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    params = [p for p in params if p.requires_grad]
    name = config.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
    if name == "adamw":
        return torch.optim.AdamW(
            params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay
        )
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    raise AssertionError("unreachable")


def milestone_epochs(epochs: int, milestones: Sequence[float]) -> list[int]:
    """Milestones given as fractions of training (0.5, 0.75) -> epoch indices (100, 150 of 200).

    Values >= 1 are taken as absolute epoch numbers. Fractions are rounded like the authors'
    ``epochs/2`` and ``epochs*3/4`` (an epoch index equal to the float milestone triggers it).
    """
    out = []
    for m in milestones:
        out.append(int(m) if m >= 1 else int(math.ceil(m * epochs - 1e-9)))
    return sorted(out)


def lr_at_epoch(epoch: int, base_lr: float, config: TrainConfig) -> float:
    """Learning rate used during (0-based) ``epoch``.

    Matches torch's per-epoch ``MultiStepLR`` / ``CosineAnnealingLR`` (closed form) stepped after
    every epoch, as in the authors' ``main.py``; an optional linear warm-up precedes it.
    """
    warm = int(config.warmup_epochs)
    if warm > 0 and epoch < warm:
        return base_lr * (epoch + 1) / warm
    schedule = config.schedule.lower()
    if schedule == "constant":
        return base_lr
    if schedule == "multistep":
        passed = sum(1 for m in milestone_epochs(config.epochs, config.milestones) if epoch >= m)
        return base_lr * (config.gamma**passed)
    if schedule == "cosine":
        t_max = max(1, config.epochs - warm)
        t = min(epoch - warm, t_max)
        return config.eta_min + (base_lr - config.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
    check_choice("schedule", config.schedule, SCHEDULES)
    raise AssertionError("unreachable")


class EpochLRSchedule:
    """Sets every param group's learning rate from :func:`lr_at_epoch` at the start of an epoch.

    ``state_dict`` holds only plain numbers, so it loads with ``torch.load(weights_only=True)``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        self.optimizer = optimizer
        self.config = config
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = lr
        self.epoch = 0
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> list[float]:
        self.epoch = int(epoch)
        lrs = [lr_at_epoch(self.epoch, base, self.config) for base in self.base_lrs]
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        return lrs

    def step(self) -> None:
        """Advance one epoch (call after each epoch, like ``torch.optim.lr_scheduler``)."""
        self.set_epoch(self.epoch + 1)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self.set_epoch(int(state["epoch"]))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> EpochLRSchedule:
    return EpochLRSchedule(optimizer, config)
