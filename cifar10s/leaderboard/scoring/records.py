"""What one seed gives back: a :class:`SeedResult`, typed from the child's report to the result file.

Made from the training child's checked report (:mod:`cifar10s.leaderboard.sandbox.reports`) and
accuracies the scorer computed; it becomes a dict only where the result file is written. The
jobs the children get are :mod:`cifar10s.leaderboard.sandbox.jobs`. No torch here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SeedResult"]


@dataclass(frozen=True)
class SeedResult:
    """One seed: what its training child reported (checked) and the accuracies the scorer computed.

    ``final_test_acc`` and ``flipped_test_acc`` come from the final evaluation
    (:meth:`with_final`); ``flip_gap`` is derived from them, here only.
    """

    seed: int
    final_epoch_eval_acc: float | None
    best_test_acc: float | None
    best_epoch: int | None
    final_train_acc: float | None
    num_train: int
    param_count: int
    train_time_s: float
    resumed_from_epoch: int | None
    device: str
    precision: dict[str, Any]
    records: list[dict[str, Any]]
    workdir: str | None
    weights_sha256: str
    final_test_acc: float | None = None
    flipped_test_acc: float | None = None

    @property
    def flip_gap(self) -> float | None:
        if self.final_test_acc is None or self.flipped_test_acc is None:
            return None
        return self.final_test_acc - self.flipped_test_acc

    def with_final(self, final_test_acc: float, flipped_test_acc: float) -> SeedResult:
        return dataclasses.replace(self, final_test_acc=final_test_acc, flipped_test_acc=flipped_test_acc)

    def to_record(self, out_dir: Path | None = None) -> dict[str, Any]:
        """The result file's ``per_seed`` entry (the work folder relative to the result's folder when inside it)."""
        from .provenance import recorded_workdir

        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["flip_gap"] = self.flip_gap
        d["workdir"] = recorded_workdir(self.workdir, out_dir)
        return d
