"""The training time a scoring run is about to take, said before it starts (and a CPU run of hours refused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..submission import Submission

__all__ = ["state_estimate"]


def state_estimate(sub: Submission, config: Any, num_train: int, n_seeds: int, dev: torch.device,
                    allow_slow: bool, say: Callable[[str], None]) -> None:
    """Say how long training will take here, before it starts; refuse hours on a CPU unless allowed.

    Only for registered models: an entry's model is submission code, which this process never runs.
    """
    if sub.model is None:
        return
    from ...models import build_model
    from ...runtime import format_duration
    from ...training.estimate import SLOW_SECONDS, SlowRunError, estimate_training

    est = estimate_training(build_model(sub.model, **sub.model_kwargs), config, num_train, dev)
    total = est.seconds * n_seeds
    say(f"  estimated training time on {dev}: {format_duration(total)} ({est.steps:,} steps x {n_seeds} seed(s), "
        f"{est.seconds_per_step:.3f} s per step measured by a short probe)")
    if total > SLOW_SECONDS and dev.type == "cpu" and not allow_slow:
        raise SlowRunError(
            f"training {sub.model} with preset {config.preset} would take about {format_duration(total)} on this "
            "CPU (estimated from a timed probe). Score it on a GPU (device='cuda'), use a shorter preset "
            "(gpu-quick, cpu-smoke), or pass allow_slow=True to run it here anyway")
