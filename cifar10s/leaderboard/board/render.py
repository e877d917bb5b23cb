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
from .chart import accuracy_chart, final_text, pct, set_title
from .curve_plot import curves_html, write_curve_pngs
from .curves import build_charts, with_chance_notes
from .results import Entry, MalformedResult, checked_entries, clean_text, http_url, load_results, parse_result
from .signing import TrustedKeys, load_trusted_keys

__all__ = [
    "COLUMNS",
    "MalformedResult",
    "load_results",
    "parse_result",
    "render_html",
    "render_markdown",
    "render_svg",
    "trusted_keys_beside",
    "write_leaderboard",
]

_SET_ORDER = ("cifar10s", "clean", "em", "ops")
#: the folder of trusted public keys, beside the results folder
TRUSTED_KEYS_FOLDER = "trusted-keys"


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
              "Preset <code>paper</code>, official CIFAR-10, release EM recipe, scored in the sandbox.", True, True),
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
               "leaderboard does not list; a file that carries its own key proves nothing), each with the reason.")


def _part_key(e: Entry) -> str:
    if e.sandbox is None:
        return "unsandboxed"
    return "comparable" if e.comparable else "other"


# ------------------------------------------------------------------------------------------------
# layout: sections, tables, paper rows, footnotes


#: the authors' code, linked on the paper's rows when the baselines' source record names none
_AUTHORS_CODE = "https://github.com/cychomatica/One-Pixel-Shotcut"
_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}(v\d+)?")


def _paper_links(source: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The paper (its ``url``, else its arXiv id) and the authors' code, as (label, URL) links."""
    def url(key: str) -> str | None:
        value = source.get(key)
        return http_url(value, key) if isinstance(value, str) else None

    arxiv = source.get("arxiv")
    paper = url("url") or url("arxiv") or (
        f"https://arxiv.org/abs/{arxiv}" if isinstance(arxiv, str) and _ARXIV_ID.fullmatch(arxiv) else None)
    code = url("code") or _AUTHORS_CODE
    return tuple((label, u) for label, u in (("paper", paper), ("code", code)) if u)


def _tables_text(names: Sequence[str]) -> str:
    """``["table2", "table4", "table5"]`` -> ``"Tables 2, 4 and 5"``."""
    nums = [n.replace("table", "") for n in names]
    if len(nums) == 1:
        return f"Table {nums[0]}"
    return f"Tables {', '.join(nums[:-1])} and {nums[-1]}"


def _paper_entries(reproduced: Sequence[Entry], comparable: bool) -> list[Entry]:
    """The paper's rows whose (model, method, training set) matches one of ``reproduced``.

    Only clean-test accuracies (Tables 2-5) are candidates: Table 1 measures training sets.
    Table 5's k-pixel rows (training set ``ops-kK``) only match a result trained on that many
    pixels. A setting printed in several tables with the same number (ResNet-18, standard, OPS:
    15.56 in Tables 2, 4 and 5) is one row naming every table it is printed in.
    """
    from ...paper import load_baselines, rows

    keys = {(e.model_key, e.method.lower(), e.paper_train_set) for e in reproduced
            if e.model_key and e.paper_train_set}
    if not keys:
        return []
    links = _paper_links(load_baselines().get("source") or {})
    printed: dict[tuple[str, str, str, float], list[str]] = {}  # paper order: first printed first
    for r in rows():
        key = (r.model, r.method, r.train_set)
        if r.test_acc is None or key not in keys:
            continue
        tables = printed.setdefault((*key, r.test_acc), [])
        if r.table not in tables:
            tables.append(r.table)
    return [
        Entry(
            source="reported", name=f"Wu et al., One-Pixel Shortcut, {_tables_text(tables)}", authors=(),
            links=links, model=model, model_key=model, method=method, defense="", variant=train_set,
            train_set=train_set, paper_train_set=train_set, preset="paper", seeds=None, final=acc / 100.0,
            final_std=None, best=None, diff_pp=None, harness="–", date="2023", notes=(), comparable=comparable,
            file="",
        )
        for (model, method, train_set, acc), tables in printed.items()
    ]


def _order(rows: Iterable[Entry]) -> list[Entry]:
    """Best final accuracy first; the paper's row after ours on a tie."""
    return sorted(rows, key=lambda e: (-(e.final if e.final is not None else -1.0), e.source != "reproduced",
                                       e.name, e.file))


@dataclass(frozen=True)
class _Part:
    """One part of the board: its tables (rows with rank and note numbers) and its notes."""

    key: str
    title: str
    note: str
    ranked: bool
    ours: list[Entry]  # the reproduced entries, for the figures
    tables: list[tuple[str, list[tuple[Entry, int | None, list[int]]]]]
    notes: list[tuple[int, str]]


def _layout(rows: Sequence[Entry]) -> list[_Part]:
    """The parts of the board, tables and note numbers; shared by the Markdown and the HTML.

    The comparable part is always there (saying so when it is empty) once there is any result;
    the others only when they have results. Only the sandboxed parts rank their rows. Identical
    notes share one number across the page.
    """
    if not rows:
        return []
    numbers: dict[str, int] = {}
    parts = []
    for spec in _PARTS:
        ours = [e for e in rows if _part_key(e) == spec.key]
        if not ours and not spec.always:
            continue
        by: dict[str, list[Entry]] = {}
        for e in ours + _paper_entries(ours, spec.key == "comparable"):
            by.setdefault(e.train_set, []).append(e)
        tables, used = [], []
        for train_set in [s for s in _SET_ORDER if s in by] + sorted((s for s in by if s not in _SET_ORDER),
                                                                     key=_natural):
            table, rank = [], 0
            for e in _order(by[train_set]):
                refs = [numbers.setdefault(n, len(numbers) + 1) for n in e.notes]
                used += refs
                rank += e.source == "reproduced"
                table.append((e, rank if spec.ranked and e.source == "reproduced" else None, refs))
            tables.append((train_set, table))
        notes = [(k, n) for n, k in numbers.items() if k in set(used)]
        parts.append(_Part(spec.key, spec.title, spec.note, spec.ranked, ours, tables, notes))
    return parts


def _natural(text: str) -> list[Any]:
    """Sort key that puts ``ops-k2`` before ``ops-k10``."""
    # isdecimal, as \d: "²" is a digit to isdigit() but not to int()
    return [int(p) if p.isdecimal() else p for p in re.split(r"(\d+)", text)]


_EMPTY_COMPARABLE = "No result yet was scored with the paper preset on the official CIFAR-10 data."
_INTRO = (
    "Clean CIFAR-10 test accuracy (%) of models trained on each training set; higher is better (on "
    "CIFAR-10-S, a high accuracy means the model learned despite the shortcut). <b>Final acc.</b>: the "
    "final model on the full test set, mean ± sample std over seeds; tables are ranked by it. "
    "<b>Best epoch, selected on test</b>: the best of the per-epoch evaluations, which are made on the "
    "test set, so it is an optimistic figure; it is never used for ranking. <b>Source</b>: "
    "<i>reproduced</i> = scored by this harness from a result file; <i>reported</i> = the number printed "
    "in Wu et al., <i>One-Pixel Shortcut</i> (ICLR 2023), as transcribed in the package's baselines table, "
    "shown where it matches a result's model, method and training set. <b>Δ vs paper</b>: final accuracy "
    "minus the paper's number for the same model, method and training set, in percentage points."
)


# ------------------------------------------------------------------------------------------------
# Markdown


_MD_HEADER = ("| # | Submission | Authors | Model | Method | Defense | Training data | Preset | Seeds | Source "
              "| Final acc. (%) | Δ vs paper (pp) | Best epoch, selected on test (%) | Harness | Date | Notes |")
_MD_ALIGN = "|---:|---|---|---|---|---|---|---|---:|---|---:|---:|---:|---|---|---|"


def _md(text: str) -> str:
    """Inline Markdown text that renders literally: no links, images, HTML, emphasis or cell breaks."""
    text = clean_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~$])", r"\\\1", text)


def _md_link(label: str, url: str) -> str:
    return f"[{_md(label)}]({url})"  # url passed http_url(): http(s), no spaces, parentheses encoded


def _md_row(e: Entry, rank: int | None, refs: list[int]) -> str:
    name = _md(e.name) + "".join(" " + _md_link(label, url) for label, url in e.links)
    cells = ["–" if rank is None else str(rank), name, _md(", ".join(e.authors)) or "–",
             _md(e.model), _md(e.method), _md(e.defense) or "–", _md(e.variant), _md(e.preset),
             "–" if e.seeds is None else str(e.seeds), e.source, final_text(e),
             "–" if e.diff_pp is None else f"{e.diff_pp:+.2f}", pct(e.best), _md(e.harness),
             _md(e.date) or "–", " ".join(f"†{k}" for k in refs) or "–"]
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


def _checked(results: Sequence[Any], skipped: Iterable[str],
             trusted_keys: TrustedKeys | None) -> tuple[list[Entry], list[str]]:
    rows, notes = checked_entries(results, skipped, trusted_keys)
    if trusted_keys is not None:
        notes += [f"trusted keys: {clean_text(p)}" for p in trusted_keys.problems]
    return rows, notes


@dataclass(frozen=True)
class _Board:
    """What both pages show, checked once: the verified rows (with their chance notes), the notes
    on everything left out, and the learning curves of the verified rows with their own notes."""

    rows: list[Entry]
    notes: list[str]
    charts: list[Any]
    chart_notes: list[str]


def _board(results: Sequence[Any], skipped: Iterable[str], trusted_keys: TrustedKeys | None) -> _Board:
    rows, notes = _checked(results, skipped, trusted_keys)
    try:  # learning curves of the verified rows only; a failure costs the curves, never the board
        charts, chart_notes = build_charts(results, verified=rows), []
    except Exception as exc:  # noqa: BLE001 - one result never stops the board
        charts, chart_notes = [], [f"learning curves: could not be drawn ({type(exc).__name__})"]
    return _Board(with_chance_notes(rows, results), notes, charts, chart_notes)


def render_markdown(results: Sequence[Any], *, skipped: Iterable[str] = (),
                    trusted_keys: TrustedKeys | None = None) -> str:
    """A Markdown leaderboard: comparable and non-comparable parts, one table per training set.

    Only records signed by one of ``trusted_keys`` get a row; the others are listed with the
    reason under "Unverified files" (with no keys, that is every record).
    """
    return _markdown(_board(results, skipped, trusted_keys))


def _markdown(board: _Board) -> str:
    rows, skipped = board.rows, board.notes
    lines = ["# CIFAR-10-S leaderboard", "", re.sub(r"</?[bi]>", "", _INTRO), ""]
    if not rows:
        lines += ["_No results yet._", ""]
    for part in _layout(rows):
        lines += [f"## {part.title}", "", re.sub(r"</?code>", "`", part.note), ""]
        if not part.tables:
            lines += [f"_{_EMPTY_COMPARABLE}_", ""]
        for train_set, table in part.tables:
            lines += [f"### Training set: {_md(set_title(train_set))}", "", _MD_HEADER, _MD_ALIGN]
            lines += _rows(table, _md_row, skipped)
            lines.append("")
        if part.notes:
            lines += ["Notes:", ""] + [f"- †{k}: {_md(n)}" for k, n in part.notes] + [""]
    if skipped:
        lines += [f"## {_UNVERIFIED[0]}", "", _UNVERIFIED[1], ""] + [f"- {_md(s)}" for s in skipped] + [""]
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


def _header(label: str) -> str:
    """Column header text; after a ``|`` comes a smaller second line."""
    main, _, small = label.partition("|")
    return html.escape(main) + (f"<small>{html.escape(small)}</small>" if small else "")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _num_cell(value: float | None, text: str) -> str:
    """A right-aligned cell; ``data-v`` is what the script sorts by (empty: sorted last)."""
    return f'<td class="num" data-v="{"" if value is None else repr(float(value))}">{html.escape(text)}</td>'


def _html_row(e: Entry, rank: int | None, refs: list[int]) -> str:
    esc = html.escape
    name = esc(e.name)
    links = " · ".join(f'<a href="{esc(url, quote=True)}" rel="nofollow noopener noreferrer">{esc(label)}</a>'
                       for label, url in e.links)
    sub = "".join(f'<div class="sub">{x}</div>' for x in (esc(", ".join(e.authors)), links) if x)
    method = esc(e.method) + (f'<div class="sub">+ {esc(e.defense)}</div>' if e.defense else "")
    notes = " ".join(f'<a href="#fn-{k}">†{k}</a>' for k in refs) or "–"
    cells = [
        _num_cell(rank, "–" if rank is None else str(rank)),
        f'<td class="name" data-v="{esc(e.name.lower(), quote=True)}">{name}{sub}</td>',
        f"<td>{esc(e.model)}</td>", f"<td>{method}</td>", f'<td class="nw">{esc(e.variant)}</td>',
        f'<td class="nw">{esc(e.preset)}</td>',
        _num_cell(e.seeds, "–" if e.seeds is None else str(e.seeds)), f"<td>{e.source}</td>",
        _num_cell(None if e.final is None else 100 * e.final, final_text(e)),
        _num_cell(e.diff_pp, "–" if e.diff_pp is None else f"{e.diff_pp:+.2f}"),
        _num_cell(None if e.best is None else 100 * e.best, pct(e.best)),
        f'<td class="nw">{esc(e.harness)}</td>', f'<td class="nw">{esc(e.date) or "–"}</td>',
        f"<td>{notes}</td>",
    ]
    return f'<tr class="{e.source}">' + "".join(cells) + "</tr>"


_HEAD = "".join(f'<th data-key="{k}" data-type="{t}"' + (' aria-sort="descending"' if k == "final" else "")
                + f'><button type="button">{_header(label)}</button></th>' for k, label, t in COLUMNS)


def part_figures(part: _Part) -> list[str]:
    """The figures (inline SVG) at the top of one board part: the accuracy chart of a ranked part."""
    if not part.ranked or not part.ours:
        return []
    return [accuracy_chart(part.ours, f"Clean test accuracy: {part.title.lower()}")]


def render_html(results: Sequence[Any], *, skipped: Iterable[str] = (),
                trusted_keys: TrustedKeys | None = None) -> str:
    """A self-contained static page: filter box, per-part chart, sortable tables, visible notes.

    Only records signed by one of ``trusted_keys`` get a row (see :func:`render_markdown`).
    """
    return _html(_board(results, skipped, trusted_keys))


def _html(board: _Board) -> str:
    from ... import __version__

    esc = html.escape
    rows, skipped = board.rows, board.notes + board.chart_notes
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
    if not rows:
        out.append("<p><i>No results yet.</i></p>")
    n_table = 0
    for part in _layout(rows):
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
            out.append('<ol class="notes">' + "".join(f'<li id="fn-{k}" value="{k}">†{k} {esc(n)}</li>'
                                                      for k, n in part.notes) + "</ol>")
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
    rows, _ = checked_entries(results, trusted=trusted_keys)
    return accuracy_chart(rows, title)


def trusted_keys_beside(results_dir: str | Path) -> Path:
    """Where the board looks for trusted keys by default: ``trusted-keys/`` beside the results folder."""
    return Path(results_dir).absolute().parent / TRUSTED_KEYS_FOLDER


def write_leaderboard(results_dir: str | Path, out_dir: str | Path, *,
                      trusted_keys: TrustedKeys | str | Path | None = None) -> tuple[Path, Path, int, list[str]]:
    """Render every result in ``results_dir`` to ``out_dir``/leaderboard.md and ``out_dir``/index.html
    (and the learning curves of the verified results to ``out_dir``/curves-*.png).

    ``trusted_keys``: the keys whose signatures count, or a folder of ``*.pub`` files (default:
    :func:`trusted_keys_beside` the results, when it exists; else no key is trusted). Returns both
    paths, the number of verified results shown and a ``"file: why"`` note per file not shown.
    """
    if not isinstance(trusted_keys, TrustedKeys):
        folder = trusted_keys if trusted_keys is not None else trusted_keys_beside(results_dir)
        trusted_keys = load_trusted_keys(folder if trusted_keys is not None or Path(folder).is_dir() else None)
    results, skipped = load_results(results_dir)
    board = _board(results, skipped, trusted_keys)  # every signature checked once, for both pages
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "leaderboard.md", out / "index.html"
    atomic_write_bytes(md, _markdown(board).encode("utf-8"))
    atomic_write_bytes(page, _html(board).encode("utf-8"))
    write_curve_pngs(board.charts, out)  # the page's learning curves, as PNG files beside it
    return md, page, len(board.rows), board.notes + board.chart_notes
