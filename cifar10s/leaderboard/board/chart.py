"""The board's figures as inline SVG, and the labels they share with its tables.

:func:`accuracy_chart` draws one bar per (model, method, defense) and training set with the
paper's number beside bars of the same model. Each figure takes the board's checked results
(:class:`.results.CheckedResult`), never raw records, and returns a self-contained ``<svg>``
element; :func:`table_order` is the order of the board's rows and figures. The HTML page places
one per board part (:func:`.render.part_figures`), so another figure is one more function here
and one more line there.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from .results import CheckedResult, Entry

__all__ = ["CHART_SETS", "SET_TITLES", "accuracy_chart", "final_text", "method_rank", "pct", "set_title",
           "table_order"]

SET_TITLES = {"cifar10s": "CIFAR-10-S (EM + OPS)", "clean": "clean CIFAR-10", "em": "EM noise only",
              "ops": "OPS only (1 pixel)"}
CHART_SETS = ("clean", "em", "ops", "cifar10s")
COLOURS = {"clean": "#4C78A8", "em": "#54A24B", "ops": "#B279A2", "cifar10s": "#F58518"}


def pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.{digits}f}"


def final_text(e: Entry) -> str:
    if e.final is None:
        return "–"
    if (e.seeds or 0) > 1 and e.final_std is not None:
        return f"{pct(e.final)} ± {pct(e.final_std)}"
    return pct(e.final)


def set_title(train_set: str) -> str:
    k = re.fullmatch(r"ops-k(\d+)", train_set)
    return f"OPS only ({k.group(1)} pixels)" if k else SET_TITLES.get(train_set, train_set)


@cache
def _method_ranks() -> dict[str, int]:
    from ...paper import rows

    ranks: dict[str, int] = {}  # the paper's order of training methods: standard training first
    for r in rows():
        ranks.setdefault(r.method, len(ranks))
    return ranks


def method_rank(method: str) -> int:
    """Where a training method comes in the paper's tables (standard training first; others last)."""
    ranks = _method_ranks()
    return ranks.get(method.lower(), len(ranks))


def table_order(e: Entry) -> tuple[Any, ...]:
    """The order of the board's rows and figures: by model, then the paper's order of methods,
    no defense before a defense, then preset and submission name."""
    return (e.model, method_rank(e.method), e.method, e.defense, e.preset, e.name)


def _short(text: str, n: int = 18) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def accuracy_chart(results: Sequence[CheckedResult], title: str) -> str:
    """Grouped bars: one group per (model, method, defense), one bar per training set (best entry).

    Each bar's value is written under it, below the axis, where neither the paper's diamond nor
    a bar or error line can cover it."""
    from ...paper import lookup

    best: dict[tuple[str, str, str], dict[str, Entry]] = {}
    order: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for c in results:
        e = c.entry
        if e.paper_train_set not in CHART_SETS or e.final is None:
            continue
        group = best.setdefault((e.model, e.method, e.defense), {})
        order.setdefault((e.model, e.method, e.defense), table_order(e)[:4])
        cur = group.get(e.paper_train_set)
        if cur is None or e.final > (cur.final or 0.0):
            group[e.paper_train_set] = e
    keys = sorted(best, key=lambda k: order[k])

    e_ = html.escape
    bar_w, gap, pad = 24, 3, 16
    group_w = len(CHART_SETS) * (bar_w + gap) - gap + 2 * pad
    left, top, height = 52, 40, 220
    plot_w = max(4, len(keys)) * group_w
    n_lines = 3 if any(k[2] for k in keys) else 2
    value_h = 14  # the row of bar values under the axis
    width, total_h = left + plot_w + 190, top + height + value_h + 26 + 14 * n_lines
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
        for j, ts in enumerate(CHART_SETS):
            x = x0 + j * (bar_w + gap)
            cx = x + bar_w / 2
            e = best[(model, method, defense)].get(ts)
            if e is not None and e.final is not None:
                h = height * e.final
                y = top + height - h
                std = e.final_std or 0.0
                parts.append(f'<rect class="bar" x="{x}" y="{y:.1f}" width="{bar_w}" height="{h:.1f}" '
                             f'fill="{COLOURS[ts]}"><title>{e_(e.name)}: {e_(model)}, {e_(method)}, '
                             f'{e_(set_title(ts))}: {final_text(e)}%</title></rect>')
                if std > 0 and (e.seeds or 0) > 1:
                    y1 = top + height - height * min(1.0, e.final + std)
                    y2 = top + height - height * max(0.0, e.final - std)
                    parts.append(f'<line x1="{cx}" x2="{cx}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="#222"/>')
                parts.append(f'<text class="value" x="{cx}" y="{top + height + 11}" text-anchor="middle" '
                             f'font-size="9" fill="{COLOURS[ts]}">{100 * e.final:.1f}</text>')
            # the paper's number only beside the same model, and only for the plain method
            paper = [] if (not model_key or defense) else [r for r in lookup(model_key, method, ts)
                                                            if r.test_acc is not None]
            if paper:
                cy = top + height - height * paper[0].test_acc / 100
                parts.append(f'<path class="paper" d="M{cx} {cy - 5:.1f} L{cx + 5} {cy:.1f} L{cx} {cy + 5:.1f} '
                             f'L{cx - 5} {cy:.1f} Z" fill="#000" stroke="#fff"><title>paper ({e_(paper[0].model)}, '
                             f'{e_(method)}, {e_(set_title(ts))}): {paper[0].test_acc:.2f}%</title></path>')
        cx = x0 + (group_w - 2 * pad) / 2
        for k, line in enumerate([model, method] + ([f"+ {defense}"] if defense else [])):
            parts.append(f'<text x="{cx:.1f}" y="{top + height + value_h + 16 + 14 * k}" text-anchor="middle">'
                         f'<title>{e_(line)}</title>{e_(_short(line))}</text>')
        parts.append("</g>")
    lx = left + plot_w + 14
    for k, ts in enumerate(CHART_SETS):
        parts.append(f'<rect x="{lx}" y="{top + k * 20}" width="12" height="12" fill="{COLOURS[ts]}"/>')
        parts.append(f'<text x="{lx + 18}" y="{top + k * 20 + 10}">{e_(set_title(ts))}</text>')
    py = top + len(CHART_SETS) * 20 + 6
    parts.append(f'<path d="M{lx + 6} {py - 5} L{lx + 11} {py} L{lx + 6} {py + 5} L{lx + 1} {py} Z" fill="#000"/>')
    parts.append(f'<text x="{lx + 18}" y="{py + 4}">paper, same model</text>')
    parts.append(f'<text x="{left}" y="{total_h - 6}" fill="#555">best entry per bar; bar = final accuracy '
                 '(mean over seeds, its value under the bar), line = ± std</text>')
    parts.append("</svg>")
    return "\n".join(parts)
