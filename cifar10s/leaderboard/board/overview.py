"""The board's two overviews: by model and method across the four training sets, and defenses on CIFAR-10-S.

*By model and method* answers what researchers bring to the benchmark: how much does each
training set cost each model and method? One row per (submission, model, method, defense,
preset) with a column per training set (clean, EM, OPS, CIFAR-10-S: ours, mean ± std over seeds,
beside the paper's number where Tables 2-4 print one, marked *reported*) and the drop from
clean to CIFAR-10-S in points. *Defenses vs CIFAR-10-S* ranks training-set defenses by the
accuracy they reach on CIFAR-10-S next to the same model and method without a defense, with the
clean accuracy each defense costs.

Both take the board's checked results (:class:`.results.CheckedResult`), sandboxed ones only
(results scored without a sandbox are never ranked), and render to Markdown and HTML with the
cells of :mod:`.cells`. Rows follow the board's order (:func:`.chart.table_order`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from .cells import header, md, num_cell
from .chart import method_rank, pct, table_order
from .paper_rows import tables_text
from .results import CheckedResult, Entry

__all__ = ["DEFENSE_COLUMNS", "MODEL_COLUMNS", "DefenseRow", "ModelRow", "defense_rows", "defenses_html",
           "defenses_markdown", "model_rows", "models_html", "models_markdown"]

#: the overview's training sets, in the paper's order (Table 4's columns)
SETS = ("clean", "em", "ops", "cifar10s")
_SET_HEADERS = {"clean": "Clean", "em": "EM", "ops": "OPS", "cifar10s": "CIFAR-10-S"}


@dataclass(frozen=True)
class Cell:
    """One training set of a row: our result (if any) and the paper's number (if printed)."""

    entry: Entry | None
    paper: float | None  # percent, as printed
    paper_tables: str  # "Table 2" / "Tables 2 and 4"
    more: int = 0  # further results of this row and set, in the detail tables

    @property
    def ours(self) -> float | None:
        """Our mean final accuracy in percent."""
        return None if self.entry is None or self.entry.final is None else 100.0 * self.entry.final


@dataclass(frozen=True)
class ModelRow:
    name: str
    model: str
    method: str
    defense: str
    preset: str
    comparable: bool
    cells: dict[str, Cell]
    refs: tuple[str, ...]  # the footnotes of the row's results (numbered by the page)

    def drop(self, paper: bool = False) -> float | None:
        """Clean minus CIFAR-10-S accuracy, in points (ours, or the paper's)."""
        a, b = self.cells["clean"], self.cells["cifar10s"]
        x, y = (a.paper, b.paper) if paper else (a.ours, b.ours)
        return None if x is None or y is None else x - y


@cache
def _paper(model_key: str, method: str, train_set: str) -> tuple[float | None, str]:
    """The paper's clean test accuracy for (model, method, training set) and the tables printing it."""
    from ...paper import lookup

    found = [r for r in lookup(model_key, method, train_set) if r.test_acc is not None]
    if not found:
        return None, ""
    value = found[0].test_acc
    return value, tables_text(list(dict.fromkeys(r.table for r in found if r.test_acc == value)))


def _pick(entries: list[Entry]) -> tuple[Entry, int]:
    """The result a cell shows when several fall in it: most seeds, then the newest; and how many more."""
    return max(entries, key=lambda e: (e.seeds or 0, e.date, e.file)), len(entries) - 1


def model_rows(results: Sequence[CheckedResult]) -> list[ModelRow]:
    """The by-model rows of the sandboxed results: comparable rows first, then the board's order."""
    groups: dict[tuple[Any, ...], dict[str, list[Entry]]] = {}
    for c in results:
        e = c.entry
        if e.sandbox is None or e.paper_train_set not in SETS:
            continue
        key = (not e.comparable, *table_order(e))
        groups.setdefault(key, {}).setdefault(e.paper_train_set, []).append(e)
    rows = []
    for key in sorted(groups):
        by_set = groups[key]
        first = next(iter(by_set.values()))[0]
        cells, refs = {}, []
        for ts in SETS:
            entry, more = _pick(by_set[ts]) if ts in by_set else (None, 0)
            plain = not first.defense and first.model_key is not None
            paper, tables = _paper(first.model_key, first.method.lower(), ts) if plain else (None, "")
            cells[ts] = Cell(entry, paper, tables, more)
            refs += list(entry.notes) if entry is not None else []
        rows.append(ModelRow(first.name, first.model, first.method, first.defense, first.preset, first.comparable,
                             cells, tuple(dict.fromkeys(refs))))
    return rows


@dataclass(frozen=True)
class DefenseRow:
    """One defense (or none) of a (model, method, preset) on CIFAR-10-S, beside its clean accuracy."""

    defense: str  # "" for the row without a defense
    model: str
    method: str
    preset: str
    comparable: bool
    poisoned: Entry  # trained on CIFAR-10-S
    clean: Entry | None  # the same defense trained on clean CIFAR-10
    baseline: Entry | None  # no defense, CIFAR-10-S
    baseline_clean: Entry | None  # no defense, clean

    @property
    def other_build(self) -> list[str]:
        """The training sets on which this defense trained on another build than the row without a
        defense (different training-image sha256): its restored points or clean cost then compare
        two different draws of the same data, not only the defense."""
        pairs = (("CIFAR-10-S", self.poisoned, self.baseline), ("clean", self.clean, self.baseline_clean))
        return [name for name, a, b in pairs if a is not None and b is not None and a.data_sha256
                and b.data_sha256 and a.data_sha256 != b.data_sha256]

    @property
    def restored(self) -> float | None:
        """CIFAR-10-S accuracy gained over no defense, in points."""
        return _pp(self.poisoned, self.baseline)

    @property
    def clean_cost(self) -> float | None:
        """Clean accuracy lost to the defense (no defense minus defense, both trained on clean), in points."""
        return None if self.clean is None else _pp(self.baseline_clean, self.clean)


def _pp(a: Entry | None, b: Entry | None) -> float | None:
    if a is None or b is None or a.final is None or b.final is None:
        return None
    return 100.0 * (a.final - b.final)


def defense_rows(rows: Sequence[ModelRow]) -> list[list[DefenseRow]]:
    """Per (model, method, preset, comparability) with a defense scored on CIFAR-10-S: the row
    without a defense first (when scored), then the defenses, highest CIFAR-10-S accuracy first."""
    groups: dict[tuple[Any, ...], list[ModelRow]] = {}
    for r in rows:
        groups.setdefault((not r.comparable, r.model, r.method, r.preset), []).append(r)
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], method_rank(k[2]), k[2], k[3])):
        members = groups[key]
        plain = next((r for r in members if not r.defense and r.cells["cifar10s"].entry is not None), None)
        base, base_clean = ((plain.cells["cifar10s"].entry, plain.cells["clean"].entry) if plain else (None, None))
        defended = [r for r in members if r.defense and r.cells["cifar10s"].entry is not None]
        if not defended:
            continue

        def row(r: ModelRow) -> DefenseRow:
            return DefenseRow(r.defense, r.model, r.method, r.preset, r.comparable, r.cells["cifar10s"].entry,
                              r.cells["clean"].entry, base, base_clean)

        ranked = sorted((row(r) for r in defended), key=lambda d: (-(d.poisoned.final or 0.0), d.defense))
        out.append(([row(plain)] if plain else []) + ranked)
    return out


# ------------------------------------------------------------------------------------------------
# rendering


MODEL_COLUMNS = (
    ("name", "Submission", "text"), ("model", "Model", "text"), ("method", "Method", "text"),
    ("defense", "Defense", "text"), ("preset", "Preset", "text"), ("comparable", "Comparable|with the paper", "text"),
    *((ts, f"{_SET_HEADERS[ts]}|ours (%) · paper", "num") for ts in SETS),
    ("drop", "Drop|clean − CIFAR-10-S, pp", "num"), ("notes", "Notes", "text"),
)
DEFENSE_COLUMNS = (
    ("rank", "#", "num"), ("defense", "Defense", "text"), ("model", "Model", "text"), ("method", "Method", "text"),
    ("preset", "Preset", "text"), ("comparable", "Comparable|with the paper", "text"),
    ("cifar10s", "CIFAR-10-S (%)|trained on CIFAR-10-S", "num"), ("restored", "Restored|pp vs no defense", "num"),
    ("clean", "Clean (%)|trained on clean", "num"), ("cost", "Clean cost|pp vs no defense", "num"),
    ("data", "Data|vs no defense", "text"),
)


def _build_note(d: DefenseRow) -> str:
    other = d.other_build if d.defense else []
    return (f"another build of {' and '.join(other)} than the row without a defense (training images differ)"
            if other else "")


def _ours_text(e: Entry | None) -> str:
    if e is None or e.final is None:
        return "–"
    text = pct(e.final)
    if (e.seeds or 0) > 1 and e.final_std is not None:
        text += f" ± {pct(e.final_std)}"
    return text


def _seeds_text(e: Entry | None) -> str:
    return "" if e is None or e.seeds is None else f"{e.seeds} seed{'s' if e.seeds != 1 else ''}"


def _paper_text(cell: Cell) -> str:
    return "" if cell.paper is None else f"paper {cell.paper:.2f} ({cell.paper_tables}, reported)"


def _signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+.2f}"


def _comparable_text(comparable: bool) -> str:
    return "yes" if comparable else "no"


def models_markdown(rows: Sequence[ModelRow], ref: Any) -> list[str]:
    """The by-model table as Markdown lines; ``ref(note)`` numbers a footnote."""
    head = "| " + " | ".join(label.replace("|", " ") for _, label, _ in MODEL_COLUMNS) + " |"
    align = "|" + "|".join("---:" if t == "num" else "---" for _, _, t in MODEL_COLUMNS) + "|"
    out = [head, align]
    for r in rows:
        cells = [md(r.name), md(r.model), md(r.method), md(r.defense) or "–", md(r.preset),
                 _comparable_text(r.comparable)]
        for ts in SETS:
            c = r.cells[ts]
            parts = [_ours_text(c.entry) + (f" ({_seeds_text(c.entry)})" if c.entry is not None else "")]
            parts += [_paper_text(c)] if c.paper is not None else []
            parts += [f"{c.more} more in the detail tables"] if c.more else []
            cells.append("; ".join(parts))
        paper_drop = r.drop(paper=True)
        cells.append(_signed(r.drop()) + (f" (paper {paper_drop:+.2f})" if paper_drop is not None else ""))
        cells.append(" ".join(f"†{ref(n)}" for n in r.refs) or "–")
        out.append("| " + " | ".join(cells) + " |")
    return out


def _head(columns: Sequence[tuple[str, str, str]]) -> str:
    return "".join(f'<th data-key="{k}" data-type="{t}"><button type="button">{header(label)}</button></th>'
                   for k, label, t in columns)


def _sub(*lines: str) -> str:
    return "".join(f'<div class="sub">{html.escape(x)}</div>' for x in lines if x)


def models_html(rows: Sequence[ModelRow], ref: Any, table_id: str) -> str:
    """The by-model table as one sortable HTML table (``table.board``, so the page's script sorts
    and filters it); ``ref(note)`` numbers a footnote."""
    esc = html.escape
    out = [f'<div class="wrap"><table class="board overview" id="{table_id}"><thead><tr>'
           + _head(MODEL_COLUMNS) + "</tr></thead><tbody>"]
    for r in rows:
        cells = [f'<td class="name" data-v="{esc(r.name.lower(), quote=True)}">{esc(r.name)}</td>',
                 f"<td>{esc(r.model)}</td>", f"<td>{esc(r.method)}</td>", f"<td>{esc(r.defense) or '–'}</td>",
                 f'<td class="nw">{esc(r.preset)}</td>', f"<td>{_comparable_text(r.comparable)}</td>"]
        for ts in SETS:
            c = r.cells[ts]
            sub = _sub(_seeds_text(c.entry), f"{c.more} more in the detail tables" if c.more else "")
            if c.paper is not None:
                sub += f'<div class="sub reported">{esc(_paper_text(c))}</div>'
            cells.append(num_cell(c.ours, _ours_text(c.entry), sub))
        paper_drop = r.drop(paper=True)
        cells.append(num_cell(r.drop(), _signed(r.drop()), _sub(f"paper {paper_drop:+.2f}" if paper_drop is not None
                                                                else "")))
        cells.append("<td>" + (" ".join(f'<a href="#fn-{ref(n)}">†{ref(n)}</a>' for n in r.refs) or "–") + "</td>")
        out.append('<tr class="overview">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _defense_cells(group: Sequence[DefenseRow]) -> list[tuple[DefenseRow, int | None]]:
    rank, out = 0, []
    for d in group:
        if d.defense:
            rank += 1
        out.append((d, rank if d.defense else None))
    return out


def defenses_markdown(groups: Sequence[Sequence[DefenseRow]]) -> list[str]:
    head = "| " + " | ".join(label.replace("|", " ") for _, label, _ in DEFENSE_COLUMNS) + " |"
    align = "|" + "|".join("---:" if t == "num" else "---" for _, _, t in DEFENSE_COLUMNS) + "|"
    out = [head, align]
    for group in groups:
        for d, rank in _defense_cells(group):
            cells = ["–" if rank is None else str(rank), md(d.defense) or "none", md(d.model), md(d.method),
                     md(d.preset), _comparable_text(d.comparable),
                     f"{_ours_text(d.poisoned)} ({_seeds_text(d.poisoned)})",
                     _signed(d.restored) if d.defense else "–",
                     f"{_ours_text(d.clean)} ({_seeds_text(d.clean)})" if d.clean is not None else "–",
                     _signed(d.clean_cost) if d.defense else "–", md(_build_note(d)) or "–"]
            out.append("| " + " | ".join(cells) + " |")
    return out


def defenses_html(groups: Sequence[Sequence[DefenseRow]], table_id: str) -> str:
    esc = html.escape
    out = [f'<div class="wrap"><table class="board overview" id="{table_id}"><thead><tr>'
           + _head(DEFENSE_COLUMNS) + "</tr></thead><tbody>"]
    for group in groups:
        for d, rank in _defense_cells(group):
            pois, clean = d.poisoned, d.clean
            cells = [num_cell(rank, "–" if rank is None else str(rank)),
                     f"<td>{esc(d.defense) or '<i>none</i>'}</td>", f"<td>{esc(d.model)}</td>",
                     f"<td>{esc(d.method)}</td>", f'<td class="nw">{esc(d.preset)}</td>',
                     f"<td>{_comparable_text(d.comparable)}</td>",
                     num_cell(None if pois.final is None else 100 * pois.final, _ours_text(pois), _sub(_seeds_text(pois))),
                     num_cell(d.restored if d.defense else None, _signed(d.restored) if d.defense else "–"),
                     num_cell(None if clean is None or clean.final is None else 100 * clean.final, _ours_text(clean),
                              _sub(_seeds_text(clean))),
                     num_cell(d.clean_cost if d.defense else None, _signed(d.clean_cost) if d.defense else "–"),
                     f'<td class="sub">{esc(_build_note(d)) or ("same builds" if d.defense else "–")}</td>']
            out.append(f'<tr class="{"defense" if d.defense else "baseline"}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)
