"""Making a score that was not earned visible: the flip gap, and the state of the test split.

CIFAR-10's test labels are public, so a model can carry them (say, a table from image hashes to
labels) and no process boundary rules that out. Such a table is keyed on the exact test images.
The scorer therefore also measures accuracy on the horizontally flipped test images, which a
trained network classifies about as well (standard training even augments with flips), while
a lookup table misses them. ``flip_gap = accuracy - flipped accuracy``.

Threshold (:data:`FLIP_GAP_THRESHOLD`, 0.10): honest networks trained on the shared CIFAR-10
subset (LeNet-5 and a small BatchNorm CNN, with and without flip augmentation, on the clean and
OPS training sets) showed gaps of at most 1.5 points on its 2,000 test images (docs/leaderboard.md
lists the runs), about the size of the gap's sampling noise: it is the difference of two paired
proportions, with a standard deviation of about ``sqrt(disagreement / n)`` (1.4 points for
n = 2,000 when 41% of the predictions change under the flip). A label table that covers the test
set shows a gap near ``accuracy - 0.1``. A flagged result is not removed: it is marked for review.

A model that keys its table on flipped images as well defeats this check; it is a tripwire for
the obvious cheat, not a proof of honesty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import SeedResult

__all__ = ["FLIP_GAP_DEFINITION", "FLIP_GAP_THRESHOLD", "integrity_lines", "integrity_record"]

FLIP_GAP_THRESHOLD = 0.10
FLIP_GAP_DEFINITION = ("final_test_acc - flipped_test_acc, where flipped_test_acc is the accuracy on the same "
                       "clean test images flipped horizontally (both evaluated in one secretly shuffled batch "
                       "of 2 x num_test images)")


def integrity_record(per_seed: Sequence[SeedResult], test_split: dict[str, Any]) -> dict[str, Any]:
    """The result's ``integrity`` block: the flip gap per seed and its worst value, whether that is
    suspicious, and how the test split was verified (with the caveat when it was not)."""
    gaps = [float(p.flip_gap) for p in per_seed if p.flip_gap is not None]
    worst = max(gaps) if gaps else None
    reasons: list[str] = []
    if worst is not None and worst > FLIP_GAP_THRESHOLD:
        reasons.append(f"accuracy drops by {100 * worst:.1f} points on horizontally flipped test images "
                       f"(threshold {100 * FLIP_GAP_THRESHOLD:.0f}); trained networks lose a few at most, a "
                       "model that looks test labels up by image does not generalise to the flips")
    caveats = [test_split["caveat"]] if test_split.get("caveat") else []
    return {
        "flip_gap": worst,
        "flip_gaps": gaps,
        "flip_gap_threshold": FLIP_GAP_THRESHOLD,
        "flip_gap_definition": FLIP_GAP_DEFINITION,
        "suspicious": bool(reasons),
        "reasons": reasons,
        "test_split_verification": test_split.get("method"),
        "caveats": caveats,
    }


def integrity_lines(record: dict[str, Any]) -> list[str]:
    """What the scorer prints about a result's integrity block."""
    lines = []
    gap = record.get("flip_gap")
    if gap is not None:
        flag = "SUSPICIOUS" if record.get("suspicious") else "ok"
        lines.append(f"integrity: flip gap {100 * gap:+.2f} points (threshold "
                     f"{100 * record['flip_gap_threshold']:.0f}): {flag}")
    lines += [f"integrity: {r}" for r in record.get("reasons", [])]
    lines += [f"note: {c}" for c in record.get("caveats", [])]
    return lines
