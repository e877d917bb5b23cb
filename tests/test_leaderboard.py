"""The leaderboard end to end through the CLI: validate -> score -> result with provenance; the commands.

(Submissions: test_submission.py; scoring and resume: test_scoring.py; attacks: test_isolation.py;
rendering: test_render.py; baselines: test_baselines.py; Table 1: test_shuffle.py.) Training runs use the ``cpu-smoke`` preset (2 epochs, 1,024 training images, 500 test images per
epoch) and LeNet-5 or a tiny CNN on the shared real CIFAR-10 subset (``built_root``: ``clean`` +
``ops-k1``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import cifar10s
from cifar10s.cli.main import build_parser
from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import (
    data_caveats,
)
from cifar10s.store import (
    TEST_LABELS,
    TRAIN_IMAGES,
    clean_folder,
    sha256_file,
    variant_folder,
    verify_folder,
)
from cifar10s.variants import VariantSpec
from leaderboard_kit import META, write_submission


# ------------------------------------------------------------------------------------------------
# round trip: validate -> train -> score


def test_round_trip_provenance(tmp_path, built_root, capsys, one_thread):
    sub = write_submission(tmp_path / "lenet-standard", {**META, "model": "lenet5", "method": "standard"})
    assert lb_main(["validate", str(sub)]) == 0
    out = tmp_path / "results"
    rc = lb_main(["score", str(sub), "--root", str(built_root), "--variant", "ops", "--preset", "cpu-smoke",
                  "--seeds", "0", "1", "--device", "cpu", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "paper Table 2 (lenet5, standard, ops): 22.19%" in printed and printed.count("22.19") == 1
    assert "differs from the paper's settings" in printed
    # a 2-epoch run on a subset: the paper's number, and why there is no difference, never one
    assert "(no difference shown: preset cpu-smoke differs from the paper's settings; built from a subset" in printed
    assert "difference " not in printed.replace("no difference shown", "")
    # best and final accuracy each name the test images they were measured on
    assert "final clean test accuracy" in printed and "(all 2000 test images;" in printed
    assert "best epoch, selected on a fixed 500-image subset of the test images:" in printed
    # the shared subset is not the official CIFAR-10 release: said, whatever the settings
    assert "training data built from a subset of CIFAR-10 (10000 training images)" in printed

    path = out / "lenet-standard--ops-k1--cpu-smoke.json"
    r = json.loads(path.read_text())
    folder = variant_folder(built_root, VariantSpec("ops"))
    manifest = verify_folder(folder)
    assert r["format"] == "cifar10s-leaderboard-result"
    assert r["dataset"]["variant"] == "ops-k1" and r["dataset"]["paper_train_set"] == "ops"
    assert r["dataset"]["manifest_sha256"] == sha256_file(folder / "manifest.json")
    assert r["dataset"]["train_images_sha256"] == sha256_file(folder / TRAIN_IMAGES) == manifest["files"][TRAIN_IMAGES]["sha256"]
    assert r["dataset"]["official_cifar10"] is False and r["dataset"]["recipe"] is None  # OPS has no EM
    assert r["dataset"]["source_kind"] == "subset" and set(r["dataset"]["source_content_fingerprint"]) == {"train", "test"}
    assert data_caveats(r["dataset"]) == [
        "built from a subset of CIFAR-10 (10000 training images), not the whole training set"]
    # the official archive, or all of CIFAR-10 from another copy (only images and labels matter)
    for kind in ("official", "official-content", "full-copy"):
        assert data_caveats({**r["dataset"], "source_kind": kind}) == []
    assert data_caveats({**r["dataset"], "source_kind": "official", "recipe": "v1"}) == []
    assert data_caveats({**r["dataset"], "source_kind": "official", "recipe": "cpu-demo"}) == [
        "EM noise from recipe 'cpu-demo', not the release recipe 'v1'"]
    # results written before source kinds existed: the official flag alone, as before
    older = {k: v for k, v in r["dataset"].items() if k not in ("source_kind", "source_content_fingerprint")}
    assert data_caveats(older) == ["built from a CIFAR-10 copy that is not the official release (10000 training images)"]
    assert data_caveats({**older, "official_cifar10": True}) == []
    assert r["test_set"]["num_test"] == 2000 and r["test_set"]["folder"] == "clean"
    assert r["test_set"]["test_labels_sha256"] == sha256_file(clean_folder(built_root) / TEST_LABELS)
    assert r["code"]["cifar10s"] == cifar10s.__version__ and "git_commit" in r["code"]
    assert r["seeds"] == [0, 1] and r["preset"] == "cpu-smoke"
    assert r["preset_diff"]["epochs"] == {"paper": 200, "used": 2}
    assert r["preset_diff"]["train_subset"] == {"paper": None, "used": 1024}
    assert "seed" not in r["preset_diff"] and r["paper_setting"] is False
    assert r["device"] == "cpu" and r["wall_time_s"] > 0 and r["train_time_s"] > 0
    assert r["submission"]["model"] == "lenet5" and r["submission"]["sha256"]
    assert set(r["submission"]["files"]) == {"submission.json"}
    finals = [p["final_test_acc"] for p in r["per_seed"]]
    assert [p["seed"] for p in r["per_seed"]] == [0, 1]
    for p in r["per_seed"]:
        assert 0.0 <= p["final_test_acc"] <= 1.0 and 0.0 <= p["best_test_acc"] <= 1.0
        assert p["best_epoch"] in (1, 2) and len(p["records"]) == 2 and p["num_train"] == 1024
    s = r["summary"]["final_test_acc"]
    assert s["n"] == 2 and s["mean"] == pytest.approx(np.mean(finals))
    assert s["std"] == pytest.approx(np.std(finals, ddof=1))
    assert r["eval"]["per_epoch_images"] == 500 and r["eval"]["final_images"] == 2000
    assert r["eval"]["accuracy_units"] == "fraction in [0, 1]" and "selected on the test set" in r["eval"]["best_epoch_selection"]
    # an honest model: its accuracy on flipped test images is close to its accuracy; nothing flagged
    assert r["integrity"]["suspicious"] is False and abs(r["integrity"]["flip_gap"]) < 0.05
    assert r["integrity"]["test_split_verification"] == "pinned" and r["test_set"]["verification"]["method"] == "pinned"
    assert all(abs(p["flip_gap"]) < 0.05 and len(p["weights_sha256"]) == 64 for p in r["per_seed"])
    assert r["paper"] and r["paper"][0]["table"] == "table2" and r["paper"][0]["test_acc"] == 22.19
    # the precision that ran is recorded (cpu-smoke: float32, as the authors' code) and is no difference
    assert r["precision"] == {"autocast": None, "tf32": False, "channels_last": False, "compiled": False}
    assert "amp" not in r["preset_diff"] and "channels_last" not in r["preset_diff"]


# ------------------------------------------------------------------------------------------------


def test_register_adds_subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"score", "submit", "validate", "leaderboard", "baselines", "shuffle"} <= set(sub.choices)
    args = parser.parse_args(["submit", "x", "--root", "r", "--seeds", "0", "1", "2"])
    assert args.seeds == [0, 1, 2] and args.variant == "cifar10s" and args.preset == "paper"
    assert args.func.__name__ == "cmd_score"
