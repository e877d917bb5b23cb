"""The leaderboard page in a real browser: headless Chromium runs its script, sorts, filters, draws.

The page honours ``#sort=KEY[:asc|:desc]&filter=TEXT`` by clicking the column headers itself, so
``chromium --dump-dom`` of such a URL shows the DOM after real clicks. A screenshot of the board
of the committed CPU demonstration (verified against its committed key) checks that the chart
is drawn.

Under CI (``CI=true``) a missing Chromium is a failure; elsewhere these tests are skipped with
the reason. ``python tests/test_board_browser.py [PNG]`` rewrites the README's screenshot
(``docs/leaderboard-page.png`` by default).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "leaderboard" / "examples" / "cpu-demo"
SCREENSHOT = REPO / "docs" / "leaderboard-page.png"
WINDOW = (1280, 2000)  # the by-model table, the defenses and the first part's chart
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """``$CHROMIUM``, else the first Chromium-like browser on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        why = "headless Chromium is not installed (apt-get install chromium, or set CHROMIUM=/path/to/browser)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; CI must run the browser test")
        pytest.skip(why)
    return path


def run_chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="cifar10s-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}"
    return proc


def screenshot(browser: str, page: Path, png: Path, size: tuple[int, int] = WINDOW) -> None:
    run_chromium(browser, f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.as_uri())


def render_demo(out: Path) -> Path:
    """The board of the committed CPU demonstration results, as ``cifar10s leaderboard`` writes it
    with the project's trusted keys (the default): every committed result must verify."""
    from cifar10s.leaderboard import write_leaderboard

    _, page, n, skipped = write_leaderboard(DEMO, out)
    assert n == len(list(DEMO.glob("*.json"))) and skipped == []
    return page


def demo_defenses() -> dict[str, int]:
    """How many committed defense results each training set (the result's variant) has."""
    import json

    out: dict[str, int] = {}
    for f in DEMO.glob("*.json"):
        r = json.loads(f.read_text("utf-8"))
        if r["submission"].get("defense"):
            out[r["dataset"]["variant"]] = out.get(r["dataset"]["variant"], 0) + 1
    return out


class _Board(HTMLParser):
    """Tables of the dumped DOM: per table, header sort states and rows (hidden flag, cell values)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict] = {}
        self._table: dict | None = None
        self._row: dict | None = None
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "board" in (a.get("class") or "").split():
            self._table = self.tables.setdefault(a["id"], {"sort": {}, "keys": [], "rows": []})
        elif self._table is None:
            return
        elif tag == "th":
            self._table["keys"].append(a.get("data-key"))
            if a.get("aria-sort"):
                self._table["sort"][a["data-key"]] = a["aria-sort"]
        elif tag == "tr" and a.get("class") in ("reproduced", "reported", "overview", "defense", "baseline"):
            self._row = {"hidden": "hidden" in a, "source": a["class"], "cells": []}
            self._table["rows"].append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = [a.get("data-v"), ""]
            self._row["cells"].append(self._cell)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = self._row = self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def column(self, table: dict, key: str, *, visible_only: bool = False) -> list:
        i = table["keys"].index(key)
        return [r["cells"][i] for r in table["rows"] if not (visible_only and r["hidden"])]


def dump(browser: str, page: Path, fragment: str) -> _Board:
    proc = run_chromium(browser, "--virtual-time-budget=3000", "--dump-dom", page.as_uri() + fragment)
    board = _Board()
    board.feed(proc.stdout)
    assert board.tables, proc.stdout[:2000]
    return board


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> Path:
    return render_demo(tmp_path_factory.mktemp("board"))


#: the per-training-set tables of the demo board, in page order, and how many of the paper's rows each
#: holds: the paper's LeNet-5 numbers are standard training on clean, EM and OPS data (Table 2), none on
#: CIFAR-10-S. Above them: the by-model table ("bm") and the defenses ("df").
DEMO_TABLES = {"t1": 0, "t2": 1, "t3": 1, "t4": 1}  # CIFAR-10-S, clean, EM, OPS
DEMO_SETS = {"t1": "cifar10s", "t2": "clean", "t3": "em", "t4": "ops-k1"}


def detail_tables(board: "_Board") -> dict[str, dict]:
    return {tid: t for tid, t in board.tables.items() if tid in DEMO_TABLES}


def test_header_click_sorts_every_table(chromium, demo_page):
    before = _Board()
    before.feed(demo_page.read_text("utf-8"))
    assert {tid: sum(r["source"] == "reported" for r in t["rows"])
            for tid, t in detail_tables(before).items()} == DEMO_TABLES
    board = dump(chromium, demo_page, "#sort=best:asc")
    assert set(detail_tables(board)) == set(DEMO_TABLES) and set(board.tables) == set(before.tables)
    changed = 0
    for tid, table in detail_tables(board).items():
        # the paper's rows have no best-epoch number (empty data-v): they sort after every number
        values = [v for v, _ in board.column(table, "best")]
        n_ours = len(values) - DEMO_TABLES[tid]
        assert all(values[:n_ours]) and values[n_ours:] == [""] * DEMO_TABLES[tid], (tid, values)
        best = [float(v) for v in values[:n_ours]]
        assert best == sorted(best), (tid, best)
        assert table["sort"] == {"best": "ascending"}  # and the default marker on "final" is gone
        default = [text for _, text in before.column(before.tables[tid], "name")]
        assert sorted(default) == sorted(text for _, text in board.column(table, "name"))  # same rows
        changed += default != [text for _, text in board.column(table, "name")]
    assert changed == 4  # the default order (by final accuracy, descending) really was changed

    # a text column: one click sorts A to Z (the paper's LeNet-5 row is standard training; the
    # defended runs are standard training with the defense under it)
    defended = demo_defenses()
    board = dump(chromium, demo_page, "#sort=method")
    for tid, table in detail_tables(board).items():
        methods = [text for _, text in board.column(table, "method")]
        n_def = defended.get(DEMO_SETS[tid], 0)
        assert methods[:3 + DEMO_TABLES[tid]] == ["at", "randaugment"] + ["standard"] * (1 + DEMO_TABLES[tid])
        assert len(methods) == 3 + DEMO_TABLES[tid] + n_def and all(m.startswith("standard+ ") for m in methods[3 + DEMO_TABLES[tid]:])
        assert methods == sorted(methods), (tid, methods)
        assert table["sort"] == {"method": "ascending"}


def test_by_model_table_first_sortable_and_defenses_ranked(chromium, demo_page):
    """The by-model table opens the page (a row per model, method and defense, a column per
    training set, the drop) and sorts like the others; the defenses section ranks the defenses by
    their CIFAR-10-S accuracy beside the row without a defense."""
    text = demo_page.read_text("utf-8")
    assert text.index('<table class="board overview" id="bm">') < text.index('id="defenses"') < text.index('id="t1"')
    before = _Board()
    before.feed(text)
    bm = before.tables["bm"]
    assert bm["keys"][:6] == ["name", "model", "method", "defense", "preset", "comparable"]
    assert bm["keys"][6:11] == ["clean", "em", "ops", "cifar10s", "drop"]
    defenses = [t for _, t in before.column(bm, "defense")]
    n_defended = len(defenses) - 3
    assert defenses == ["–"] + sorted(defenses[1:1 + n_defended]) + ["–", "–"]  # the table's order
    assert [t for _, t in before.column(bm, "method")] == ["standard"] * (1 + n_defended) + ["randaugment", "at"]
    # the standard row: the paper's Table 2 numbers marked reported, beside ours
    standard = before.tables["bm"]["rows"][0]["cells"]
    assert "paper 70.27 (Table 2, reported)" in standard[6][1] and "2 seeds" in standard[6][1]
    # drop = clean - CIFAR-10-S, in points, of the row's own results
    for row in bm["rows"]:
        clean, poisoned, drop = row["cells"][6][0], row["cells"][9][0], row["cells"][10][0]
        if clean and poisoned:
            assert abs(float(clean) - float(poisoned) - float(drop)) < 1e-9
    board = dump(chromium, demo_page, "#sort=drop:desc")
    drops = [float(v) for v, _ in board.column(board.tables["bm"], "drop") if v]
    assert drops == sorted(drops, reverse=True) and board.tables["bm"]["sort"] == {"drop": "descending"}
    # defenses: the row without one first, then the defenses by CIFAR-10-S accuracy, with the restored
    # points and the clean cost measured against that row
    if "df" in before.tables:
        df = before.tables["df"]
        rows = df["rows"]
        assert rows[0]["source"] == "baseline" and all(r["source"] == "defense" for r in rows[1:])
        base_poisoned, base_clean = float(rows[0]["cells"][6][0]), float(rows[0]["cells"][8][0])
        accs = [float(r["cells"][6][0]) for r in rows[1:]]
        assert accs == sorted(accs, reverse=True) and [r["cells"][0][1] for r in rows[1:]] == [
            str(i + 1) for i in range(len(accs))]
        for r in rows[1:]:
            assert abs(float(r["cells"][7][0]) - (float(r["cells"][6][0]) - base_poisoned)) < 1e-9
            assert abs(float(r["cells"][9][0]) - (base_clean - float(r["cells"][8][0]))) < 1e-9
        assert "demo" in text.split('id="defenses"')[1].split("</section>")[0].lower()
    else:
        assert "No defense has been scored on CIFAR-10-S yet." in text


def test_filter_hides_rows_and_keeps_the_sort(chromium, demo_page):
    board = dump(chromium, demo_page, "#filter=randaugment&sort=final:asc")
    defended = demo_defenses()
    assert set(detail_tables(board)) == set(DEMO_TABLES)
    for tid, table in detail_tables(board).items():
        shown = board.column(table, "method", visible_only=True)
        assert [text for _, text in shown] == ["randaugment"]
        # three runs (standard, RandAugment, AT), the defended runs and the paper's rows: all but one hidden
        n_rows = 3 + DEMO_TABLES[tid] + defended.get(DEMO_SETS[tid], 0)
        assert len(table["rows"]) == n_rows and sum(r["hidden"] for r in table["rows"]) == n_rows - 1
        finals = [float(v) for v, _ in board.column(table, "final")]  # paper rows have a final number too
        assert finals == sorted(finals) and table["sort"] == {"final": "ascending"}
    # the by-model table is filtered too: only the RandAugment row is left
    assert [t for _, t in board.column(board.tables["bm"], "method", visible_only=True)] == ["randaugment"]


def test_screenshot_shows_the_chart_and_tables(chromium, demo_page, tmp_path):
    from PIL import Image

    png = tmp_path / "board.png"
    screenshot(chromium, demo_page, png)
    img = Image.open(png).convert("RGB")
    assert img.size == WINDOW
    colours = {c: n for n, c in img.getcolors(maxcolors=1 << 20)}
    # the four bar colours of the chart (clean, EM, OPS, CIFAR-10-S) are drawn, in solid areas
    for hex_colour in ("#4C78A8", "#54A24B", "#B279A2", "#F58518"):
        rgb = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        assert colours.get(rgb, 0) > 500, hex_colour
    assert len(colours) > 50  # text and lines, not a blank page


def test_committed_screenshot_is_a_small_png():
    from PIL import Image

    assert SCREENSHOT.is_file(), f"{SCREENSHOT} is missing: run python tests/test_board_browser.py"
    assert SCREENSHOT.stat().st_size < 250_000
    with Image.open(SCREENSHOT) as img:
        assert img.format == "PNG" and img.size == WINDOW


def write_screenshot(png: Path = SCREENSHOT) -> None:
    """Render the demonstration board and save a small (palette) PNG of it."""
    from PIL import Image

    browser = find_chromium()
    if browser is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        page = render_demo(Path(tmp) / "site")
        raw = Path(tmp) / "raw.png"
        screenshot(browser, page, raw)
        img = Image.open(raw).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        png.parent.mkdir(parents=True, exist_ok=True)
        img.save(png, optimize=True)
    print(f"wrote {png} ({png.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    write_screenshot(Path(sys.argv[1]) if len(sys.argv) > 1 else SCREENSHOT)
