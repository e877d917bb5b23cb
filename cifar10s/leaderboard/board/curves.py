"""Learning curves and at-chance seeds, derived from result records when the board is rendered.

A final accuracy hides *when* a shortcut takes hold; the per-epoch records the scorer stores
show it. For each (submission, model, method, defense, preset) this builds one chart with a
series per training set (clean / EM / OPS / CIFAR-10-S ...): clean test accuracy per epoch
(computed by the scorer from the per-epoch predictions), and, where the trainer recorded it,
accuracy on the training batches, each as the mean over seeds with the min-max band.

It also tells a seed that never left chance (:func:`seed_at_chance`): such a seed would drag a
row's mean down without anything to show for it, so the board marks it. This is computed here,
from the recorded losses and accuracies, every time the board is rendered; result files never
carry it as a claim.

Pure functions over plain data (no torch): result files are other people's bytes, so every
number is checked (finite, in range) and anything else is left out of the curves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .chart import CHART_SETS
from .results import Entry, clean_text, parse_result

__all__ = [
    "CHANCE_ACC_MARGIN",
    "CHANCE_LOSS_MARGIN",
    "Chart",
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


# ------------------------------------------------------------------------------------------------
# checked numbers from untrusted records


def _num(value: Any, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and lo <= v <= hi else None


def _records(seed: Any) -> list[Mapping[str, Any]]:
    """A seed's per-epoch records in epoch order, or [] if they are not a plain 1..N list."""
    recs = seed.get("records") if isinstance(seed, Mapping) else None
    if not isinstance(recs, list) or not 0 < len(recs) <= MAX_EPOCHS:
        return []
    if not all(isinstance(r, Mapping) for r in recs):
        return []
    if [r.get("epoch") for r in recs] != list(range(1, len(recs) + 1)):
        return []
    return recs


def _num_classes(result: Mapping[str, Any]) -> int:
    config = result.get("config")
    k = config.get("num_classes") if isinstance(config, Mapping) else None
    return k if isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= 100_000 else 10


def _seeds(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    seeds = result.get("per_seed")
    return [s for s in seeds if isinstance(s, Mapping)] if isinstance(seeds, list) else []


def _seed_id(seed: Mapping[str, Any], index: int) -> int:
    s = seed.get("seed")
    return s if isinstance(s, int) and not isinstance(s, bool) else index


# ------------------------------------------------------------------------------------------------
# at-chance seeds


def seed_at_chance(records: Sequence[Mapping[str, Any]], num_classes: int = 10) -> bool | None:
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
    losses = [_num(r.get("train_loss"), 0.0) for r in records]
    finite = [v for v in losses if v is not None]
    train_accs = [v for v in (_num(r.get("train_acc"), 0.0, 1.0) for r in records) if v is not None]
    if finite:
        stuck = all(v >= chance_loss - CHANCE_LOSS_MARGIN for v in finite)
        return stuck and (not train_accs or train_accs[-1] <= chance_acc)
    if train_accs:
        return train_accs[-1] <= chance_acc
    test_accs = [v for v in (_num(r.get("test_acc"), 0.0, 1.0) for r in records) if v is not None]
    return all(v <= chance_acc for v in test_accs) if test_accs else None


def chance_seeds(result: Mapping[str, Any]) -> list[int]:
    """The seeds of a result that never left chance, by their seed number."""
    k = _num_classes(result)
    return [_seed_id(s, i) for i, s in enumerate(_seeds(result)) if seed_at_chance(_records(s), k)]


def chance_note(result: Mapping[str, Any]) -> str | None:
    """The board's footnote for a result with seeds at chance (None when there are none)."""
    stuck = chance_seeds(result)
    if not stuck:
        return None
    k = _num_classes(result)
    which = ", ".join(str(s) for s in stuck)
    return (f"seed{'s' if len(stuck) > 1 else ''} {which} never left chance (training loss within "
            f"{CHANCE_LOSS_MARGIN} of ln {k} = {math.log(k):.3f} in every epoch, chance accuracy "
            f"{100.0 / k:.0f}%); the mean over seeds includes "
            f"{'them' if len(stuck) > 1 else 'it'}: judged from the recorded training curves when "
            "this board was rendered")


def _entry(result: Any, index: int) -> Entry | None:
    if not isinstance(result, Mapping):
        return None
    file = result.get("_file") if isinstance(result.get("_file"), str) else f"result #{index + 1}"
    try:  # the file label as checked_entries makes it, so that rows and results can be matched
        return parse_result(result, clean_text(file)[:200])
    except Exception:  # noqa: BLE001 - malformed or hostile: the board lists it, the curves leave it out
        return None


def with_chance_notes(rows: Sequence[Entry], results: Sequence[Any]) -> list[Entry]:
    """``rows`` (as :func:`.results.checked_entries` returns them for ``results``) with the
    at-chance footnote added to the rows of results that have such seeds."""
    from dataclasses import replace

    notes: dict[str, str] = {}
    for i, r in enumerate(results):
        e = _entry(r, i)
        note = chance_note(r) if e is not None else None
        if e is not None and note is not None:
            notes[e.file] = note
    return [replace(e, notes=(*e.notes, notes[e.file])) if e.file in notes else e for e in rows]


# ------------------------------------------------------------------------------------------------
# series and charts


@dataclass(frozen=True)
class Series:
    """One training set's curve: mean and min-max band over the seeds that recorded the epoch."""

    label: str  # the training set as the board names it (variant)
    train_set: str  # colour key: clean / em / ops / cifar10s / other
    epochs: tuple[int, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    n_seeds: int
    chance_seeds: tuple[int, ...]


@dataclass(frozen=True)
class Chart:
    """One (submission, model, method, defense, preset): a panel per metric, a series per training set."""

    key: str  # file-name-safe and unique on the page
    title: str
    comparable: bool
    panels: tuple[tuple[str, tuple[Series, ...]], ...]  # (metric title, series)


def _series(entry: Entry, result: Mapping[str, Any], metric: str) -> Series | None:
    by_epoch: dict[int, list[float]] = {}
    n = 0
    for seed in _seeds(result):
        got = False
        for r in _records(seed):
            v = _num(r.get(metric), 0.0, 1.0)
            if v is not None:
                by_epoch.setdefault(int(r["epoch"]), []).append(v)
                got = True
        n += got
    if not by_epoch:
        return None
    epochs = tuple(sorted(by_epoch))
    vals = [by_epoch[e] for e in epochs]
    return Series(
        label=entry.variant, train_set=entry.train_set if entry.train_set in _KNOWN_SETS else "other",
        epochs=epochs, mean=tuple(sum(v) / len(v) for v in vals), low=tuple(min(v) for v in vals),
        high=tuple(max(v) for v in vals), n_seeds=n, chance_seeds=tuple(chance_seeds(result)),
    )


_KNOWN_SETS = CHART_SETS  # the bar chart's training sets, in the paper's order
_SET_ORDER = {s: i for i, s in enumerate(_KNOWN_SETS)}


def _slug(text: str) -> str:
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in out.split("-") if p)[:80] or "chart"


def build_charts(results: Sequence[Any], *, verified: Sequence[Entry] | None = None) -> list[Chart]:
    """One :class:`Chart` per (submission, model, method, defense, preset) among ``results``,
    the comparable part first; malformed results are left out (the board lists them as skipped).

    ``verified``: the board's rows (:func:`.results.checked_entries`); when given, only the results
    behind those rows are drawn, so an unsigned or forged file never reaches a chart."""
    shown = None if verified is None else {e.file for e in verified}
    groups: dict[tuple[Any, ...], list[tuple[Entry, Mapping[str, Any]]]] = {}
    for i, r in enumerate(results):
        e = _entry(r, i)
        if e is not None and (shown is None or e.file in shown):
            key = (not e.comparable, e.model, e.method, e.defense, e.preset, e.name)
            groups.setdefault(key, []).append((e, r))
    charts: list[Chart] = []
    used: set[str] = set()
    for key in sorted(groups)[:MAX_CHARTS]:
        members = sorted(groups[key], key=lambda m: (_SET_ORDER.get(m[0].train_set, 9), m[0].variant, m[0].file))
        panels = []
        for metric, metric_title in METRICS:
            series = [s for s in (_series(e, r, metric) for e, r in members) if s is not None][:MAX_SERIES]
            if series:
                panels.append((metric_title, tuple(series)))
        if not panels:
            continue
        e0 = members[0][0]
        title = " | ".join(x for x in (e0.name, e0.model, e0.method, e0.defense, f"preset {e0.preset}") if x)
        slug = base = _slug(f"{e0.model}-{e0.method}-{e0.defense}-{e0.preset}")
        k = 2
        while slug in used:
            slug, k = f"{base}-{k}", k + 1
        used.add(slug)
        charts.append(Chart(key=slug, title=title, comparable=e0.comparable, panels=tuple(panels)))
    return charts
