"""How long an EM run will take on this device, measured before it starts.

The full recipe (a ResNet-18 generator, 20 PGD steps on each of 50,000 images per round) takes
hours on a GPU and weeks on a laptop CPU, and nothing in a plain ``build`` call says which one the
user is about to get. So before the first round a short *probe* times one generator step, two PGD
steps and one evaluation pass on a few real training images, with the recipe's own generator and
settings on the device the run will use, and extrapolates to a round (``train_steps`` generator
steps, ``pgd_steps`` on every image, one evaluation pass) and to the rounds still to run.

When forward passes alone already put the run far over the limit (the full recipe on a CPU), the
probe stops there and reports that bound, so the refusal comes within a second or two.

The probe runs on its own generator (weights from a seed derived apart from the run's), inside
``torch.random.fork_rng`` and without ``torch.compile``, so it changes neither the global random
state nor anything the run computes: the EM result is the same with and without it (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..runtime import SLOW_RUN_SECONDS, DistContext, derive_seed, format_duration
from .config import EMConfig
from .run import _EMRun

#: A build whose estimate is above this many seconds needs ``allow_slow=True``.
SLOW_LIMIT_S = SLOW_RUN_SECONDS
#: Rounds the estimate counts (fewer if ``max_rounds`` leaves fewer). The stop condition decides the
#: real number, which is not known in advance; the message also gives the ``max_rounds`` bound.
ASSUMED_ROUNDS = 10
#: First probe batch; doubled (up to the recipe's batch) while the probe stays within its budget,
#: so a GPU is timed at a batch that keeps it busy and a slow CPU is not kept waiting.
PROBE_START_BATCH = 8
PROBE_BUDGET_S = 3.0
PROBE_PGD_STEPS = 2
#: The probe stops after its forward passes when they alone put the run this many times over the
#: limit (small probe batches are slower per image than the recipe's, so the bound needs a margin).
EARLY_STOP_FACTOR = 20.0


@dataclass(frozen=True)
class ProbeTiming:
    """Per-image seconds measured on ``device`` at the largest probed batch."""

    device: str
    batch: int
    generator_step_s: float
    """Seconds per image of one generator SGD step (train mode, forward + backward + update)."""
    pgd_step_s: float
    """Seconds per image of one PGD step (eval mode, gradient with respect to the input)."""
    eval_s: float
    """Seconds per image of the stop-condition evaluation (forward only)."""
    wall_s: float
    """Wall time of the whole probe."""
    complete: bool = True
    """False when the probe stopped after its forward passes: the generator and PGD steps are then
    counted at the cost of a forward pass, which they exceed (the estimate is a lower bound)."""


@dataclass(frozen=True)
class EMTimeEstimate:
    """A probe extrapolated to the rounds an EM run still has to do."""

    probe: ProbeTiming
    round_seconds: float
    rounds: int
    """Rounds counted in :attr:`seconds`: ``min(ASSUMED_ROUNDS, rounds left)``."""
    rounds_left: int
    """Rounds left before ``max_rounds``."""
    images: int
    train_steps: int
    batch_size: int
    pgd_steps: int
    world_size: int = 1
    compile: bool = False

    @property
    def device(self) -> str:
        return self.probe.device

    @property
    def seconds(self) -> float:
        return self.round_seconds * self.rounds

    @property
    def worst_seconds(self) -> float:
        return self.round_seconds * self.rounds_left

    def describe(self) -> str:
        """One line: the round, how it was measured, and the rounds counted."""
        shards = f" over {self.world_size} processes" if self.world_size > 1 else ""
        compiled = "; timed without torch.compile" if self.compile else ""
        what = ("the forward passes alone (the probe stopped there: the real steps cost more)"
                if not self.probe.complete else "")
        return (
            f"one round ~{format_duration(self.round_seconds)}{shards} ({self.train_steps} generator "
            f"steps of {self.batch_size} images, {self.pgd_steps} PGD steps on each of "
            f"{self.images:,} images, one evaluation pass), measured on {self.device} by a "
            f"{self.probe.wall_s:.1f} s probe on {self.probe.batch} real training images"
            f"{', counting ' + what if what else ''}{compiled}; "
            f"{self.rounds} rounds counted = ~{format_duration(self.seconds)} (the stop condition "
            f"decides the real number; at most {self.rounds_left} more rounds = "
            f"~{format_duration(self.worst_seconds)})"
        )

    def with_round_seconds(self, round_seconds: float) -> EMTimeEstimate:
        return dataclasses.replace(self, round_seconds=float(round_seconds))


def _timed(fn: Callable[[], object], dev: torch.device) -> float:
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe_em(images: np.ndarray, labels: np.ndarray, config: EMConfig,
             device: str | torch.device, *,
             stop_if: Callable[[ProbeTiming], bool] | None = None) -> ProbeTiming:
    """Time a generator step, PGD steps and an evaluation pass on the first images.

    ``images``/``labels`` are the run's (validated) uint8 NHWC images and int labels. Forward
    passes come first: one over 2 images pays the one-off costs, then the batch doubles while a
    pass stays cheap. They size the rest: generator and PGD steps at the largest batch that fits
    the budget, doubled while the next level still fits, up to the recipe's batch; spare budget
    repeats the last level. Each time is the fastest of its repetitions, so a
    moment of contention on a shared machine does not inflate it.
    If ``stop_if`` returns True for the forward-only timing (every step counted at the cost of a
    forward pass), that timing is returned as it is (``complete=False``).
    The probe generator's weights come from a seed derived from ``config.seed`` apart from the
    run's, and every random state the probe could touch is restored afterwards.
    """

    dev = torch.device(device)
    cfg = config.resolved()
    base = dataclasses.replace(
        cfg, seed=derive_seed(cfg.seed, "em-time-probe"), compile=False, train_steps=1,
        pgd_steps=PROBE_PGD_STEPS, shuffle=False, drop_last=False,
    )
    single = DistContext()

    def probe_run(batch: int) -> _EMRun:
        sized = dataclasses.replace(base, batch_size=batch, eval_batch_size=batch)
        run = _EMRun(images[:batch], labels[:batch], sized, dev, single)
        run._setup_forwards()
        return run

    def elapsed() -> float:
        return time.perf_counter() - t_start

    cap = max(1, min(cfg.batch_size, len(images)))
    t_start = time.perf_counter()
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        # 1. forward passes: pay the one-off costs, then grow the batch while a pass stays cheap
        batch = min(2, cap)
        run = probe_run(batch)
        run.evaluate()  # one-off costs: library and kernel initialisation, allocator
        last = _timed(run.evaluate, dev)
        while batch < cap and last < 0.02 * PROBE_BUDGET_S:
            batch = min(2 * batch, cap)
            run = probe_run(batch)
            last = _timed(run.evaluate, dev)
        samples = [last]
        while len(samples) < 3 and sum(samples) < 0.1 * PROBE_BUDGET_S:
            samples.append(_timed(run.evaluate, dev))
        forward_s = max(min(samples), 1e-9) / batch
        bound = ProbeTiming(device=str(dev), batch=batch, generator_step_s=forward_s,
                            pgd_step_s=forward_s, eval_s=forward_s, wall_s=elapsed(), complete=False)
        if stop_if is not None and stop_if(bound):
            return bound
        # 2. whole steps at the largest batch that fits the budget; a level costs about
        # (1 + 2 per PGD step + ~6 for the generator step) forward passes per image
        level_forwards = 7 + 2 * PROBE_PGD_STEPS
        batch = min(2, cap)
        while batch * 2 <= cap and level_forwards * batch * 2 * forward_s <= PROBE_BUDGET_S / 3:
            batch *= 2
        best: list[float] = []
        reps = 0
        while True:
            run = probe_run(batch)
            t0 = elapsed()
            times = [_timed(run.train_window, dev),
                     _timed(functools.partial(run.search, progress=False), dev) / PROBE_PGD_STEPS,
                     _timed(run.evaluate, dev)]
            best = times if not best else [min(a, b) for a, b in zip(best, times, strict=True)]
            reps += 1
            level_s = elapsed() - t0
            if batch < cap and elapsed() + 2.5 * level_s <= PROBE_BUDGET_S:
                batch, best, reps = min(2 * batch, cap), [], 0  # a bigger batch still fits
            elif reps >= 3 or elapsed() + level_s > PROBE_BUDGET_S:
                break
    gen, pgd, ev = (t / batch for t in best)
    return ProbeTiming(device=str(dev), batch=batch, generator_step_s=gen, pgd_step_s=pgd,
                       eval_s=ev, wall_s=elapsed())


def estimate_em_time(probe: ProbeTiming, config: EMConfig, images: int, *, rounds_done: int = 0,
                     world_size: int = 1, assumed_rounds: int = ASSUMED_ROUNDS) -> EMTimeEstimate:
    """Extrapolate ``probe`` to the rounds left of a run of ``config`` on ``images`` images."""
    cfg = config.resolved()
    per_step = min(cfg.batch_size, images)
    searched = (images // cfg.batch_size) * cfg.batch_size if cfg.drop_last else images
    round_s = (cfg.train_steps * per_step * probe.generator_step_s
               + searched * int(cfg.pgd_steps) * probe.pgd_step_s
               + images * probe.eval_s) / max(world_size, 1)
    left = max(cfg.max_rounds - rounds_done, 0)
    return EMTimeEstimate(
        probe=probe, round_seconds=round_s, rounds=min(assumed_rounds, left), rounds_left=left,
        images=images, train_steps=cfg.train_steps, batch_size=cfg.batch_size,
        pgd_steps=int(cfg.pgd_steps), world_size=world_size, compile=cfg.compile,
    )


def measure_em_time(images: np.ndarray, labels: np.ndarray, config: EMConfig,
                    device: str | torch.device, *, rounds_done: int = 0, world_size: int = 1,
                    limit_s: float = SLOW_LIMIT_S) -> EMTimeEstimate:
    """Probe this device and extrapolate to the rounds left (see the module docstring)."""
    n = len(images)

    def far_over(timing: ProbeTiming) -> bool:
        bound = estimate_em_time(timing, config, n, rounds_done=rounds_done, world_size=world_size)
        return bound.seconds > EARLY_STOP_FACTOR * limit_s

    timing = probe_em(images, labels, config, device, stop_if=far_over)
    return estimate_em_time(timing, config, n, rounds_done=rounds_done, world_size=world_size)


__all__ = [
    "ASSUMED_ROUNDS",
    "SLOW_LIMIT_S",
    "EMTimeEstimate",
    "ProbeTiming",
    "estimate_em_time",
    "measure_em_time",
    "probe_em",
]
