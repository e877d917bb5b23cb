"""Draw :mod:`.curves` charts twice from one drawing: inline SVG for the page, PNG beside it.

A chart is laid out once as a short list of shapes (lines, polylines, text) in pixel
coordinates; :func:`chart_svg` and :func:`chart_png` only translate that list, so the page and
the PNG files cannot disagree. The PNG uses Pillow (a dependency already); nothing here imports
torch or a plotting library. Text comes from result files, so the SVG escapes every string and
the PNG draws ASCII only.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...store import atomic_write_bytes
from .chart import COLOURS
from .curves import Chart, Series

__all__ = ["chart_png", "chart_svg", "curves_html", "png_name", "write_curve_pngs"]

_SPARE = ("#E45756", "#72B7B2", "#9D755D", "#EECA3B", "#FF9DA6", "#777777")
_W, _PANEL_H, _TOP, _BOTTOM, _LEFT, _GAP = 760, 230, 34, 44, 46, 40
_LEGEND_ROW = 18


@dataclass(frozen=True)
class _Shape:
    kind: str  # "line" | "poly" | "text"
    points: tuple[tuple[float, float], ...] = ()
    colour: str = "#000000"
    width: float = 1.0
    dash: tuple[int, int] | None = None  # (on, off) pixels; None: solid
    text: str = ""
    size: int = 11
    anchor: str = "start"  # "start" | "middle" | "end"


def _colours(series: Sequence[Series]) -> dict[str, str]:
    out: dict[str, str] = {}
    spare = iter(_SPARE)
    for s in series:
        c = COLOURS.get(s.train_set)
        out[s.label] = c if c is not None and c not in out.values() else next(spare, "#777777")
    return out


#: the line style of the i-th seed of a series (the same in every series, and named in the legend)
_SEED_DASH: tuple[tuple[int, int] | None, ...] = (None, (7, 4), (2, 3), (10, 3))


def _seed_dash(i: int) -> tuple[int, int] | None:
    return _SEED_DASH[i % len(_SEED_DASH)]


def _label(s: Series) -> str:
    text = f"{s.label} ({s.n_seeds} seed{'s' if s.n_seeds != 1 else ''})"
    if s.chance_seeds:
        text += f", seed {', '.join(map(str, s.chance_seeds))} at chance"
    return text


def _seed_order(series: Sequence[Series]) -> list[int]:
    """Every seed number drawn in the chart, in order: the i-th gets the i-th line style."""
    return sorted({line.seed for s in series for line in s.lines})


def _layout(chart: Chart) -> tuple[int, int, list[_Shape]]:
    """The chart as shapes: title, legend (a colour per training set, a line style per seed), one
    panel per metric side by side."""
    all_series = [s for _, ser in chart.panels for s in ser]
    by_label: dict[str, Series] = {}
    for s in all_series:  # the first panel's series names the training set in the legend
        by_label.setdefault(s.label, s)
    labels = list(by_label)
    colour = _colours(list(by_label.values()))
    seeds = _seed_order(all_series)
    style = {seed: _seed_dash(i) for i, seed in enumerate(seeds)}
    per_row = 3
    legend_rows = -(-len(labels) // per_row) + (len(seeds) > 1)
    height = _TOP + legend_rows * _LEGEND_ROW + _PANEL_H + _BOTTOM
    shapes = [_Shape("text", ((8, 20),), text=chart.title, size=13)]
    for i, label in enumerate(labels):
        x, y = 12 + (i % per_row) * 250, _TOP + (i // per_row) * _LEGEND_ROW + 8
        shapes.append(_Shape("line", ((x, y - 4), (x + 22, y - 4)), colour[label], 3))
        shapes.append(_Shape("text", ((x + 28, y),), text=_label(by_label[label]), size=11))
    if len(seeds) > 1:  # which line is which seed: the same style in every colour
        y = _TOP + (legend_rows - 1) * _LEGEND_ROW + 8
        for i, seed in enumerate(seeds[:6]):
            x = 12 + i * 120
            shapes.append(_Shape("line", ((x, y - 4), (x + 30, y - 4)), "#444444", 2, dash=style[seed]))
            shapes.append(_Shape("text", ((x + 36, y),), text=f"seed {seed}", size=11))
    top = _TOP + legend_rows * _LEGEND_ROW + 12
    n = len(chart.panels)
    pw = (_W - _LEFT - (n - 1) * _GAP - 12) / n
    max_epoch = max(max(s.epochs) for s in all_series)
    for p, (title, series) in enumerate(chart.panels):
        x0 = _LEFT + p * (pw + _GAP)
        shapes += _panel(title, series, colour, style, x0, top, pw, _PANEL_H - 20, max_epoch)
    return _W, height, shapes


def _ticks(max_epoch: int) -> list[int]:
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000) if max_epoch / s <= 8)
    return [1] + [t for t in range(step, max_epoch + 1, step) if t > 1]


def _panel(title: str, series: Sequence[Series], colour: dict[str, str],
           style: dict[int, tuple[int, int] | None], x0: float, y0: float, w: float, h: float,
           max_epoch: int) -> list[_Shape]:
    def px(epoch: float) -> float:
        return x0 + (w * (epoch - 1) / (max_epoch - 1) if max_epoch > 1 else w / 2)

    def py(acc: float) -> float:
        return y0 + h * (1 - acc)

    out = [_Shape("text", ((x0, y0 - 4),), text=title, size=11)]
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(_Shape("line", ((x0, py(v)), (x0 + w, py(v))), "#dddddd", 1))
        out.append(_Shape("text", ((x0 - 6, py(v) + 4),), text=f"{100 * v:.0f}%", size=10, anchor="end"))
    for t in _ticks(max_epoch):
        out.append(_Shape("line", ((px(t), y0 + h), (px(t), y0 + h + 4)), "#555555", 1))
        out.append(_Shape("text", ((px(t), y0 + h + 16),), text=str(t), size=10, anchor="middle"))
    out.append(_Shape("text", ((x0 + w / 2, y0 + h + 32),), text="epoch", size=10, anchor="middle"))
    out.append(_Shape("line", ((x0, y0 + h), (x0 + w, y0 + h)), "#555555", 1))
    chance = py(0.1)
    out.append(_Shape("line", ((x0, chance), (x0 + w, chance)), "#999999", 1, dash=(2, 2)))
    out.append(_Shape("text", ((x0 + w - 2, chance - 3),), colour="#777777", text="chance (10 classes)", size=9,
                      anchor="end"))
    for s in series:
        for line in s.lines:
            pts = tuple((px(e), py(v)) for e, v in zip(line.epochs, line.values))
            out.append(_Shape("poly", pts, colour[s.label], 2, dash=style.get(line.seed)))
    return out


# ------------------------------------------------------------------------------------------------
# SVG


def _pts(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def chart_svg(chart: Chart) -> str:
    """The chart as an inline ``<svg>`` element (escaped text, no scripts, no external references)."""
    w, h, shapes = _layout(chart)
    esc = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
           f'role="img" aria-label="{esc(chart.title, quote=True)}" font-family="sans-serif">']
    for s in shapes:
        dash = f' stroke-dasharray="{s.dash[0]},{s.dash[1]}"' if s.dash else ""
        if s.kind == "line":
            (x1, y1), (x2, y2) = s.points
            out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{s.colour}" '
                       f'stroke-width="{s.width}"{dash}/>')
        elif s.kind == "poly":
            out.append(f'<polyline points="{_pts(s.points)}" fill="none" stroke="{s.colour}" '
                       f'stroke-width="{s.width}"{dash}/>')
        else:
            (x, y), = s.points
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{s.size}" text-anchor="{s.anchor}" '
                       f'fill="{s.colour}">{esc(s.text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# PNG


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _dashes(points: Sequence[tuple[float, float]], on: float, off: float) -> list[list[tuple[float, float]]]:
    """Split a polyline into dash segments of ``on`` pixels separated by ``off``."""
    segs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    pos, drawing = 0.0, True
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
        t = 0.0
        while t < length:
            left = (on if drawing else off) - pos
            step = min(left, length - t)
            a = (x1 + (x2 - x1) * t / length, y1 + (y2 - y1) * t / length)
            b = (x1 + (x2 - x1) * (t + step) / length, y1 + (y2 - y1) * (t + step) / length)
            if drawing:
                cur = cur or [a]
                cur.append(b)
            t += step
            pos += step
            if pos >= (on if drawing else off):
                if drawing and cur:
                    segs.append(cur)
                cur, pos, drawing = [], 0.0, not drawing
    if cur:
        segs.append(cur)
    return segs


def chart_png(chart: Chart, scale: int = 2) -> bytes:
    """The same drawing as :func:`chart_svg`, rendered to PNG bytes with Pillow."""
    from PIL import Image, ImageDraw

    w, h, shapes = _layout(chart)
    img = Image.new("RGBA", (w * scale, h * scale), (255, 255, 255, 255))
    for s in shapes:
        pts = [(x * scale, y * scale) for x, y in s.points]
        draw = ImageDraw.Draw(img)
        if s.kind in ("line", "poly"):
            for seg in (_dashes(pts, s.dash[0] * scale, s.dash[1] * scale) if s.dash else [pts]):
                if len(seg) > 1:
                    draw.line(seg, fill=_rgb(s.colour), width=max(1, round(s.width * scale)), joint="curve")
        else:
            text = s.text.encode("ascii", "replace").decode("ascii")
            font = _font(s.size * scale)
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[s.anchor]
            try:
                draw.text(pts[0], text, fill=_rgb(s.colour), font=font, anchor=anchor)
            except ValueError:  # bitmap font: no anchors
                draw.text((pts[0][0], pts[0][1] - s.size * scale), text, fill=_rgb(s.colour), font=font)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# the board's part


def png_name(chart: Chart) -> str:
    return f"curves-{chart.key}.png"


def curves_html(charts: Sequence[Chart]) -> str:
    """The page's "Learning curves" section: one inline SVG per chart, linking its PNG."""
    if not charts:
        return ""
    esc = html.escape
    out = ['<section><h2>Learning curves</h2><p class="note">Clean test accuracy after every epoch (left) and '
           "accuracy on the training batches as trained, augmentation included (right), for each training "
           "set (colour), one line per seed (line style, named in each chart's legend). A shortcut shows as a "
           "training curve that rises while the clean test curve stays low; the legend names any seed that "
           "never left chance (its lines stay on the dotted chance level).</p>"]
    for c in charts:
        part = "comparable" if c.comparable else "not comparable with the paper"
        out.append(f'<figure>{chart_svg(c)}<figcaption class="note">{esc(c.title)} ({part}) · '
                   f'<a href="{esc(png_name(c), quote=True)}">PNG</a></figcaption></figure>')
    out.append("</section>")
    return "\n".join(out)


def write_curve_pngs(charts: Sequence[Chart], out_dir: str | Path) -> list[Path]:
    """Write every chart as ``curves-<key>.png`` in ``out_dir`` (atomically); returns the paths."""
    paths = []
    for c in charts:
        path = Path(out_dir) / png_name(c)
        atomic_write_bytes(path, chart_png(c))
        paths.append(path)
    return paths
