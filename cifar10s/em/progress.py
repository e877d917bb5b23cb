"""Human-readable progress of an EM run: durations and the one-line summary after each round.

EM rounds take seconds on a GPU and up to hours on a CPU, and the number of rounds is decided by
the stop condition, not known in advance. After each round the run therefore says how long a
round takes (measured), where the generator's accuracy is heading, and how long is left: if the
recent accuracy trend holds, and at most (``max_rounds``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..runtime import format_duration

#: How many recent rounds the accuracy trend and the round time are taken from.
TREND_WINDOW = 4


def _round_seconds(log: Sequence[dict[str, Any]]) -> float:
    """Median duration of the recent rounds (the first round also pays one-off warm-up costs)."""
    times = sorted(float(r["seconds"]) for r in log[-TREND_WINDOW:])
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])


def rounds_to_target(accuracies: Sequence[float], target: float) -> int | None:
    """Rounds until ``target`` if the mean gain of the recent rounds holds; None without a gain."""
    recent = list(accuracies[-TREND_WINDOW:])
    if not recent:
        return None
    if recent[-1] >= target:
        return 0
    if len(recent) < 2:
        return None
    gain = (recent[-1] - recent[0]) / (len(recent) - 1)
    if gain <= 0:
        return None
    return max(1, math.ceil((target - recent[-1]) / gain))


def round_summary(log: Sequence[dict[str, Any]], max_rounds: int, stop_error: float) -> str:
    """E.g. ``round 3/500: acc 0.610 -> 0.740 -> 0.880 (stops at >= 0.990), 41 s/round;
    ~41 s left if the trend holds, at most 5.6 h (max_rounds 500)``."""
    if not log:
        return "no EM round finished yet"
    last = log[-1]
    done = int(last["round"])
    target = 1.0 - stop_error
    accs = [float(r["eval_acc"]) for r in log]
    trend = " -> ".join(f"{a:.3f}" for a in accs[-TREND_WINDOW:])
    per_round = _round_seconds(log)
    head = (f"round {done}/{max_rounds}: acc {trend} (stops at >= {target:.3f}), "
            f"{format_duration(per_round)}/round")
    if last.get("converged") or accs[-1] >= target:
        return f"{head}; stop condition met"
    left = max(max_rounds - done, 0)
    if left == 0:
        return f"{head}; max_rounds reached without meeting the stop condition"
    worst = format_duration(per_round * left)
    needed = rounds_to_target(accs, target)
    if needed is None or needed >= left:
        return f"{head}; at most {worst} left (max_rounds {max_rounds})"
    return (f"{head}; ~{format_duration(per_round * needed)} left if the trend holds, at most {worst} "
            f"(max_rounds {max_rounds})")


__all__ = ["round_summary", "rounds_to_target"]
