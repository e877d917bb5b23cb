"""Lookups against the paper's tables: its accuracies keyed the way results are, and comparisons.

A result is keyed by (model, method, training set); :func:`lookup` finds the paper rows with
that key and :func:`compare` sets a result's accuracies beside them. Results from this package
are fractions, so :func:`compare` multiplies them by 100. Tables 2-5 report clean CIFAR-10
*test* accuracy and are what submissions are compared with; Table 1 reports accuracy on
(shuffled) *training* sets and is reached with ``evaluated_on=``. The tables themselves are
:mod:`.tables`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..variants import VariantSpec, parse_variant
from .tables import CLEAN_TEST, CellSource, PaperTable, _table, canonical_model, tables

__all__ = [
    "BaselineRow",
    "Comparison",
    "compare",
    "format_comparison",
    "lookup",
    "rows",
    "train_set_name",
]

#: model used as a reference row for submissions whose model is not one of the paper's
REFERENCE_MODEL = "resnet18"
_SETTINGS = (None, "unshuffled", "shuffled")


@dataclass(frozen=True)
class BaselineRow:
    """An accuracy printed in the paper, keyed the way results are: model, method, training set."""

    table: str
    model: str
    method: str
    train_set: str
    accuracy: float  # percent, as printed
    source: CellSource
    evaluated_on: str = CLEAN_TEST
    pixels: int | None = None  # Table 5's number of perturbed pixels
    params_m: float | None = None  # the model's size printed in the same table, if any

    @property
    def test_acc(self) -> float | None:
        """Clean test accuracy in percent; None for Table 1, which measures training sets."""
        return self.accuracy if self.evaluated_on == CLEAN_TEST else None

    def describe(self) -> str:
        what = f"{self.model}, {self.method}, {self.train_set}"
        if self.evaluated_on != CLEAN_TEST:
            what = f"{self.model}, {self.method}, trained on {self.train_set}, evaluated on {self.evaluated_on}"
        return f"paper {self.table.replace('table', 'Table ')} ({what})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "table": self.table, "model": self.model, "method": self.method, "train_set": self.train_set,
            "evaluated_on": self.evaluated_on, "accuracy": self.accuracy, "test_acc": self.test_acc,
            "source": self.source.to_dict(),
        }
        if self.pixels is not None:
            d["pixels"] = self.pixels
        if self.params_m is not None:
            d["params_m"] = self.params_m
        return d


# ------------------------------------------------------------------------------------------------
# lookups


def _size_of(table: PaperTable, model: str) -> float | None:
    for c in table.cells:
        if c.quantity == "params_m" and c.attributes["model"] == model:
            return c.value
    return None


def rows(table: str | None = None) -> list[BaselineRow]:
    """Every printed accuracy of every table (or of ``table``, e.g. ``"table4"``), in paper order."""
    selected = [_table(table)] if table is not None else tables()
    out = []
    for t in selected:
        for c in t.cells:
            if c.quantity != "accuracy":
                continue
            a = c.attributes
            out.append(BaselineRow(
                table=t.name, model=a["model"], method=a["method"], train_set=a["train_set"], accuracy=c.value,
                source=c.source, evaluated_on=a["evaluated_on"], pixels=a.get("pixels"),
                params_m=_size_of(t, a["model"]),
            ))
    return out


def train_set_name(variant: str | VariantSpec) -> str | None:
    """Name of a training set in the paper's tables: clean, em, ops, cifar10s or ops-kK.

    Returns None for variants the paper does not report (the ``paper-eq3`` objective,
    CIFAR-10-S with more than one pixel).
    """
    spec = variant if isinstance(variant, VariantSpec) else parse_variant(variant)
    if spec.objective != "mean-std":
        return None
    if spec.kind in ("clean", "em"):
        return spec.kind
    if spec.kind == "ops":
        return "ops" if spec.pixels == 1 else f"ops-k{spec.pixels}"
    return "cifar10s" if spec.pixels == 1 else None


def _train_set_key(train_set: str | VariantSpec | None) -> str | None:
    """A variant (``VariantSpec``, ``"ops-k1"``) or a table name (``"ops"``) as the tables spell it."""
    if train_set is None:
        return None
    if isinstance(train_set, VariantSpec):
        return train_set_name(train_set)
    try:
        return train_set_name(parse_variant(train_set))
    except ValueError:
        return train_set.strip().lower()


def lookup(model: str | None, method: str, train_set: str | VariantSpec | None, *,
           setting: str | None = None, evaluated_on: str = CLEAN_TEST) -> list[BaselineRow]:
    """Paper rows for (model, method, training set), in table order.

    ``model=None`` (a custom submission model) returns the ResNet-18 rows as a reference.
    ``evaluated_on`` picks the evaluation set: the clean test set (Tables 2-5) by default, or one
    of Table 1's training sets (e.g. ``"shuffled-ops-train"``). ``setting`` is the shuffle
    experiment's training setting: ``"unshuffled"`` is ordinary training (the same rows as
    ``None``); ``"shuffled"`` finds nothing, since the paper trains no model on shuffled data.
    """
    if setting not in _SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; valid: unshuffled, shuffled")
    key_set = _train_set_key(train_set)
    if key_set is None or setting == "shuffled":
        return []
    key_model = canonical_model(model or REFERENCE_MODEL)
    key_method = method.strip().lower()
    return [
        r for r in rows()
        if r.model == key_model and r.method == key_method and r.train_set == key_set
        and r.evaluated_on == evaluated_on
    ]


@dataclass(frozen=True)
class Comparison:
    row: BaselineRow
    exact: bool  # False: the row is a ResNet-18 reference for a custom model
    ours_mean: float | None  # percent
    ours_std: float | None  # percent
    n_seeds: int
    difference: float | None  # percentage points, ours - paper
    setting: str | None = None  # the shuffle experiment's training setting, when given

    def to_dict(self) -> dict[str, Any]:
        d = {
            **self.row.to_dict(), "exact_match": self.exact, "ours_mean": self.ours_mean,
            "ours_std": self.ours_std, "n_seeds": self.n_seeds, "difference_pp": self.difference,
        }
        if self.setting is not None:
            d["setting"] = self.setting
        return d


def compare(model: str | None, method: str, train_set: str | VariantSpec | None, accuracies: Sequence[float],
            *, setting: str | None = None, evaluated_on: str = CLEAN_TEST) -> list[Comparison]:
    """Compare accuracies (fractions, one per seed) with the matching paper rows (see :func:`lookup`)."""
    vals = [100.0 * float(a) for a in accuracies if a is not None and math.isfinite(float(a))]
    mean = sum(vals) / len(vals) if vals else None
    std = _std(vals) if vals else None
    out = []
    for r in lookup(model, method, train_set, setting=setting, evaluated_on=evaluated_on):
        diff = None if mean is None else round(mean - r.accuracy, 4)
        out.append(Comparison(r, model is not None, mean, std, len(vals), diff, setting))
    return out


def _std(vals: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0.0 for a single value."""
    n = len(vals)
    if n < 2:
        return 0.0
    m = sum(vals) / n
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1))


def _tables_text(tables: Sequence[str]) -> str:
    nums = [t.replace("table", "") for t in tables]
    return f"Table {nums[0]}" if len(nums) == 1 else f"Tables {', '.join(nums[:-1])} and {nums[-1]}"


def format_comparison(comparisons: Sequence[Comparison], *, label: str = "ours",
                      not_comparable: str | None = None) -> list[str]:
    """Human-readable lines: the result beside each paper number, with the difference.

    A number printed in several tables (ResNet-18, standard training, OPS: 15.56 in Tables 2, 4
    and 5) is one line naming every table. ``not_comparable``: why the result cannot be compared
    with the paper (e.g. a shortened preset); then no difference is printed, the reason is.
    """
    groups: dict[tuple[Any, ...], list[Comparison]] = {}
    for c in comparisons:
        r = c.row
        groups.setdefault((r.model, r.method, r.train_set, r.evaluated_on, r.accuracy), []).append(c)
    lines = []
    for members in groups.values():
        c = members[0]
        ours = "n/a" if c.ours_mean is None else f"{c.ours_mean:.2f}%"
        if c.ours_std is not None and c.n_seeds > 1:
            ours += f" ± {c.ours_std:.2f} ({c.n_seeds} seeds)"
        if not_comparable:
            diff = f"  (no difference shown: {not_comparable})"
        else:
            diff = f"  difference {c.difference:+.2f} pp" if c.difference is not None else ""
        ref = "" if c.exact else " [reference row: the submission's model is not in the paper]"
        tables = list(dict.fromkeys(m.row.table for m in members))
        where = "; ".join(f"{m.row.table.replace('table', 'Table ')} row '{m.row.source.row}', column "
                          f"'{m.row.source.column}'" for m in members) if len(tables) > 1 else (
            f"row '{c.row.source.row}', column '{c.row.source.column}'")
        described = c.row.describe().replace(c.row.table.replace("table", "Table "), _tables_text(tables), 1)
        lines.append(f"{described}: {c.row.accuracy:.2f}% [{where}] | {label}: {ours}{diff}{ref}")
    return lines
