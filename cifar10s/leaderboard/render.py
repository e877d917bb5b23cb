"""Render leaderboard results as Markdown and as a self-contained static HTML page.

Records go through :func:`cifar10s.leaderboard.results.checked_entries` first, so whatever the
renderers are given, only checked fields reach the output and a malformed record is listed
under "Skipped files" instead of breaking the board.

The board has two parts. *Comparable* results used the ``paper`` preset on the official
CIFAR-10 data and the release's EM recipe; everything else is *not comparable* with the paper.
Each part has its own chart and one table per training set, ranked by final accuracy. The
paper's numbers (``baselines.json``) appear as *reported* rows in the tables that hold a result
with the same (model, method, training set), and as diamonds in the chart only beside bars of
that same model. Results scored by this harness are *reproduced*. The best-epoch accuracy is
selected on the test set, so it is labelled that way and never used for ranking.

The HTML page loads nothing: inline CSS, an inline SVG chart and a short inline script for
sorting and filtering, both pinned by hashes in a Content-Security-Policy, so no other script
or resource could run even if some text slipped past escaping. The Markdown escapes every
field: no links other than http(s) ones built here, no images, no raw HTML, no cell breaks.

It is one module (about 550 lines) because the Markdown board and the HTML page render the
same layout (parts, tables, paper rows, footnotes); reading untrusted result files lives in
`results.py`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import atomic_write_bytes
from .curve_plot import curves_html, write_curve_pngs
from .curves import build_charts, with_chance_notes
from .results import Entry, MalformedResult, checked_entries, clean_text, http_url, load_results, parse_result

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
_SET_TITLES = {"cifar10s": "CIFAR-10-S (EM + OPS)", "clean": "clean CIFAR-10", "em": "EM noise only",
               "ops": "OPS only (1 pixel)"}
_CHART_SETS = ("clean", "em", "ops", "cifar10s")
_COLOURS = {"clean": "#4C78A8", "em": "#54A24B", "ops": "#B279A2", "cifar10s": "#F58518"}
_SECTIONS = (
    (True, "Comparable with the paper",
     "Preset <code>paper</code>, official CIFAR-10, release EM recipe."),
    (False, "Not comparable with the paper",
     ("Other presets (shorter training, subsets) or other training data. Useful for checking the "
      "harness and the direction of effects, not for comparing numbers with the paper.")),
)


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
    from .baselines import load_baselines, rows

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

    comparable: bool
    title: str
    note: str
    ours: list[Entry]  # the reproduced entries, for the chart
    tables: list[tuple[str, list[tuple[Entry, int | None, list[int]]]]]
    notes: list[tuple[int, str]]


def _layout(rows: Sequence[Entry]) -> list[_Part]:
    """The parts of the board, tables and note numbers; shared by the Markdown and the HTML.

    The comparable part is always there (saying so when it is empty) once there is any result;
    the other only when it has results. Identical notes share one number across the page.
    """
    if not rows:
        return []
    numbers: dict[str, int] = {}
    parts = []
    for comparable, title, note in _SECTIONS:
        ours = [e for e in rows if e.comparable is comparable]
        if not ours and not comparable:
            continue
        by: dict[str, list[Entry]] = {}
        for e in ours + _paper_entries(ours, comparable):
            by.setdefault(e.train_set, []).append(e)
        tables, used = [], []
        for train_set in [s for s in _SET_ORDER if s in by] + sorted((s for s in by if s not in _SET_ORDER),
                                                                     key=_natural):
            table, rank = [], 0
            for e in _order(by[train_set]):
                refs = [numbers.setdefault(n, len(numbers) + 1) for n in e.notes]
                used += refs
                rank += e.source == "reproduced"
                table.append((e, rank if e.source == "reproduced" else None, refs))
            tables.append((train_set, table))
        notes = [(k, n) for n, k in numbers.items() if k in set(used)]
        parts.append(_Part(comparable, title, note, ours, tables, notes))
    return parts


def _pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.{digits}f}"


def _final_text(e: Entry) -> str:
    if e.final is None:
        return "–"
    if (e.seeds or 0) > 1 and e.final_std is not None:
        return f"{_pct(e.final)} ± {_pct(e.final_std)}"
    return _pct(e.final)


def _natural(text: str) -> list[Any]:
    """Sort key that puts ``ops-k2`` before ``ops-k10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _set_title(train_set: str) -> str:
    k = re.fullmatch(r"ops-k(\d+)", train_set)
    return f"OPS only ({k.group(1)} pixels)" if k else _SET_TITLES.get(train_set, train_set)


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


def render_markdown(results: Sequence[Any], *, skipped: Iterable[str] = ()) -> str:
    """A Markdown leaderboard: comparable and non-comparable parts, one table per training set."""
    rows, skipped = checked_entries(results, skipped)
    rows = with_chance_notes(rows, results)
    lines = ["# CIFAR-10-S leaderboard", "", re.sub(r"</?[bi]>", "", _INTRO), ""]
    if not rows:
        lines += ["_No results yet._", ""]
    for part in _layout(rows):
        lines += [f"## {part.title}", "", re.sub(r"</?code>", "`", part.note), ""]
        if not part.tables:
            lines += [f"_{_EMPTY_COMPARABLE}_", ""]
        for train_set, table in part.tables:
            lines += [f"### Training set: {_md(_set_title(train_set))}", "", _MD_HEADER, _MD_ALIGN]
            for e, rank, refs in table:
                name = _md(e.name) + "".join(" " + _md_link(label, url) for label, url in e.links)
                cells = ["–" if rank is None else str(rank), name, _md(", ".join(e.authors)) or "–",
                         _md(e.model), _md(e.method), _md(e.defense) or "–", _md(e.variant), _md(e.preset),
                         "–" if e.seeds is None else str(e.seeds), e.source, _final_text(e),
                         "–" if e.diff_pp is None else f"{e.diff_pp:+.2f}", _pct(e.best), _md(e.harness),
                         _md(e.date) or "–", " ".join(f"†{k}" for k in refs) or "–"]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        if part.notes:
            lines += ["Notes:", ""] + [f"- †{k}: {_md(n)}" for k, n in part.notes] + [""]
    if skipped:
        lines += ["## Skipped files", ""] + [f"- {_md(s)}" for s in skipped] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# SVG chart


def _short(text: str, n: int = 18) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _chart(entries: Sequence[Entry], title: str) -> str:
    """Grouped bars: one group per (model, method, defense), one bar per training set (best entry)."""
    from cifar10s.training.presets import METHODS

    from .baselines import lookup

    best: dict[tuple[str, str, str], dict[str, Entry]] = {}
    for e in entries:
        if e.source != "reproduced" or e.paper_train_set not in _CHART_SETS or e.final is None:
            continue
        group = best.setdefault((e.model, e.method, e.defense), {})
        cur = group.get(e.paper_train_set)
        if cur is None or e.final > (cur.final or 0.0):
            group[e.paper_train_set] = e
    method_rank = {m: i for i, m in enumerate(METHODS)}
    keys = sorted(best, key=lambda k: (k[0], method_rank.get(k[1], len(method_rank)), k[1], k[2]))

    e_ = html.escape
    bar_w, gap, pad = 24, 3, 16
    group_w = len(_CHART_SETS) * (bar_w + gap) - gap + 2 * pad
    left, top, height = 52, 40, 220
    plot_w = max(4, len(keys)) * group_w
    n_lines = 3 if any(k[2] for k in keys) else 2
    width, total_h = left + plot_w + 190, top + height + 26 + 14 * n_lines
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
         f'viewBox="0 0 {width} {total_h}" role="img" aria-label="{e_(title, quote=True)}" '
         'font-family="sans-serif" font-size="12">'),
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{e_(title)}</text>',
    ]
    for pct in range(0, 101, 20):
        y = top + height - height * pct / 100
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{pct}%</text>')
    if not keys:
        parts.append(f'<text x="{left + 10}" y="{top + height / 2:.1f}" fill="#777">no results on the clean, EM, '
                     'OPS or CIFAR-10-S training sets</text>')
    for i, (model, method, defense) in enumerate(keys):
        x0 = left + i * group_w + pad
        model_key = next(iter(best[(model, method, defense)].values())).model_key
        parts.append(f'<g class="group" data-model="{e_(model, quote=True)}">')
        for j, ts in enumerate(_CHART_SETS):
            x = x0 + j * (bar_w + gap)
            cx = x + bar_w / 2
            e = best[(model, method, defense)].get(ts)
            label_y = top + height
            if e is not None and e.final is not None:
                h = height * e.final
                y = top + height - h
                std = e.final_std or 0.0
                parts.append(f'<rect class="bar" x="{x}" y="{y:.1f}" width="{bar_w}" height="{h:.1f}" '
                             f'fill="{_COLOURS[ts]}"><title>{e_(e.name)}: {e_(model)}, {e_(method)}, '
                             f'{e_(_set_title(ts))}: {_final_text(e)}%</title></rect>')
                label_y = y
                if std > 0 and (e.seeds or 0) > 1:
                    y1 = top + height - height * min(1.0, e.final + std)
                    y2 = top + height - height * max(0.0, e.final - std)
                    parts.append(f'<line x1="{cx}" x2="{cx}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="#222"/>')
                    label_y = min(y, y1)
                parts.append(f'<text x="{cx}" y="{label_y - 4:.1f}" text-anchor="middle" font-size="9">'
                             f'{100 * e.final:.1f}</text>')
            # the paper's number only beside the same model, and only for the plain method
            paper = [] if (not model_key or defense) else [r for r in lookup(model_key, method, ts)
                                                            if r.test_acc is not None]
            if paper:
                cy = top + height - height * paper[0].test_acc / 100
                parts.append(f'<path class="paper" d="M{cx} {cy - 5:.1f} L{cx + 5} {cy:.1f} L{cx} {cy + 5:.1f} '
                             f'L{cx - 5} {cy:.1f} Z" fill="#000" stroke="#fff"><title>paper ({e_(paper[0].model)}, '
                             f'{e_(method)}, {e_(_set_title(ts))}): {paper[0].test_acc:.2f}%</title></path>')
        cx = x0 + (group_w - 2 * pad) / 2
        for k, line in enumerate([model, method] + ([f"+ {defense}"] if defense else [])):
            parts.append(f'<text x="{cx:.1f}" y="{top + height + 16 + 14 * k}" text-anchor="middle">'
                         f'<title>{e_(line)}</title>{e_(_short(line))}</text>')
        parts.append("</g>")
    lx = left + plot_w + 14
    for k, ts in enumerate(_CHART_SETS):
        parts.append(f'<rect x="{lx}" y="{top + k * 20}" width="12" height="12" fill="{_COLOURS[ts]}"/>')
        parts.append(f'<text x="{lx + 18}" y="{top + k * 20 + 10}">{e_(_set_title(ts))}</text>')
    py = top + len(_CHART_SETS) * 20 + 6
    parts.append(f'<path d="M{lx + 6} {py - 5} L{lx + 11} {py} L{lx + 6} {py + 5} L{lx + 1} {py} Z" fill="#000"/>')
    parts.append(f'<text x="{lx + 18}" y="{py + 4}">paper, same model</text>')
    parts.append(f'<text x="{left}" y="{total_h - 6}" fill="#555">best entry per bar; bar = final accuracy '
                 '(mean over seeds), line = ± std</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_svg(results: Sequence[Any], *, title: str = "Clean test accuracy by model and training method") -> str:
    """The chart (inline SVG) of every valid record in ``results``; malformed ones are left out."""
    rows, _ = checked_entries(results)
    return _chart(rows, title)


# ------------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem auto;max-width:1400px;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:2px solid #ddd}h3{margin:1.2rem 0 .3rem}
table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}th button{all:unset;cursor:pointer;font-weight:bold}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.nw{white-space:nowrap}
td.name{min-width:12rem}.wrap{overflow-x:auto}th small{font-weight:normal;display:block}
tr.reported{background:#f6f6fb;font-style:italic}.sub{color:#555;font-size:.8rem}
.note{color:#444;font-size:.85rem}ol.notes{font-size:.82rem;color:#333;list-style:none;padding-left:.5rem}
.filter{margin:.5rem 0 1rem}.filter input{font-size:1rem;padding:2px 6px;width:24rem;max-width:90%}
.count{color:#666;font-size:.8rem}svg{max-width:100%;height:auto}
"""

_JS = """
(function () {
  "use strict";
  function value(cell, type) {
    var v = cell.getAttribute("data-v");
    if (type === "num") { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return (v === null ? cell.textContent : v).trim().toLowerCase();
  }
  function sort(th) {
    var table = th.closest("table"), body = table.tBodies[0], type = th.getAttribute("data-type");
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var was = th.getAttribute("aria-sort");
    var dir = was === "descending" ? "ascending" : was === "ascending" ? "descending"
      : (type === "num" ? "descending" : "ascending");
    var rows = Array.prototype.map.call(body.rows, function (r, i) { return [value(r.cells[col], type), i, r]; });
    rows.sort(function (a, b) {
      if (a[0] === null || b[0] === null) { return (a[0] === null) - (b[0] === null) || a[1] - b[1]; }
      var c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
      return (dir === "ascending" ? c : -c) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }
  function filter(text) {
    var words = text.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll("table.board").forEach(function (t) {
      var shown = 0, rows = t.tBodies[0].rows;
      Array.prototype.forEach.call(rows, function (r) {
        var s = r.textContent.toLowerCase();
        r.hidden = !words.every(function (w) { return s.indexOf(w) >= 0; });
        shown += r.hidden ? 0 : 1;
      });
      var c = document.getElementById(t.id + "-count");
      if (c) { c.textContent = shown === rows.length ? "" : shown + " of " + rows.length + " rows shown"; }
    });
  }
  document.querySelectorAll("table.board th[data-key] button").forEach(function (b) {
    b.addEventListener("click", function () { sort(b.parentNode); });
  });
  var input = document.getElementById("filter");
  input.addEventListener("input", function () { filter(input.value); });
  // #sort=KEY[:asc|:desc]&filter=TEXT: a link that opens the page sorted and filtered
  function fromHash() {
    var p = new URLSearchParams(location.hash.slice(1)), s = p.get("sort"), f = p.get("filter");
    if (f !== null) { input.value = f; filter(f); }
    if (s) {
      var parts = s.split(":"), want = {asc: "ascending", desc: "descending"}[parts[1]];
      document.querySelectorAll("table.board th[data-key]").forEach(function (th) {
        if (th.getAttribute("data-key") !== parts[0]) { return; }
        var b = th.querySelector("button");
        for (var i = 0; i < 3; i++) {
          b.click();
          if (!want || th.getAttribute("aria-sort") === want) { break; }
        }
      });
    }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""

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
        _num_cell(None if e.final is None else 100 * e.final, _final_text(e)),
        _num_cell(e.diff_pp, "–" if e.diff_pp is None else f"{e.diff_pp:+.2f}"),
        _num_cell(None if e.best is None else 100 * e.best, _pct(e.best)),
        f'<td class="nw">{esc(e.harness)}</td>', f'<td class="nw">{esc(e.date) or "–"}</td>',
        f"<td>{notes}</td>",
    ]
    return f'<tr class="{e.source}">' + "".join(cells) + "</tr>"


_HEAD = "".join(f'<th data-key="{k}" data-type="{t}"' + (' aria-sort="descending"' if k == "final" else "")
                + f'><button type="button">{_header(label)}</button></th>' for k, label, t in COLUMNS)


def render_html(results: Sequence[Any], *, skipped: Iterable[str] = ()) -> str:
    """A self-contained static page: filter box, per-part chart, sortable tables, visible notes."""
    from .. import __version__

    esc = html.escape
    rows, skipped = checked_entries(results, skipped)
    rows = with_chance_notes(rows, results)
    csp = (f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
           "base-uri 'none'; form-action 'none'")
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        "<title>CIFAR-10-S leaderboard</title>", f"<style>{_CSS}</style></head><body>",
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
        if part.ours:
            out.append(_chart(part.ours, f"Clean test accuracy: {part.title.lower()}"))
        else:
            out.append(f"<p><i>{esc(_EMPTY_COMPARABLE)}</i></p>")
        for train_set, table in part.tables:
            n_table += 1
            tid = f"t{n_table}"
            out.append(f'<h3>Training set: {esc(_set_title(train_set))} '
                       f'<span class="count" id="{tid}-count"></span></h3>')
            out.append(f'<div class="wrap"><table class="board" id="{tid}"><thead><tr>' + _HEAD + "</tr></thead><tbody>")
            out += [_html_row(e, rank, refs) for e, rank, refs in table]
            out.append("</tbody></table></div>")
        if part.notes:
            out.append('<ol class="notes">' + "".join(f'<li id="fn-{k}" value="{k}">†{k} {esc(n)}</li>'
                                                      for k, n in part.notes) + "</ol>")
        out.append("</section>")
    out.append(curves_html(build_charts(results)))
    if skipped:
        out.append('<section><h2>Skipped files</h2><ul class="note">'
                   + "".join(f"<li>{esc(s)}</li>" for s in skipped) + "</ul></section>")
    out.append(f'<p class="note">Rendered by cifar10s {esc(__version__)}.</p>')
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"


def write_leaderboard(results_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path, int, list[str]]:
    """Render every result in ``results_dir`` to ``out_dir``/leaderboard.md and ``out_dir``/index.html
    (and its learning curves to ``out_dir``/curves-*.png).

    Returns both paths, the number of results rendered and the skipped files with their reasons.
    """
    results, skipped = load_results(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "leaderboard.md", out / "index.html"
    atomic_write_bytes(md, render_markdown(results, skipped=skipped).encode("utf-8"))
    atomic_write_bytes(page, render_html(results, skipped=skipped).encode("utf-8"))
    write_curve_pngs(build_charts(results), out)  # the page's learning curves, as PNG files beside it
    return md, page, len(results), skipped
