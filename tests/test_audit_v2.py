"""The audit's second generation: partial OPS (isolated pixels), patches that move (recurring
windows), second-order (autoregressive) noise, per-image scores and their AUROC, the network
baseline, and the clean transformations each detector must leave alone."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10s.auditing import audit, synthetic
from cifar10s.auditing.isolated import scan_isolated
from cifar10s.auditing.scores import auroc, combine
from cifar10s.auditing.secondorder import scan_second_order
from cifar10s.auditing.windows import scan_windows, window_hashes
from cifar10s.cli.main import main
from cifar10s.onepixel import apply_shortcuts, search_shortcuts

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small(shared_arrays):
    """2,000 real training images, 200 per class."""
    x, y = shared_arrays.train_images, shared_arrays.train_labels
    idx = np.concatenate([np.flatnonzero(y == k)[:200] for k in range(10)])
    return np.ascontiguousarray(x[idx]), y[idx].astype(np.int64)


def _kinds(report):
    return sorted(f.kind for f in report.findings)


# --- per-image scores ------------------------------------------------------------------------

def test_auroc_matches_pair_counting():
    rng = np.random.default_rng(0)
    pos = rng.random(300) < 0.3
    s = np.round(rng.normal(size=300) + pos, 1)  # with ties
    pairs = (s[pos][:, None] > s[~pos][None, :]).mean() + 0.5 * (s[pos][:, None] == s[~pos][None, :]).mean()
    assert auroc(pos, s) == pytest.approx(pairs)
    assert auroc(pos, pos.astype(float)) == 1.0 and np.isnan(auroc(np.zeros(3, bool), np.ones(3)))


def test_combine_uses_the_found_kinds_only():
    a, b = np.array([0.0, 3.0]), np.array([5.0, 0.0])
    scores, kinds = combine({"pixel": a, "second-order": b}, {"pixel"}, 2)
    assert kinds == ["pixel"] and scores.tolist() == [0.0, 3.0]
    scores, kinds = combine({"pixel": a, "second-order": lambda: 1 / 0}, {"pixel"}, 2)  # never computed
    assert kinds == ["pixel"] and scores.tolist() == [0.0, 3.0]
    scores, kinds = combine({"pixel": a, "second-order": b}, set(), 2)  # nothing found: no suspicion
    assert kinds == [] and scores.tolist() == [0.0, 0.0]


# --- partial OPS -----------------------------------------------------------------------------

def test_ops_on_ten_percent_of_each_class_is_found_and_scored(small):
    x, y = small
    search = search_shortcuts(x, y)
    mask = synthetic.poison_share(y, 0.1, seed=1)
    made = synthetic.partial(apply_shortcuts(x, y, search), x, mask)
    report = audit(made, y, learnability=False)
    assert "pixel" in _kinds(report)
    [finding] = [f for f in report.findings if f.kind == "pixel"]
    named = {(p["class"], p["row"], p["col"], tuple(p["colour"])) for p in finding.evidence["pixels"]}
    assert {(s.label, s.row, s.col, s.colour) for s in search.shortcuts} <= named
    assert report.scores.shape == (len(y),) and "pixel" in report.score_kinds
    assert auroc(mask, report.scores) >= 0.95


@pytest.mark.parametrize("name", ["clean", "gauss16", "jitter", "translate", "class-noise-8"])
def test_isolated_pixels_stay_below_threshold_without_a_pixel_shortcut(small, name):
    x, y = small
    made = {"clean": lambda: x, "gauss16": lambda: synthetic.gaussian_noise(x, 16, 1),
            "jitter": lambda: synthetic.jitter(x, seed=1), "translate": lambda: synthetic.translate(x, 4, 1),
            "class-noise-8": lambda: synthetic.class_noise(x, y, 8, seed=3)}[name]()
    scan = scan_isolated(made, y, 10)
    assert scan.excess(4.0).max() < 0.04


# --- recurring windows -----------------------------------------------------------------------

def test_window_hashes_are_equal_exactly_for_equal_windows():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    img[1, 4:7, 1:4] = img[0, 0:3, 2:5]
    h = window_hashes(img, 3)
    assert h[1].reshape(6, 6)[4, 1] == h[0].reshape(6, 6)[0, 2]
    other = img.copy()
    other[0, 1, 3, 2] ^= 1  # one bit of one channel
    assert window_hashes(other, 3)[0].reshape(6, 6)[0, 2] != h[0].reshape(6, 6)[0, 2]
    assert len(np.unique(h[0])) == 36


def test_moving_patch_on_a_quarter_of_each_class_is_found_and_scored(small):
    x, y = small
    mask = synthetic.poison_share(y, 0.25, seed=2)
    made = synthetic.partial(synthetic.moving_patch(x, y, 3, seed=2), x, mask)
    report = audit(made, y, learnability=False)
    assert _kinds(report) == ["recurring-window"]
    finding = report.findings[0]
    assert finding.classes == tuple(range(10))
    rng = np.random.default_rng(2)  # moving_patch's first draw: the patches
    patches = rng.integers(0, 256, (10, 3, 3, 3), dtype=np.uint8)
    for k in range(10):
        assert finding.evidence["windows"][str(k)]["pixels"] == patches[k].tolist()
        assert finding.evidence["windows"][str(k)]["share"] == pytest.approx(0.25, abs=0.01)
    assert auroc(mask, report.scores) >= 0.95


@pytest.mark.parametrize("name", ["clean", "random-patches", "random-patches-pool", "translate", "flip"])
def test_clean_transformations_make_no_recurring_window(small, name):
    x, y = small
    made = {"clean": lambda: x, "random-patches": lambda: synthetic.random_patches(x, 3, seed=3),
            "random-patches-pool": lambda: synthetic.random_patches(x, 3, seed=3, pool=5),
            "translate": lambda: synthetic.translate(x, 4, 3), "flip": lambda: synthetic.flip(x, 3)}[name]()
    report = audit(made, y, learnability=False)
    assert report.findings == []
    assert max(report.measurements["windows"]["excess"]) < 0.04


def test_saturated_windows_are_never_candidates(small):
    x, y = small
    made = x.copy()
    made[y == 3, :6, :6] = 255  # a white block in every cat: natural-looking over-exposure
    assert scan_windows(made, y, 10).counts.shape[0] == 0


# --- second-order noise ----------------------------------------------------------------------

def test_autoregressive_noise_is_second_order_and_invisible_to_the_mean(small):
    x, y = small
    made = synthetic.ar_noise(x, y, 1.0, seed=4)
    report = audit(made, y, epochs=3)
    kinds = _kinds(report)
    assert "second-order" in kinds and "class-pattern" not in kinds and "linear-separable" not in kinds
    assert report.measurements["second_order"]["heldout_accuracy"] > 0.8


@pytest.mark.parametrize("name", ["clean", "gauss16", "grayscale", "jpeg", "uniform8"])
def test_second_order_stays_clean_on_clean_transformations(small, name):
    x, y = small
    made = {"clean": lambda: x, "gauss16": lambda: synthetic.gaussian_noise(x, 16, 5),
            "grayscale": lambda: synthetic.grayscale(x), "jpeg": lambda: synthetic.jpeg(x, 75),
            "uniform8": lambda: synthetic.uniform_noise(x, 8, 5)}[name]()
    scan = scan_second_order(made, y, 10)
    assert scan.accuracy < 0.45 and scan.null.max() < 0.2


# --- network baseline and command line ---------------------------------------------------------

def test_network_baseline_is_reported_beside_the_verdict(small):
    from cifar10s.auditing.network import train_network

    x, y = small
    idx = np.concatenate([np.flatnonzero(y == k)[:40] for k in range(10)])
    colours = np.random.default_rng(0).integers(0, 256, (10, 3), dtype=np.uint8)
    easy = np.broadcast_to(colours[y[idx]][:, None, None, :], (400, 32, 32, 3)).copy()  # a colour per class
    out = train_network(easy, y[idx], 10, epochs=5, seed=0, batch_size=32)
    assert out["flagged"] and out["train_accuracy"][-1] >= 0.7 and out["seconds"] > 0
    natural = train_network(x[idx], y[idx], 10, epochs=2, seed=0, batch_size=32)
    assert not natural["flagged"] and len(natural["train_accuracy"]) == 2


def test_cli_writes_scores(tmp_path, small, capsys):
    x, y = small
    mask = synthetic.poison_share(y, 0.25, seed=6)
    made = synthetic.partial(synthetic.moving_patch(x, y, 3, seed=6), x, mask)
    np.save(tmp_path / "x.npy", made)
    np.save(tmp_path / "y.npy", y)
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--fast",
                 "--scores", str(tmp_path / "s.npy"), "--json", str(tmp_path / "a.json")]) == 0
    scores = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert scores.dtype == np.float32 and scores.shape == (len(y),)
    assert auroc(mask, scores) >= 0.95
    import json

    payload = json.loads((tmp_path / "a.json").read_text())
    assert payload["scores"]["kinds"] == ["recurring-window"] and len(payload["scores"]["top"]) == 20
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--fast",
                 "--scores", str(tmp_path / "s.txt")]) == 1
    assert ".npy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    assert "--scores" in capsys.readouterr().out
