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
WINDOW = (1280, 1400)
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
    with the demonstration's committed key as the trusted one: all twelve must verify."""
    from cifar10s.leaderboard import write_leaderboard

    _, page, n, skipped = write_leaderboard(DEMO, out, trusted_keys=DEMO / "trusted-keys")
    assert n == 12 and skipped == []
    return page


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
        elif tag == "tr" and a.get("class") in ("reproduced", "reported"):
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


#: tables of the demo board, in page order, and how many of the paper's rows each holds: the
#: paper's LeNet-5 numbers are standard training on clean, EM and OPS data (Table 2), none on CIFAR-10-S
DEMO_TABLES = {"t1": 0, "t2": 1, "t3": 1, "t4": 1}  # CIFAR-10-S, clean, EM, OPS


def test_header_click_sorts_every_table(chromium, demo_page):
    before = _Board()
    before.feed(demo_page.read_text("utf-8"))
    assert {tid: sum(r["source"] == "reported" for r in t["rows"]) for tid, t in before.tables.items()} == DEMO_TABLES
    board = dump(chromium, demo_page, "#sort=best:asc")
    assert set(board.tables) == set(before.tables) == set(DEMO_TABLES)
    changed = 0
    for tid, table in board.tables.items():
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

    # a text column: one click sorts A to Z (the paper's LeNet-5 row is standard training)
    board = dump(chromium, demo_page, "#sort=method")
    for tid, table in board.tables.items():
        methods = [text for _, text in board.column(table, "method")]
        assert methods == ["at", "randaugment"] + ["standard"] * (1 + DEMO_TABLES[tid]), (tid, methods)
        assert table["sort"] == {"method": "ascending"}


def test_filter_hides_rows_and_keeps_the_sort(chromium, demo_page):
    board = dump(chromium, demo_page, "#filter=randaugment&sort=final:asc")
    assert set(board.tables) == set(DEMO_TABLES)
    for tid, table in board.tables.items():
        shown = board.column(table, "method", visible_only=True)
        assert [text for _, text in shown] == ["randaugment"]
        # three runs (standard, RandAugment, AT) and the paper's rows: all but one hidden
        n_rows = 3 + DEMO_TABLES[tid]
        assert len(table["rows"]) == n_rows and sum(r["hidden"] for r in table["rows"]) == n_rows - 1
        finals = [float(v) for v, _ in board.column(table, "final")]  # paper rows have a final number too
        assert finals == sorted(finals) and table["sort"] == {"final": "ascending"}


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
