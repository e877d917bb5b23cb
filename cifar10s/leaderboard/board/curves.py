"""Learning curves and at-chance seeds, derived from result records when the board is rendered.

A final accuracy hides *when* a shortcut takes hold; the per-epoch records the scorer stores
show it. For each (submission, model, method, defense, preset) this builds one chart with a
series per training set (clean / EM / OPS / CIFAR-10-S ...): clean test accuracy per epoch
(computed by the scorer from the per-epoch predictions), and, where the trainer recorded it,
accuracy on the training batches, each seed as its own line (a seed at chance is never averaged
into the others). Charts come in the board's table order (standard training first).

It also tells a seed that never left chance (:func:`seed_at_chance`): such a seed would drag a
row's mean down without anything to show for it, so the board marks it. This is computed here,
from the recorded losses and accuracies, every time the board is rendered; result files never
carry it as a claim.

Pure functions over the board's :class:`.results.CheckedResult`s (no torch): the records are
typed and checked once when read, and every number drawn is checked again (finite, in range);
anything else is left out of the curves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .chart import CHART_SETS, table_order
from .result_file import ResultRecord
from .result_schema import EpochRecord, SeedRecord
from .results import CheckedResult

__all__ = [
    "CHANCE_ACC_MARGIN",
    "CHANCE_LOSS_MARGIN",
    "Chart",
    "SeedLine",
    "Series",
    "build_charts",
    "chance_note",
    "chance_seeds",
    "seed_at_chance",
    "with_chance_notes",
]

#: A seed "never left chance" when every recorded training loss stays above ln(K) minus this many
#: nats. Calibrated on recorded LeNet-5 runs on the 10,000-image subset: healthy seeds (even PGD
#: AT, the slowest to start) reach a loss at least 0.18 below ln(10) = 2.303; a stuck seed stays
#: within 0.01 of it.
CHANCE_LOSS_MARGIN = 0.05
#: ... and its last recorded training accuracy (and, with no training loss recorded, every test
#: accuracy) stays below 1/K plus this margin.
CHANCE_ACC_MARGIN = 0.05

MAX_CHARTS = 60
MAX_SERIES = 12  # per chart
MAX_EPOCHS = 5000  # per series
METRICS = (("test_acc", "clean test accuracy"), ("train_acc", "training accuracy (augmented batches)"))

Epoch = EpochRecord | Mapping[str, Any]


# ------------------------------------------------------------------------------------------------
# checked numbers from untrusted records


def _get(record: Epoch, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def _num(value: Any, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and lo <= v <= hi else None


def _records(seed: SeedRecord) -> list[EpochRecord]:
    """A seed's per-epoch records in epoch order, or [] if they are not a plain 1..N list."""
    recs = seed.records
    if not recs or len(recs) > MAX_EPOCHS:
        return []
    if [r.epoch for r in recs] != list(range(1, len(recs) + 1)):
        return []
    return recs


def _record_of(result: CheckedResult | ResultRecord) -> ResultRecord:
    return result.record if isinstance(result, CheckedResult) else result


def _num_classes(record: ResultRecord) -> int:
    k = record.config.get("num_classes") if isinstance(record.config, Mapping) else None
    return k if isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= 100_000 else 10


def _seeds(record: ResultRecord) -> list[SeedRecord]:
    return list(record.per_seed or [])


def _seed_id(seed: SeedRecord, index: int) -> int:
    return seed.seed if seed.seed is not None else index


# ------------------------------------------------------------------------------------------------
# at-chance seeds


def seed_at_chance(records: Sequence[Epoch], num_classes: int = 10) -> bool | None:
    """Whether a seed never left chance: ``True``, ``False``, or ``None`` (nothing to tell from).

    With training losses recorded: every one of them is at least ``ln(K) - CHANCE_LOSS_MARGIN``
    and the last recorded training accuracy (if any) at most ``1/K + CHANCE_ACC_MARGIN``. A run
    whose loss blew up also counts (it never got below chance either). Without losses (a custom
    ``train_step`` need not report one): the last training accuracy, else every evaluated test
    accuracy, at most ``1/K + CHANCE_ACC_MARGIN``.
    """
    if not records:
        return None
    chance_loss, chance_acc = math.log(num_classes), 1.0 / num_classes + CHANCE_ACC_MARGIN
    losses = [_num(_get(r, "train_loss"), 0.0) for r in records]
    finite = [v for v in losses if v is not None]
    train_accs = [v for v in (_num(_get(r, "train_acc"), 0.0, 1.0) for r in records) if v is not None]
    if finite:
        stuck = all(v >= chance_loss - CHANCE_LOSS_MARGIN for v in finite)
        return stuck and (not train_accs or train_accs[-1] <= chance_acc)
    if train_accs:
        return train_accs[-1] <= chance_acc
    test_accs = [v for v in (_num(_get(r, "test_acc"), 0.0, 1.0) for r in records) if v is not None]
    return all(v <= chance_acc for v in test_accs) if test_accs else None


def chance_seeds(result: CheckedResult | ResultRecord) -> list[int]:
    """The seeds of a result that never left chance, by their seed number."""
    record = _record_of(result)
    k = _num_classes(record)
    return [_seed_id(s, i) for i, s in enumerate(_seeds(record)) if seed_at_chance(_records(s), k)]


def chance_note(result: CheckedResult | ResultRecord) -> str | None:
    """The board's footnote for a result with seeds at chance (None when there are none)."""
    stuck = chance_seeds(result)
    if not stuck:
        return None
    k = _num_classes(_record_of(result))
    which = ", ".join(str(s) for s in stuck)
    return (f"seed{'s' if len(stuck) > 1 else ''} {which} never left chance (training loss within "
            f"{CHANCE_LOSS_MARGIN} of ln {k} = {math.log(k):.3f} in every epoch, chance accuracy "
            f"{100.0 / k:.0f}%); the mean over seeds includes "
            f"{'them' if len(stuck) > 1 else 'it'}: judged from the recorded training curves when "
            "this board was rendered")


def with_chance_notes(results: Sequence[CheckedResult]) -> list[CheckedResult]:
    """``results`` with the at-chance footnote added to the rows of those that have such seeds."""
    out = []
    for c in results:
        note = chance_note(c)
        out.append(c if note is None else replace(c, entry=replace(c.entry, notes=(*c.entry.notes, note))))
    return out


# ------------------------------------------------------------------------------------------------
# series and charts


@dataclass(frozen=True)
class SeedLine:
    """One seed's curve of one metric."""

    seed: int
    epochs: tuple[int, ...]
    values: tuple[float, ...]
    at_chance: bool


@dataclass(frozen=True)
class Series:
    """One training set's curves of one metric: a line per seed (drawn apart, so that a seed at
    chance is never averaged into the others)."""

    label: str  # the training set as the board names it (variant)
    train_set: str  # colour key: clean / em / ops / cifar10s / other
    lines: tuple[SeedLine, ...]

    @property
    def n_seeds(self) -> int:
        return len(self.lines)

    @property
    def chance_seeds(self) -> tuple[int, ...]:
        return tuple(line.seed for line in self.lines if line.at_chance)

    @property
    def epochs(self) -> tuple[int, ...]:
        return tuple(sorted({e for line in self.lines for e in line.epochs}))


@dataclass(frozen=True)
class Chart:
    """One (submission, model, method, defense, preset): a panel per metric, a series per training set."""

    key: str  # file-name-safe and unique on the page
    title: str
    comparable: bool
    panels: tuple[tuple[str, tuple[Series, ...]], ...]  # (metric title, series)


def _series(result: CheckedResult, metric: str) -> Series | None:
    e, record = result.entry, result.record
    k = _num_classes(record)
    lines = []
    for i, seed in enumerate(_seeds(record)):
        recs = _records(seed)
        points = [(r.epoch, v) for r in recs if (v := _num(getattr(r, metric), 0.0, 1.0)) is not None]
        if points:
            lines.append(SeedLine(seed=_seed_id(seed, i), epochs=tuple(p[0] for p in points),
                                  values=tuple(p[1] for p in points), at_chance=bool(seed_at_chance(recs, k))))
    if not lines:
        return None
    return Series(label=e.variant, train_set=e.train_set if e.train_set in _KNOWN_SETS else "other",
                  lines=tuple(lines))


_KNOWN_SETS = CHART_SETS  # the bar chart's training sets, in the paper's order
_SET_ORDER = {s: i for i, s in enumerate(_KNOWN_SETS)}


def _slug(text: str) -> str:
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in out.split("-") if p)[:80] or "chart"


def build_charts(results: Sequence[CheckedResult]) -> list[Chart]:
    """One :class:`Chart` per (submission, model, method, defense, preset) among the board's
    checked ``results``, in the order of the board's tables: the comparable part first, then by
    model and by the paper's order of methods (standard training first)."""
    groups: dict[tuple[Any, ...], list[CheckedResult]] = {}
    for c in results:
        e = c.entry
        groups.setdefault((not e.comparable, *table_order(e)), []).append(c)
    charts: list[Chart] = []
    used: set[str] = set()
    for key in sorted(groups)[:MAX_CHARTS]:
        members = sorted(groups[key], key=lambda m: (_SET_ORDER.get(m.entry.train_set, 9), m.entry.variant, m.file))
        panels = []
        for metric, metric_title in METRICS:
            series = [s for s in (_series(m, metric) for m in members) if s is not None][:MAX_SERIES]
            if series:
                panels.append((metric_title, tuple(series)))
        if not panels:
            continue
        e0 = members[0].entry
        title = " | ".join(x for x in (e0.name, e0.model, e0.method, e0.defense, f"preset {e0.preset}") if x)
        slug = base = _slug(f"{e0.model}-{e0.method}-{e0.defense}-{e0.preset}")
        k = 2
        while slug in used:
            slug, k = f"{base}-{k}", k + 1
        used.add(slug)
        charts.append(Chart(key=slug, title=title, comparable=e0.comparable, panels=tuple(panels)))
    return charts
