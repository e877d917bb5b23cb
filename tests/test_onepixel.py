"""The fast OPS search against a slow, literal implementation of the authors' loop."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10s.onepixel import (
    CORNER_COLOURS,
    OBJECTIVES,
    ShortcutSearch,
    apply_shortcuts,
    search_shortcuts,
)


def reference_search(images, labels, pixels_per_class=1, objective="mean-std"):
    """Literal per-candidate loop (paper Algorithm 1 / the authors' search), float64 throughout."""
    _, h, w, _ = images.shape
    taken: set[tuple[int, int]] = set()
    chosen = []
    for label in range(int(labels.max()) + 1):
        x = images[labels == label].astype(np.float64) / 255
        scores = np.zeros((h * w, 8))
        for p in range(h * w):
            pix = x[:, p // w, p % w, :]
            for v in range(8):
                if (p, v) in taken:
                    continue
                d = np.abs(CORNER_COLOURS[v] - pix)
                if objective == "mean-std":
                    scores[p, v] = d.mean() / d.std()
                else:
                    dsum = d.sum(axis=1)
                    scores[p, v] = dsum.mean() / dsum.var()
        order = np.argsort(-scores.ravel(), kind="stable")[:pixels_per_class]
        for idx in order:
            p, v = divmod(int(idx), 8)
            taken.add((p, v))
            chosen.append((label, p // w, p % w, tuple(int(255 * c) for c in CORNER_COLOURS[v]), scores[p, v]))
    return chosen


def as_tuples(result: ShortcutSearch):
    return [(s.label, s.row, s.col, s.colour) for s in result.shortcuts]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("seed,shape,k", [(0, (200, 8, 8), 1), (1, (300, 6, 10), 3), (2, (64, 5, 5), 2)])
def test_fast_matches_reference_on_random_data(objective, seed, shape, k):
    rng = np.random.default_rng(seed)
    n, h, w = shape
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, n)
    fast = search_shortcuts(images, labels, pixels_per_class=k, objective=objective)
    ref = reference_search(images, labels, k, objective)
    assert as_tuples(fast) == [r[:4] for r in ref]
    np.testing.assert_allclose([s.score for s in fast.shortcuts], [r[4] for r in ref], rtol=1e-9)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_fast_matches_reference_on_real_cifar10(shared_arrays, objective):
    # Every second image keeps the literal loop affordable; all 1024 pixels x 8 colours are searched.
    x, y = shared_arrays.train_images[::2], shared_arrays.train_labels[::2]
    fast = search_shortcuts(x, y, objective=objective)
    ref = reference_search(x, y, 1, objective)
    assert as_tuples(fast) == [r[:4] for r in ref]
    np.testing.assert_allclose([s.score for s in fast.shortcuts], [r[4] for r in ref], rtol=1e-9)


def test_full_shared_subset_multi_pixel_is_consistent(shared_arrays):
    x, y = shared_arrays.train_images, shared_arrays.train_labels
    one = search_shortcuts(x, y)
    three = search_shortcuts(x, y, pixels_per_class=3)
    assert len(three.shortcuts) == 30
    # The best pixel of class 0 is the same; later classes may differ (more pairs are taken).
    assert as_tuples(three)[0] == as_tuples(one)[0]
    for label in range(10):
        per = three.for_class(label)
        assert [s.rank for s in per] == [0, 1, 2]
        assert per[0].score >= per[1].score >= per[2].score
    pairs = [(s.row, s.col, s.colour) for s in three.shortcuts]
    assert len(set(pairs)) == len(pairs)


def test_pairs_taken_by_earlier_classes_are_skipped():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    images = np.concatenate([base, base])  # classes 0 and 1 identical: same best pair
    labels = np.repeat([0, 1], 50)
    res = search_shortcuts(images, labels)
    a, b = res.shortcuts
    assert (a.row, a.col, a.colour) != (b.row, b.col, b.colour)
    assert b.score <= a.score


def test_apply_changes_only_the_shortcut_pixels(shared_arrays):
    x, y = shared_arrays.train_images, shared_arrays.train_labels
    res = search_shortcuts(x, y)
    out = apply_shortcuts(x, y, res)
    assert out.dtype == np.uint8 and out is not x
    changed = np.any(out != x, axis=-1)  # (N, H, W)
    for s in res.shortcuts:
        members = y == s.label
        assert np.all(out[members, s.row, s.col] == s.colour)
        changed[members, s.row, s.col] = False
    assert not changed.any()


def test_search_is_deterministic_and_round_trips_through_json(shared_arrays):
    x, y = shared_arrays.train_images, shared_arrays.train_labels
    a = search_shortcuts(x, y, pixels_per_class=2)
    b = search_shortcuts(x.copy(), y.copy(), pixels_per_class=2)
    assert a == b
    back = ShortcutSearch.from_json(a.to_json())
    assert back == a
    np.testing.assert_array_equal(apply_shortcuts(x, y, back), apply_shortcuts(x, y, a))


def test_degenerate_constant_pixels_follow_documented_convention():
    images = np.zeros((10, 2, 2, 3), np.uint8)  # all black: distance to white is constant 1
    images[:, 1, 1] = [0, 0, 255]
    labels = np.zeros(10, int)
    res = search_shortcuts(images, labels)
    (s,) = res.shortcuts
    # constant positive distance -> infinite score; the lowest candidate index wins the tie
    assert s.score == np.inf and (s.row, s.col, s.colour) == (0, 0, (255, 255, 255))


def test_bad_input_gives_clear_errors():
    x = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        search_shortcuts(x.astype(np.float32), np.zeros(4, int))
    with pytest.raises(ValueError, match="labels must have shape"):
        search_shortcuts(x, np.zeros(3, int))
    with pytest.raises(ValueError, match="unknown objective"):
        search_shortcuts(x, np.zeros(4, int), objective="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pixels_per_class"):
        search_shortcuts(x, np.zeros(4, int), pixels_per_class=0)
    with pytest.raises(ValueError, match="not a valid shortcut search"):
        ShortcutSearch.from_dict({"objective": "mean-std"})
    with pytest.raises(ValueError, match="out of range"):
        ShortcutSearch.from_dict({"objective": "mean-std", "pixels_per_class": 1, "image_shape": [8, 8, 3],
                                  "shortcuts": [{"label": 0, "row": 9, "col": 0, "colour": [0, 0, 0], "score": 1}]})
