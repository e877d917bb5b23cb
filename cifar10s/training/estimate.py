"""How long a training run will take here, measured by a short timed probe (not a constant).

The harness states the estimate before a long run starts, and refuses a run that would take
hours on a CPU unless the caller opts in, so nobody finds out after a day that it was the wrong
machine.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SlowRunError
from ..runtime import SLOW_RUN_SECONDS, derive_seed
from .adversarial import pgd_linf
from .config import TrainConfig
from .evaluation import autocast

__all__ = ["SLOW_SECONDS", "SlowRunError", "TrainingEstimate", "estimate_training"]

SLOW_SECONDS = SLOW_RUN_SECONDS
# SlowRunError (the run would take longer than SLOW_SECONDS here) is cifar10s.errors.SlowRunError,
# re-exported: an EM build's refusal (cifar10s.em.SlowBuildError) is the same class, specialised.


@dataclass(frozen=True)
class TrainingEstimate:
    seconds_per_step: float
    steps: int
    probe_steps: int

    @property
    def seconds(self) -> float:
        return self.seconds_per_step * self.steps


def estimate_training(model: nn.Module, config: TrainConfig, num_train: int, device: torch.device | str,
                      *, probe_steps: int = 3) -> TrainingEstimate:
    """Time ``probe_steps`` optimiser steps of a copy of ``model`` (after one warm-up step) on random
    data of the run's batch size, with the run's PGD attack; extrapolate to the whole run.

    The model passed in is not touched, and the global RNG state is restored afterwards.
    """
    device = torch.device(device)
    n = min(num_train, config.train_subset or num_train)
    per_epoch = n // config.batch_size if config.drop_last else -(-n // config.batch_size)
    steps = max(1, per_epoch) * config.epochs
    rng = torch.get_rng_state()
    try:
        torch.manual_seed(derive_seed("estimate", config.seed))
        probe = copy.deepcopy(model).to(device).train()
        opt = torch.optim.SGD(probe.parameters(), lr=1e-3)
        g = torch.Generator(device=device).manual_seed(derive_seed("estimate-data", config.seed))
        x = torch.rand((min(config.batch_size, max(n, 2)), 3, 32, 32), generator=g, device=device)
        y = torch.randint(0, config.num_classes, (x.shape[0],), generator=g, device=device)
        if config.channels_last:
            probe = probe.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)

        def step() -> None:
            xb = x
            if config.adversarial is not None:
                a = config.adversarial
                xb = pgd_linf(probe, x, y, eps=a.eps, step_size=a.step_size, steps=a.steps, generator=g,
                              autocast_dtype=torch.bfloat16 if config.amp else None)
            with autocast(device, config.amp):
                loss = F.cross_entropy(probe(xb).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up: allocator, kernels
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(probe_steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        per_step = (time.perf_counter() - t0) / probe_steps
    finally:
        torch.set_rng_state(rng)
    return TrainingEstimate(seconds_per_step=per_step, steps=steps, probe_steps=probe_steps)
