"""Learning curves and at-chance seeds on the board: built from synthetic result records."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cifar10s.leaderboard.board.curve_plot import chart_png, chart_svg, curves_html, write_curve_pngs
from cifar10s.leaderboard.board.curves import (
    CHANCE_LOSS_MARGIN,
    build_charts,
    chance_note,
    chance_seeds,
    seed_at_chance,
    with_chance_notes,
)
from cifar10s.leaderboard.board.render import render_html, render_markdown, write_leaderboard
from cifar10s.leaderboard.board.result_file import typed_record
from cifar10s.leaderboard.board.results import check_records
from cifar10s.leaderboard.board.signing import SigningKey, TrustedKeys, sign_record

EXAMPLE = Path(__file__).resolve().parents[1] / "leaderboard" / "examples" / "cpu-demo"
LN10 = math.log(10)
#: the board ranks only signed results of a sandboxed scorer: this module's key, held in memory
KEY = SigningKey(Ed25519PrivateKey.generate(), Path("test-scorer.pem"))
TRUSTED = TrustedKeys.of(KEY.public_raw, where="the test's key")


def _records(test, train=None, loss=None):
    n = len(test)
    train = train or [0.5] * n
    loss = loss or [1.5] * n
    return [{"epoch": i + 1, "lr": 0.1, "train_loss": loss[i], "train_acc": train[i], "test_acc": test[i],
             "param_distance": 1.0, "train_time": 1.0, "eval_time": 0.1, "images_per_sec": 1.0,
             "elapsed": float(i)} for i in range(n)]


def _result(variant: str, seeds: list[list[dict]], method: str = "standard") -> dict:
    base = json.loads((EXAMPLE / f"lenet5-{method}--clean--cpu-smoke.json").read_text())
    r = copy.deepcopy(base)
    folder = {"ops": "ops-k1"}.get(variant, variant)
    r["dataset"]["variant"] = folder
    r["dataset"]["paper_train_set"] = variant
    r["test_set"] = r["test_set"]
    per_seed = []
    for i, recs in enumerate(seeds):
        s = copy.deepcopy(r["per_seed"][0])
        s.update(seed=i, records=recs, final_test_acc=recs[-1]["test_acc"], final_train_acc=recs[-1]["train_acc"])
        per_seed.append(s)
    r["per_seed"] = per_seed
    r["seeds"] = list(range(len(seeds)))
    vals = [s["final_test_acc"] for s in per_seed]
    r["summary"]["final_test_acc"].update(mean=sum(vals) / len(vals), n=len(vals), values=vals, std=0.0)
    r["sandbox"] = {"tool": "bubblewrap", "version": "0.0-test"}
    return sign_record(r, KEY)


def file_name(r: dict) -> str:
    return f"lenet5-{r['submission']['method']}--{r['dataset']['variant']}--cpu-smoke.json"


def checked(records: list) -> list:
    """The records as the board holds them: checked once, each beside its file name."""
    out, notes = check_records([(file_name(r) if isinstance(r, dict) and "submission" in r else "bad.json", r)
                                for r in records], TRUSTED)
    return out


STUCK = _records([0.1] * 5, train=[0.1, 0.1, 0.098, 0.101, 0.1], loss=[2.3071, 2.3030, 2.3027, 2.3026, 2.3026])


def test_chance_rule():
    assert seed_at_chance(STUCK) is True
    healthy = _records([0.2, 0.3, 0.4], train=[0.15, 0.3, 0.45], loss=[2.24, 2.0, 1.7])
    assert seed_at_chance(healthy) is False
    # slow start (PGD AT): flat for a while, then leaves chance
    slow = _records([0.1, 0.1, 0.12, 0.2], train=[0.1, 0.1, 0.12, 0.21], loss=[2.306, 2.304, 2.28, 2.12])
    assert seed_at_chance(slow) is False
    # just inside / outside the loss margin
    edge = _records([0.1] * 2, train=[0.1, 0.1], loss=[2.31, LN10 - CHANCE_LOSS_MARGIN + 1e-3])
    assert seed_at_chance(edge) is True
    edge[-1]["train_loss"] = LN10 - CHANCE_LOSS_MARGIN - 1e-3
    assert seed_at_chance(edge) is False
    # a loss that blew up is not learning either
    assert seed_at_chance(_records([0.1] * 3, train=[0.1] * 3, loss=[2.5, 40.0, 1e6])) is True
    # no losses (custom train_step): training accuracy, else test accuracy
    no_loss = _records([0.1, 0.11], train=[0.1, 0.12])
    for r in no_loss:
        r["train_loss"] = None
    assert seed_at_chance(no_loss) is True
    for r in no_loss:
        r["train_acc"] = None
    assert seed_at_chance(no_loss) is True
    no_loss[-1]["test_acc"] = 0.4
    assert seed_at_chance(no_loss) is False
    for r in no_loss:
        r["test_acc"] = None
    assert seed_at_chance(no_loss) is None
    assert seed_at_chance([]) is None
    # garbage numbers are ignored, never trusted
    junk = _records([0.1] * 2, train=[0.1, 0.1], loss=[2.303, 2.303])
    junk[0]["train_loss"] = "0.1"
    junk[1]["train_acc"] = float("nan")
    assert seed_at_chance(junk) is True
    # 100 classes
    assert seed_at_chance(_records([0.01] * 2, train=[0.01] * 2, loss=[4.6, 4.605]), num_classes=100) is True


# Training losses per epoch recorded by the scorer for LeNet-5, standard training, [0, 1] inputs,
# lr 0.1, 20 epochs, on the 10,000-image subset: seed 0 never left chance (10.0% clean test
# accuracy, final training accuracy 9.6%), seed 1 did (41.3%; 39.4%).
RECORDED_STUCK = [2.3052, 2.3046, 2.2937, 2.3046, 2.305, 2.3058, 2.3049, 2.3041, 2.3053, 2.3046, 2.3042, 2.3032,
                  2.303, 2.3028, 2.3029, 2.3026, 2.3026, 2.3026, 2.3026, 2.3026]
RECORDED_SLOW = [2.2971, 2.2691, 2.171, 2.0944, 2.0878, 1.9737, 1.9857, 1.9974, 1.9477, 1.8908, 1.8108, 1.7562,
                 1.7379, 1.7053, 1.6892, 1.6717, 1.6708, 1.6748, 1.6574, 1.6571]


def test_chance_rule_on_a_recorded_stuck_seed():
    stuck = _records([0.1] * 20, train=[0.1] * 19 + [0.0959], loss=RECORDED_STUCK)
    slow = _records([0.4] * 20, train=[0.3] * 19 + [0.3937], loss=RECORDED_SLOW)
    assert seed_at_chance(stuck) is True and seed_at_chance(slow) is False


def test_chance_rule_on_recorded_runs():
    """The recorded CPU grid: every seed of standard training, RandAugment and the defended runs
    trained (final training accuracy 42-96%, clean test accuracy 13-56%: grayscale on CIFAR-10-S
    fits its training set and still tests at 13.75%, which is not chance); PGD AT's seed 1 stayed
    at chance (10.00%, training loss at ln 10) on every training set, and is the only one flagged."""
    files = sorted(EXAMPLE.glob("*.json"))
    assert len(files) >= 12
    for f in files:
        r = json.loads(f.read_text())
        stuck = [s["final_test_acc"] for s in r["per_seed"] if s["seed"] == 1]
        if r["submission"]["method"] == "at":
            assert chance_seeds(typed_record(r)) == [1] and stuck == [0.1], f.name
        else:
            assert chance_seeds(typed_record(r)) == [] and min(s["final_test_acc"] for s in r["per_seed"]) > 0.13, f.name
            assert min(s["final_train_acc"] for s in r["per_seed"]) > 0.4, f.name  # far above chance (10%)


def test_series_from_synthetic_results():
    clean = _result("clean", [_records([0.2, 0.4, 0.5], [0.2, 0.4, 0.6]), _records([0.3, 0.5, 0.6], [0.3, 0.5, 0.7])])
    ops = _result("ops", [_records([0.2, 0.15, 0.1], [0.3, 0.9, 1.0]), STUCK[:3]])
    em = _result("em", [_records([0.2, 0.3, 0.3])])
    at = _result("clean", [_records([0.1, 0.2])], method="at")
    # in the board's order: standard training first (the paper's order of methods), then AT
    charts = build_charts(checked([ops, clean, em, at, {"format": "nonsense"}]))
    assert [c.key for c in charts] == ["lenet5-standard-cpu-smoke", "lenet5-at-cpu-smoke"]
    std = charts[0]
    (test_title, test), (train_title, train) = std.panels
    assert "test" in test_title and "training" in train_title
    assert [s.label for s in test] == ["clean", "em", "ops-k1"]  # paper order: clean, EM, OPS, CIFAR-10-S
    c = test[0]
    assert c.epochs == (1, 2, 3) and c.n_seeds == 2
    # one line per seed, never averaged
    assert [line.seed for line in c.lines] == [0, 1]
    assert c.lines[0].values == pytest.approx((0.2, 0.4, 0.5)) and c.lines[1].values == pytest.approx((0.3, 0.5, 0.6))
    assert train[0].lines[1].values == pytest.approx((0.3, 0.5, 0.7))
    assert test[2].chance_seeds == (1,) and test[0].chance_seeds == ()
    assert [line.at_chance for line in test[2].lines] == [False, True]
    assert test[1].n_seeds == 1


def test_hostile_text_is_escaped():
    r = _result("clean", [_records([0.2, 0.3])])
    r["submission"]["name"] = '<script>alert(1)</script>"'
    r = sign_record(r, KEY)
    (chart,) = build_charts(checked([r]))
    page = curves_html([chart])
    assert "<script>" not in page and "&lt;script&gt;" in page
    chart_png(chart)  # non-ASCII or markup: drawn as text, no error


def test_board_marks_chance_seeds_and_draws_curves(tmp_path):
    stuck = _result("clean", [STUCK, _records([0.3, 0.4, 0.45, 0.48, 0.5])])
    fine = _result("ops", [_records([0.2, 0.2, 0.2])])
    rows = checked([stuck, fine])
    noted = with_chance_notes(rows)
    assert [len(e.entry.notes) - len(r.entry.notes) for e, r in zip(noted, rows)] == [1, 0]
    assert "seed 0 never left chance" in noted[0].entry.notes[-1]
    assert chance_note(rows[1]) is None
    page = render_html([stuck, fine], trusted_keys=TRUSTED)
    assert "seed 0 never left chance" in page and "<h2>Learning curves</h2>" in page
    assert page.count("<svg") >= 2  # the accuracy chart and the curves
    assert "seed 0 never left chance" in render_markdown([stuck, fine], trusted_keys=TRUSTED)
    folder = tmp_path / "results"
    folder.mkdir()
    for r in (stuck, fine):
        (folder / file_name(r)).write_text(json.dumps(r))
    write_leaderboard(folder, tmp_path / "site", trusted_keys=TRUSTED)
    pngs = sorted(p.name for p in (tmp_path / "site").glob("*.png"))
    assert pngs == ["curves-lenet5-standard-cpu-smoke.png"]
    assert re.search(r'href="curves-lenet5-standard-cpu-smoke\.png"', (tmp_path / "site" / "index.html").read_text())


def test_curves_modules_import_no_torch():
    """The curve code itself is plain Python + Pillow (the package it sits in may import torch)."""
    import ast

    pkg = Path(__file__).resolve().parents[1] / "cifar10s" / "leaderboard" / "board"
    for name in ("curves.py", "curve_plot.py"):
        tree = ast.parse((pkg / name).read_text())
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
        assert not mods & {"torch", "torchvision", "matplotlib", "numpy"}, (name, mods)
