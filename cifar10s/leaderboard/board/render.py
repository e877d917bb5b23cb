"""Render leaderboard results as Markdown and as a self-contained static HTML page.

Records go through :func:`cifar10s.leaderboard.board.results.checked_entries` first, so whatever the
renderers are given, only checked fields of results signed by a trusted key reach the tables;
every other file is listed under "Unverified files" with the reason instead of breaking the board.

The board has up to three parts of verified results. *Comparable* results used the ``paper``
preset on the official CIFAR-10 data and the release's EM recipe and ran in the sandbox; other
sandboxed results are *not comparable* with the paper; results scored without a sandbox are
shown in a part of their own and never ranked. Each ranked part has its own chart
(:mod:`.chart`) and one table per training set, ranked by final accuracy. The
paper's numbers (``baselines.json``) appear as *reported* rows in the tables that hold a result
with the same (model, method, training set), and as diamonds in the chart only beside bars of
that same model. Results scored by this harness are *reproduced*. The best-epoch accuracy is
selected on the test set, so it is labelled that way and never used for ranking.

The HTML page loads nothing: inline CSS, an inline SVG chart and a short inline script for
sorting and filtering, both pinned by hashes in a Content-Security-Policy, so no other script
or resource could run even if some text slipped past escaping. The Markdown escapes every
field: no links other than http(s) ones built here, no images, no raw HTML, no cell breaks.

It is one module (about 450 lines) because the Markdown board and the HTML page render the
same layout (parts, tables, paper rows, footnotes); reading untrusted result files lives in
`results.py`, the figures in `chart.py`, the page's style and script in `board_assets.py`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...store import atomic_write_bytes
from .board_assets import CSS, JS
from .cells import header, md, md_link, num_cell
from .chart import accuracy_chart, final_text, pct, set_title, table_order
from .curve_plot import curves_html, write_curve_pngs
from .curves import build_charts, with_chance_notes
from .paper_rows import paper_entries
from .overview import (
    defense_rows,
    defenses_html,
    defenses_markdown,
    model_rows,
    models_html,
    models_markdown,
)
from .results import (
    CheckedResult,
    Entry,
    MalformedResult,
    check_records,
    clean_text,
    http_url,
    load_results,
    parse_result,
)
from .signing import TrustedKeys, default_trusted_keys, load_trusted_keys

__all__ = [
    "COLUMNS",
    "MalformedResult",
    "load_results",
    "parse_result",
    "render_html",
    "render_markdown",
    "render_svg",
    "write_leaderboard",
]

_SET_ORDER = ("cifar10s", "clean", "em", "ops")


@dataclass(frozen=True)
class _PartSpec:
    """One part of the board: which verified results it holds and whether it ranks them."""

    key: str
    title: str
    note: str  # HTML; <code> becomes backticks in the Markdown
    ranked: bool
    always: bool  # shown, saying it is empty, whenever the board has any result


_PARTS = (
    _PartSpec("comparable", "Comparable with the paper",
              ("Preset <code>paper</code> on all of CIFAR-10 (the official archive, or a full-size copy of its "
               "images, labelled as such: not the official archive), the release EM recipe, scored in the sandbox. "
               "Subsets are never comparable."), True, True),
    _PartSpec("other", "Not comparable with the paper",
              ("Other presets (shorter training, subsets) or other training data. Useful for checking the "
               "harness and the direction of effects, not for comparing numbers with the paper."), True, False),
    _PartSpec("unsandboxed", "Scored without a sandbox (not ranked)",
              ("Signed results whose submission code ran without the OS sandbox (<code>--no-sandbox</code>, or "
               "scored before the sandbox existed): that code could have read the test labels or changed the "
               "scorer, so these are shown apart and never ranked."), False, False),
)
_UNVERIFIED = ("Unverified files",
               "Not in any table and never ranked: files that could not be read or checked, and results that are "
               "not signed by a trusted scoring key (unsigned, changed after signing, or signed by a key the "
               "leaderboard does not list; a file that carries its own key proves nothing), each with the reason; "
               "and copies of a result already shown (the same signature), which count once.")


def _part_key(e: Entry) -> str:
    if e.sandbox is None:
        return "unsandboxed"
    return "comparable" if e.comparable else "other"


# ------------------------------------------------------------------------------------------------
# layout: sections, tables, paper rows, footnotes


def _order(rows: Iterable[Entry]) -> list[Entry]:
    """Best final accuracy first; the paper's row after ours on a tie."""
    return sorted(rows, key=lambda e: (-(e.final if e.final is not None else -1.0), e.source != "reproduced",
                                       e.name, e.file))


class _Notes:
    """The page's footnotes: each distinct text gets one number, in the order the page first uses it."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def ref(self, note: str) -> int:
        return self.numbers.setdefault(note, len(self.numbers) + 1)

    def listed(self, refs: Iterable[int]) -> list[tuple[int, str]]:
        used = set(refs)
        return [(k, n) for n, k in self.numbers.items() if k in used]


@dataclass(frozen=True)
class _Part:
    """One part of the board: its tables (rows with rank and note numbers) and its notes."""

    key: str
    title: str
    note: str
    ranked: bool
    ours: list[CheckedResult]  # the reproduced results, for the figures
    tables: list[tuple[str, list[tuple[Entry, int | None, list[int]]]]]
    notes: list[tuple[int, str]]


def _layout(results: Sequence[CheckedResult], notes: _Notes) -> list[_Part]:
    """The parts of the board, tables and note numbers; shared by the Markdown and the HTML.

    The comparable part is always there (saying so when it is empty) once there is any result;
    the others only when they have results. Only the sandboxed parts rank their rows. Identical
    notes share one number across the page.
    """
    if not results:
        return []
    parts = []
    for spec in _PARTS:
        ours = [c for c in results if _part_key(c.entry) == spec.key]
        if not ours and not spec.always:
            continue
        by: dict[str, list[Entry]] = {}
        for e in [c.entry for c in ours] + paper_entries([c.entry for c in ours], spec.key == "comparable"):
            by.setdefault(e.train_set, []).append(e)
        tables, used = [], []
        for train_set in [s for s in _SET_ORDER if s in by] + sorted((s for s in by if s not in _SET_ORDER),
                                                                     key=_natural):
            table, rank = [], 0
            for e in _order(by[train_set]):
                refs = [notes.ref(n) for n in e.notes]
                used += refs
                rank += e.source == "reproduced"
                table.append((e, rank if spec.ranked and e.source == "reproduced" else None, refs))
            tables.append((train_set, table))
        parts.append(_Part(spec.key, spec.title, spec.note, spec.ranked, ours, tables, notes.listed(used)))
    return parts


def _natural(text: str) -> list[Any]:
    """Sort key that puts ``ops-k2`` before ``ops-k10``."""
    # isdecimal, as \d: "²" is a digit to isdigit() but not to int()
    return [int(p) if p.isdecimal() else p for p in re.split(r"(\d+)", text)]


_EMPTY_COMPARABLE = "No result yet was scored with the paper preset on all of CIFAR-10."
_INTRO = (
    "Clean CIFAR-10 test accuracy (%) of models trained on each training set; higher is better (on "
    "CIFAR-10-S, a high accuracy means the model learned despite the shortcut). <b>Final acc.</b>: the "
    "final model on the full test set, mean ± sample std over seeds; tables are ranked by it. "
    "<b>Best epoch, selected on test</b>: the best of the per-epoch evaluations, which are made on the "
    "test set, so it is an optimistic figure; it is never used for ranking. <b>Source</b>: "
    "<i>reproduced</i> = scored by this harness from a result file; <i>reported</i> = the number printed "
    "in Wu et al., <i>One-Pixel Shortcut</i> (ICLR 2023), as transcribed in the package's baselines table, "
    "shown where it matches a result's model, method and training set. <b>Δ vs paper</b>: final accuracy "
    "minus the paper's number for the same model, method and training set, in percentage points, for "
    "results comparable with the paper only."
)
_BY_MODEL = ("By model and method",
             "What each training set costs each model and method: final clean test accuracy (%) of the "
             "sandboxed, verified results, mean ± std over seeds, one column per training set, beside the "
             "paper's number where its Tables 2-4 print one (<i>reported</i>, not reproduced). <b>Drop</b>: "
             "clean minus CIFAR-10-S, in points. Rows whose preset is not <code>paper</code> or whose data is "
             "not all of CIFAR-10 are not comparable with the paper's numbers (the detail tables below say "
             "why); click a header to sort.")
_DEFENSES = ("Defenses vs CIFAR-10-S",
             "Training-set defenses (applied once to the training images; the test set stays clean) ranked by "
             "the clean test accuracy they reach when training on CIFAR-10-S, next to the same model and "
             "method without a defense. <b>Restored</b>: points gained over no defense on CIFAR-10-S. "
             "<b>Clean cost</b>: points the defense costs when training on clean CIFAR-10. Rows that are not "
             "comparable with the paper are at the scale their preset says (e.g. the CPU demonstration: a "
             "10,000-image subset, 20 epochs, normalised inputs).")
_NO_DEFENSES = "No defense has been scored on CIFAR-10-S yet."


# ------------------------------------------------------------------------------------------------
# Markdown


_MD_HEADER = ("| # | Submission | Authors | Model | Method | Defense | Training data | Preset | Seeds | Source "
              "| Final acc. (%) | Δ vs paper (pp) | Best epoch, selected on test (%) | Harness | Date | Notes |")
_MD_ALIGN = "|---:|---|---|---|---|---|---|---|---:|---|---:|---:|---:|---|---|---|"


def _data_text(e: Entry) -> str:
    return f"{e.variant} ({e.data_source})" if e.data_source else e.variant


def _md_row(e: Entry, rank: int | None, refs: list[int]) -> str:
    name = md(e.name) + "".join(" " + md_link(label, url) for label, url in e.links)
    cells = ["–" if rank is None else str(rank), name, md(", ".join(e.authors)) or "–",
             md(e.model), md(e.method), md(e.defense) or "–", md(_data_text(e)), md(e.preset),
             "–" if e.seeds is None else str(e.seeds), e.source, final_text(e),
             "–" if e.diff_pp is None else f"{e.diff_pp:+.2f}", pct(e.best), md(e.harness),
             md(e.date) or "–", " ".join(f"†{k}" for k in refs) or "–"]
    return "| " + " | ".join(cells) + " |"


def _rows(table: Sequence[tuple[Entry, int | None, list[int]]], render: Any, notes: list[str]) -> list[str]:
    """Each row rendered on its own: one that fails is left out with a note, never fatal."""
    out = []
    for e, rank, refs in table:
        try:
            out.append(render(e, rank, refs))
        except Exception as exc:  # noqa: BLE001 - one result never stops the board
            notes.append(f"{e.file or e.name}: could not be rendered ({type(exc).__name__})")
    return out


@dataclass(frozen=True)
class _Board:
    """What both pages show, checked once: the verified results (with their chance notes), the
    notes on everything left out, and the learning curves of the verified results with their notes."""

    results: list[CheckedResult]
    notes: list[str]
    charts: list[Any]
    chart_notes: list[str]


def _board(checked: Sequence[CheckedResult], notes: list[str], trusted_keys: TrustedKeys | None) -> _Board:
    if trusted_keys is not None:
        notes = notes + [f"trusted keys: {clean_text(p)}" for p in trusted_keys.problems]
    results = with_chance_notes(sorted(checked, key=lambda c: (table_order(c.entry), c.file)))
    try:  # a failure costs the curves, never the board
        charts, chart_notes = build_charts(results), []
    except Exception as exc:  # noqa: BLE001 - one result never stops the board
        charts, chart_notes = [], [f"learning curves: could not be drawn ({type(exc).__name__})"]
    return _Board(results, notes, charts, chart_notes)


def _records_board(results: Sequence[Any], skipped: Iterable[str], trusted_keys: TrustedKeys | None) -> _Board:
    """The board of in-memory records (record *i* named ``result #i``), each checked once."""
    checked, notes = check_records([(f"result #{i + 1}", r) for i, r in enumerate(results)], trusted_keys, skipped)
    return _board(checked, notes, trusted_keys)


def render_markdown(results: Sequence[Any], *, skipped: Iterable[str] = (),
                    trusted_keys: TrustedKeys | None = None) -> str:
    """A Markdown leaderboard: the overviews, then comparable and non-comparable parts, one table
    per training set.

    Only records signed by one of ``trusted_keys`` get a row; the others are listed with the
    reason under "Unverified files" (with no keys, that is every record).
    """
    return _markdown(_records_board(results, skipped, trusted_keys))


def _plain_note(note: str) -> str:
    return re.sub(r"</?code>", "`", re.sub(r"</?[bi]>", "", note))


def _markdown(board: _Board) -> str:
    skipped = list(board.notes)
    notes = _Notes()
    lines = ["# CIFAR-10-S leaderboard", "", _plain_note(_INTRO), ""]
    if not board.results:
        lines += ["_No results yet._", ""]
    else:
        rows = model_rows(board.results)
        refs: list[int] = []

        def ref(note: str) -> int:
            refs.append(notes.ref(note))
            return refs[-1]

        lines += [f"## {_BY_MODEL[0]}", "", _plain_note(_BY_MODEL[1]), ""] + models_markdown(rows, ref) + [""]
        if refs:
            lines += ["Notes:", ""] + [f"- †{k}: {md(n)}" for k, n in notes.listed(refs)] + [""]
        groups = defense_rows(rows)
        lines += [f"## {_DEFENSES[0]}", "", _plain_note(_DEFENSES[1]), ""]
        lines += (defenses_markdown(groups) if groups else [f"_{_NO_DEFENSES}_"]) + [""]
    for part in _layout(board.results, notes):
        lines += [f"## {part.title}", "", _plain_note(part.note), ""]
        if not part.tables:
            lines += [f"_{_EMPTY_COMPARABLE}_", ""]
        for train_set, table in part.tables:
            lines += [f"### Training set: {md(set_title(train_set))}", "", _MD_HEADER, _MD_ALIGN]
            lines += _rows(table, _md_row, skipped)
            lines.append("")
        if part.notes:
            lines += ["Notes:", ""] + [f"- †{k}: {md(n)}" for k, n in part.notes] + [""]
    if skipped:
        lines += [f"## {_UNVERIFIED[0]}", "", _UNVERIFIED[1], ""] + [f"- {md(s)}" for s in skipped] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# HTML


#: (key, header, type) of the HTML table columns; the keys are what #sort=KEY names
COLUMNS = (
    ("rank", "#", "num"), ("name", "Submission", "text"), ("model", "Model", "text"),
    ("method", "Method", "text"), ("data", "Training data", "text"), ("preset", "Preset", "text"),
    ("seeds", "Seeds", "num"), ("source", "Source", "text"), ("final", "Final acc. (%)|mean ± std", "num"),
    ("diff", "Δ vs paper|pp", "num"), ("best", "Best epoch (%)|selected on test", "num"),
    ("harness", "Harness", "text"), ("date", "Date", "text"), ("notes", "Notes", "text"),
)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _html_row(e: Entry, rank: int | None, refs: list[int]) -> str:
    esc = html.escape
    name = esc(e.name)
    links = " · ".join(f'<a href="{esc(url, quote=True)}" rel="nofollow noopener noreferrer">{esc(label)}</a>'
                       for label, url in e.links)
    sub = "".join(f'<div class="sub">{x}</div>' for x in (esc(", ".join(e.authors)), links) if x)
    method = esc(e.method) + (f'<div class="sub">+ {esc(e.defense)}</div>' if e.defense else "")
    data = esc(e.variant) + (f'<div class="sub">{esc(e.data_source)}</div>' if e.data_source else "")
    notes = " ".join(f'<a href="#fn-{k}">†{k}</a>' for k in refs) or "–"
    cells = [
        num_cell(rank, "–" if rank is None else str(rank)),
        f'<td class="name" data-v="{esc(e.name.lower(), quote=True)}">{name}{sub}</td>',
        f"<td>{esc(e.model)}</td>", f"<td>{method}</td>", f'<td class="nw">{data}</td>',
        f'<td class="nw">{esc(e.preset)}</td>',
        num_cell(e.seeds, "–" if e.seeds is None else str(e.seeds)), f"<td>{e.source}</td>",
        num_cell(None if e.final is None else 100 * e.final, final_text(e)),
        num_cell(e.diff_pp, "–" if e.diff_pp is None else f"{e.diff_pp:+.2f}"),
        num_cell(None if e.best is None else 100 * e.best, pct(e.best)),
        f'<td class="nw">{esc(e.harness)}</td>', f'<td class="nw">{esc(e.date) or "–"}</td>',
        f"<td>{notes}</td>",
    ]
    return f'<tr class="{e.source}">' + "".join(cells) + "</tr>"


_HEAD = "".join(f'<th data-key="{k}" data-type="{t}"' + (' aria-sort="descending"' if k == "final" else "")
                + f'><button type="button">{header(label)}</button></th>' for k, label, t in COLUMNS)


def part_figures(part: _Part) -> list[str]:
    """The figures (inline SVG) at the top of one board part: the accuracy chart of a ranked part."""
    if not part.ranked or not part.ours:
        return []
    return [accuracy_chart(part.ours, f"Clean test accuracy: {part.title.lower()}")]


def render_html(results: Sequence[Any], *, skipped: Iterable[str] = (),
                trusted_keys: TrustedKeys | None = None) -> str:
    """A self-contained static page: filter box, overviews, per-part chart, sortable tables, visible notes.

    Only records signed by one of ``trusted_keys`` get a row (see :func:`render_markdown`).
    """
    return _html(_records_board(results, skipped, trusted_keys))


def _notes_html(listed: Sequence[tuple[int, str]], anchored: set[int]) -> str:
    """A list of footnotes; each number is the target of its links once on the page (its first list)."""
    items = []
    for k, n in listed:
        anchor = "" if k in anchored else f' id="fn-{k}"'
        anchored.add(k)
        items.append(f'<li{anchor} value="{k}">†{k} {html.escape(n)}</li>')
    return '<ol class="notes">' + "".join(items) + "</ol>"


def _html(board: _Board) -> str:
    from ... import __version__

    esc = html.escape
    skipped = board.notes + board.chart_notes
    notes, anchored = _Notes(), set()
    csp = (f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; "
           "base-uri 'none'; form-action 'none'")
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        "<title>CIFAR-10-S leaderboard</title>", f"<style>{CSS}</style></head><body>",
        "<h1>CIFAR-10-S leaderboard</h1>", f'<p class="note">{_INTRO}</p>',
        ('<div class="filter"><label>Filter rows: <input id="filter" type="search" '
         'placeholder="e.g. resnet18 randaugment" autocomplete="off"></label> '
         '<span class="note">click a column header to sort</span></div>'),
    ]
    if not board.results:
        out.append("<p><i>No results yet.</i></p>")
    else:
        rows = model_rows(board.results)
        refs: list[int] = []

        def ref(note: str) -> int:
            refs.append(notes.ref(note))
            return refs[-1]

        out += [f'<section id="by-model"><h2>{esc(_BY_MODEL[0])} <span class="count" id="bm-count"></span></h2>',
                f'<p class="note">{_BY_MODEL[1]}</p>', models_html(rows, ref, "bm")]
        if refs:
            out.append(_notes_html(notes.listed(refs), anchored))
        out.append("</section>")
        groups = defense_rows(rows)
        out += [f'<section id="defenses"><h2>{esc(_DEFENSES[0])} <span class="count" id="df-count"></span></h2>',
                f'<p class="note">{_DEFENSES[1]}</p>',
                defenses_html(groups, "df") if groups else f"<p><i>{esc(_NO_DEFENSES)}</i></p>", "</section>"]
    n_table = 0
    for part in _layout(board.results, notes):
        out += [f"<section><h2>{esc(part.title)}</h2>", f'<p class="note">{part.note}</p>']
        out += part_figures(part)
        if not part.ours:
            out.append(f"<p><i>{esc(_EMPTY_COMPARABLE)}</i></p>")
        for train_set, table in part.tables:
            n_table += 1
            tid = f"t{n_table}"
            out.append(f'<h3>Training set: {esc(set_title(train_set))} '
                       f'<span class="count" id="{tid}-count"></span></h3>')
            out.append(f'<div class="wrap"><table class="board" id="{tid}"><thead><tr>' + _HEAD + "</tr></thead><tbody>")
            out += _rows(table, _html_row, skipped)
            out.append("</tbody></table></div>")
        if part.notes:
            out.append(_notes_html(part.notes, anchored))
        out.append("</section>")
    out.append(curves_html(board.charts))
    if skipped:
        out.append(f'<section><h2>{esc(_UNVERIFIED[0])}</h2><p class="note">{esc(_UNVERIFIED[1])}</p>'
                   '<ul class="note">' + "".join(f"<li>{esc(s)}</li>" for s in skipped) + "</ul></section>")
    out.append(f'<p class="note">Rendered by cifar10s {esc(__version__)}.</p>')
    out.append(f"<script>{JS}</script></body></html>")
    return "\n".join(out) + "\n"


def render_svg(results: Sequence[Any], *, title: str = "Clean test accuracy by model and training method",
               trusted_keys: TrustedKeys | None = None) -> str:
    """The accuracy chart (inline SVG) of the verified, well-formed records in ``results``."""
    return accuracy_chart(_records_board(results, (), trusted_keys).results, title)


def write_leaderboard(results_dir: str | Path, out_dir: str | Path, *,
                      trusted_keys: TrustedKeys | str | Path | None = None) -> tuple[Path, Path, int, list[str]]:
    """Render every result in ``results_dir`` to ``out_dir``/leaderboard.md and ``out_dir``/index.html
    (and the learning curves of the verified results to ``out_dir``/curves-*.png).

    ``trusted_keys``: the keys whose signatures count, or a folder of ``*.pub`` files (default: the
    project's trusted keys, :func:`.signing.default_trusted_keys`; never a folder inside the
    results). Each file is read and checked once. Returns both paths, the number of verified
    results shown and a ``"file: why"`` note per file not shown.
    """
    if not isinstance(trusted_keys, TrustedKeys):
        trusted_keys = load_trusted_keys(trusted_keys if trusted_keys is not None else default_trusted_keys())
    checked, skipped = load_results(results_dir, trusted_keys)
    board = _board(checked, skipped, trusted_keys)  # every signature checked once, for both pages
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md_path, page = out / "leaderboard.md", out / "index.html"
    atomic_write_bytes(md_path, _markdown(board).encode("utf-8"))
    atomic_write_bytes(page, _html(board).encode("utf-8"))
    write_curve_pngs(board.charts, out)  # the page's learning curves, as PNG files beside it
    return md_path, page, len(board.results), board.notes + board.chart_notes
