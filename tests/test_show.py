"""The show picture: a real (scalable) font, a title and a title over every column."""

from __future__ import annotations

import numpy as np
from PIL import ImageFont

from cifar10s import show


def _sheet(**kw):
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(20) % 10
    return show.contact_sheet(clean, clean.copy(), labels, [f"class{i}" for i in range(10)], per_class=2, **kw)


def test_labels_use_a_scalable_font():
    assert isinstance(show._font(14), ImageFont.FreeTypeFont)


def test_header_band_holds_the_title_and_column_titles():
    plain = _sheet()
    with_diff = _sheet(amplify=8, title="ops-k1: clean | perturbed | |diff|")
    assert with_diff.width > plain.width  # a third column per group
    pixels = np.asarray(with_diff)
    first_row_top = pixels.shape[0] - 10 * (32 * 4 + 6)  # the class rows fill the sheet below the header
    header = pixels[:first_row_top]
    assert first_row_top >= 30 and (header < 128).any()  # dark text in the header band
    # text in the title line and in the column-title line
    title_rows = (header < 128).any(axis=(1, 2))
    assert title_rows[:20].any() and title_rows[20:].any()
