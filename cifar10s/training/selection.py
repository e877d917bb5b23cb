"""The best-epoch rule, written once: the highest accuracy, the earliest epoch on a tie.

A best epoch chosen by test accuracy is selected on the test set, so it is optimistic; results
record it for the learning curve and never rank on it. Kept free of torch: the scorer applies
the same rule to accuracies it computed itself.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["best_epoch"]


def best_epoch(accuracies: Iterable[tuple[int, float | None]]) -> tuple[float | None, int | None]:
    """``(accuracy, epoch)`` of the best evaluated epoch among ``(epoch, accuracy or None)``; (None, None) if none."""
    evaluated = [(acc, epoch) for epoch, acc in accuracies if acc is not None]
    if not evaluated:
        return None, None
    acc, epoch = max(evaluated, key=lambda item: (item[0], -item[1]))
    return acc, epoch
