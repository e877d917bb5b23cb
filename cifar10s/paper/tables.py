"""The paper's result tables (Wu et al., ICLR 2023, Tables 1-5) as data: the data model, loading, validation, printing.

``baselines.json`` next to this module keeps each table in its own shape: its rows and columns
with the labels printed in the paper and what they mean (model, method, training set, evaluation
set, quantity), and one entry per printed number with its location in the paper (table, printed
row, printed column). Table 1 is printed with the evaluation sets as rows; it is stored with the
trained models as rows. Its cells printed as "-" (not evaluated) are listed as ``not_reported``.

The file is validated when it is read: every cell of every table is either a number with its
source location or listed as not reported, so a half-filled table is an error, not a silent gap.

Paper values are percentages, as printed. Looking rows up by (model, method, training set) and
comparing results with them is :mod:`.lookup`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from .. import strict_json

__all__ = [
    "CLEAN_TEST",
    "CellSource",
    "PaperCell",
    "PaperTable",
    "canonical_model",
    "format_tables",
    "load_baselines",
    "table_names",
    "tables",
    "validate_baselines",
]

BASELINES_FILE = "baselines.json"
FORMAT = "cifar10s-baselines"
FORMAT_VERSION = 2
#: evaluation set of Tables 2-5: the clean CIFAR-10 test set
CLEAN_TEST = "clean-test"

_TABLE_NAMES = ("table1", "table2", "table3", "table4", "table5")
_QUANTITIES = ("accuracy", "params_m")
_ATTRIBUTES = ("model", "method", "train_set", "evaluated_on", "pixels", "quantity")
_TRAIN_SET_RE = re.compile(r"^(clean|em|ops|cifar10s|ops-k([2-9]|[1-9]\d+))$")


# ------------------------------------------------------------------------------------------------
# data model


@dataclass(frozen=True)
class CellSource:
    """Where a number is printed: ``Table N``, the printed row label and column label."""

    table: str
    row: str
    column: str

    def describe(self) -> str:
        return f"{self.table}, row '{self.row}', column '{self.column}'"

    def to_dict(self) -> dict[str, str]:
        return {"table": self.table, "row": self.row, "column": self.column}


@dataclass(frozen=True)
class PaperCell:
    """One printed number with what it measures (the table's, row's and column's attributes)."""

    table: str  # "table4"
    row: str  # row key
    column: str  # column key
    value: float  # percent (quantity "accuracy") or millions (quantity "params_m")
    attributes: Mapping[str, Any]
    source: CellSource

    @property
    def quantity(self) -> str:
        return str(self.attributes["quantity"])


@dataclass(frozen=True)
class PaperTable:
    """One table in its stored shape; ``cell(row, column)`` is None only for not-reported cells."""

    name: str
    caption: str
    description: str
    printed_transposed: bool
    row_meaning: str
    column_meaning: str
    fixed: Mapping[str, Any]
    rows: tuple[Mapping[str, Any], ...]
    columns: tuple[Mapping[str, Any], ...]
    cells: tuple[PaperCell, ...]
    not_reported: tuple[tuple[str, str, CellSource], ...]

    @property
    def title(self) -> str:
        return self.name.replace("table", "Table ")

    @property
    def row_keys(self) -> list[str]:
        return [r["key"] for r in self.rows]

    @property
    def column_keys(self) -> list[str]:
        return [c["key"] for c in self.columns]

    def cell(self, row: str, column: str) -> PaperCell | None:
        for c in self.cells:
            if c.row == row and c.column == column:
                return c
        if any(r == row and col == column for r, col, _ in self.not_reported):
            return None
        raise KeyError(f"{self.name} has no cell ({row!r}, {column!r})")


# ------------------------------------------------------------------------------------------------
# loading and validation


@lru_cache(maxsize=1)
def _load_text() -> str:
    return resources.files("cifar10s.paper").joinpath(BASELINES_FILE).read_text(encoding="utf-8")


def load_baselines() -> dict[str, Any]:
    """The whole ``baselines.json`` document (a fresh copy), after validation."""
    doc = strict_json.loads(_load_text())
    validate_baselines(doc)
    return doc


@lru_cache(maxsize=1)
def _tables() -> tuple[PaperTable, ...]:
    return validate_baselines(strict_json.loads(_load_text()))


def tables() -> list[PaperTable]:
    """The five tables, validated, in paper order."""
    return list(_tables())


def table_names() -> list[str]:
    return [t.name for t in _tables()]


def _table(name: str) -> PaperTable:
    for t in _tables():
        if t.name == name:
            return t
    raise ValueError(f"unknown table {name!r}; valid: {', '.join(table_names())}")


def canonical_model(name: str) -> str:
    """Registry spelling used in the tables: ``WRN_28_10``/``wrn-28-10`` -> ``wrn28-10``."""
    key = name.strip().lower().replace("_", "-")
    return re.sub(r"^wrn-(\d+)-", r"wrn\1-", key)


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"{BASELINES_FILE}: {where}: {problem}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_baselines(doc: Mapping[str, Any]) -> tuple[PaperTable, ...]:
    """Check the whole document and return its tables; raise ValueError naming the first problem.

    Every (row, column) of every table must be a cell with a finite number and a source location
    that matches the table's printed labels, or be listed as not reported; accuracies must have a
    model, method, training set and evaluation set.
    """
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise _fail("header", f"expected format {FORMAT!r} version {FORMAT_VERSION}, got "
                              f"{doc.get('format')!r} version {doc.get('format_version')!r}")
    src = doc.get("source") or {}
    for key in ("title", "authors", "venue", "arxiv"):
        if not src.get(key):
            raise _fail("source", f"missing {key!r}")
    eval_sets = doc.get("evaluation_sets") or {}
    if CLEAN_TEST not in eval_sets:
        raise _fail("evaluation_sets", f"missing {CLEAN_TEST!r}")
    raw = doc.get("tables") or {}
    if tuple(raw) != _TABLE_NAMES:
        raise _fail("tables", f"expected {', '.join(_TABLE_NAMES)} in that order, got {', '.join(raw)}")
    return tuple(_validate_table(name, raw[name], set(eval_sets)) for name in _TABLE_NAMES)


def _axis(name: str, kind: str, entries: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(entries, list) or not entries:
        raise _fail(name, f"{kind} must be a non-empty list")
    keys = [e.get("key") for e in entries]
    if len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
        raise _fail(name, f"{kind} keys must be unique non-empty strings, got {keys}")
    for e in entries:
        if not e.get("printed"):
            raise _fail(name, f"{kind[:-1]} {e['key']!r} has no printed label")
        unknown = set(e) - {"key", "printed", *_ATTRIBUTES}
        if unknown:
            raise _fail(name, f"{kind[:-1]} {e['key']!r} has unknown fields {sorted(unknown)}")
    return tuple(entries)


def _attributes(name: str, fixed: Mapping[str, Any], row: Mapping[str, Any], col: Mapping[str, Any]) -> dict[str, Any]:
    row_attrs = {k: v for k, v in row.items() if k in _ATTRIBUTES}
    col_attrs = {k: v for k, v in col.items() if k in _ATTRIBUTES}
    both = set(row_attrs) & set(col_attrs)
    if both:
        raise _fail(name, f"row {row['key']!r} and column {col['key']!r} both set {sorted(both)}")
    return {**fixed, **row_attrs, **col_attrs}


def _check_meaning(where: str, attrs: Mapping[str, Any], value: float, eval_sets: set[str]) -> None:
    quantity = attrs.get("quantity")
    if quantity not in _QUANTITIES:
        raise _fail(where, f"quantity must be one of {_QUANTITIES}, got {quantity!r}")
    model = attrs.get("model")
    if not isinstance(model, str) or canonical_model(model) != model:
        raise _fail(where, f"model must be a registry name, got {model!r}")
    if quantity == "params_m":
        if value <= 0:
            raise _fail(where, f"parameter count must be positive, got {value}")
        return
    for key in ("method", "train_set", "evaluated_on"):
        if not isinstance(attrs.get(key), str):
            raise _fail(where, f"an accuracy needs {key!r}")
    if not 0 <= value <= 100:
        raise _fail(where, f"accuracy {value} is not a percentage")
    if not _TRAIN_SET_RE.match(attrs["train_set"]):
        raise _fail(where, f"unknown training set {attrs['train_set']!r}")
    if attrs["evaluated_on"] not in eval_sets:
        raise _fail(where, f"evaluation set {attrs['evaluated_on']!r} is not listed in evaluation_sets")
    if "pixels" in attrs:
        k = attrs["pixels"]
        expected = "clean" if k == 0 else "ops" if k == 1 else f"ops-k{k}"
        if attrs["train_set"] != expected:
            raise _fail(where, f"{k} pixel(s) should be training set {expected!r}, got {attrs['train_set']!r}")


def _validate_table(name: str, t: Mapping[str, Any], eval_sets: set[str]) -> PaperTable:
    printed_name = name.replace("table", "Table ")
    for key in ("caption", "description", "row_meaning", "column_meaning"):
        if not t.get(key):
            raise _fail(name, f"missing {key!r}")
    rows_ = _axis(name, "rows", t.get("rows"))
    cols = _axis(name, "columns", t.get("columns"))
    transposed = t.get("printed_transposed")
    if not isinstance(transposed, bool):
        raise _fail(name, "printed_transposed must be true or false")
    fixed = t.get("fixed") or {}
    if set(fixed) - set(_ATTRIBUTES):
        raise _fail(name, f"fixed has unknown fields {sorted(set(fixed) - set(_ATTRIBUTES))}")
    row_by = {r["key"]: r for r in rows_}
    col_by = {c["key"]: c for c in cols}

    def located(entry: Mapping[str, Any], what: str) -> tuple[Mapping[str, Any], Mapping[str, Any], CellSource]:
        r, c = entry.get("row"), entry.get("column")
        if r not in row_by or c not in col_by:
            raise _fail(name, f"{what} ({r!r}, {c!r}) is not a row and column of the table")
        s = entry.get("source") or {}
        source = CellSource(str(s.get("table")), str(s.get("row")), str(s.get("column")))
        pr, pc = row_by[r]["printed"], col_by[c]["printed"]
        want = CellSource(printed_name, pc, pr) if transposed else CellSource(printed_name, pr, pc)
        if source != want:
            raise _fail(name, f"{what} ({r}, {c}) has source {source.describe()}, expected {want.describe()}")
        return row_by[r], col_by[c], source

    seen: set[tuple[str, str]] = set()
    cells: list[PaperCell] = []
    for entry in t.get("cells") or []:
        row, col, source = located(entry, "cell")
        key = (row["key"], col["key"])
        if key in seen:
            raise _fail(name, f"cell {key} appears twice")
        seen.add(key)
        value = entry.get("value")
        if not _is_number(value):
            raise _fail(name, f"cell {key} has no number (value {value!r})")
        attrs = _attributes(name, fixed, row, col)
        _check_meaning(f"{name} cell {key}", attrs, float(value), eval_sets)
        cells.append(PaperCell(name, key[0], key[1], float(value), attrs, source))
    missing: list[tuple[str, str, CellSource]] = []
    for entry in t.get("not_reported") or []:
        row, col, source = located(entry, "not-reported cell")
        key = (row["key"], col["key"])
        if key in seen:
            raise _fail(name, f"cell {key} is both a number and not reported")
        if entry.get("printed") != "-":
            raise _fail(name, f"not-reported cell {key} must record printed '-'")
        seen.add(key)
        missing.append((key[0], key[1], source))
    grid = {(r["key"], c["key"]) for r in rows_ for c in cols}
    if seen != grid:
        raise _fail(name, f"cells missing: {sorted(grid - seen)}")
    return PaperTable(
        name=name, caption=t["caption"], description=t["description"], printed_transposed=transposed,
        row_meaning=t["row_meaning"], column_meaning=t["column_meaning"], fixed=dict(fixed), rows=rows_, columns=cols,
        cells=tuple(cells), not_reported=tuple(missing),
    )


# ------------------------------------------------------------------------------------------------
# printing


def _fmt(cell: PaperCell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.value:.2f}M" if cell.quantity == "params_m" else f"{cell.value:.2f}"


def _grid(t: PaperTable) -> list[str]:
    corner = f"{t.row_meaning} \\ {t.column_meaning}"
    header = [corner] + [c["printed"] for c in t.columns]
    body = [[r["printed"]] + [_fmt(t.cell(r["key"], c["key"])) for c in t.columns] for r in t.rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  " + " | ".join([first] + [v.rjust(w) for v, w in zip(cells[1:], widths[1:])])

    rule = "  " + "-+-".join("-" * w for w in widths)
    return [line(header), rule, *(line(b) for b in body)]


def _attrs_text(entry: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={entry[k]}" for k in _ATTRIBUTES if k in entry)


def format_tables(table: str | None = None) -> str:
    """All five tables (or one, e.g. ``"table4"``) as plain-text grids, with the paper they come from."""
    selected = [_table(table)] if table is not None else list(_tables())
    src = load_baselines()["source"]
    out = [f"{', '.join(src['authors'])}. {src['title']}. {src['venue']}, arXiv {src['arxiv']}."]
    for t in selected:
        out.append("")
        out.append(f"{t.title}: {t.caption}")
        out.append(f"  {t.description}")
        out.extend(_grid(t))
        out.append(f"  defaults: {_attrs_text(t.fixed)}")
        out.append(f"  rows: {' | '.join(_attrs_text(r) for r in t.rows)}")
        out.append(f"  columns: {' | '.join(_attrs_text(c) for c in t.columns)}")
        if t.printed_transposed:
            out.append("  (printed in the paper with rows and columns swapped)")
    return "\n".join(out)
