"""Leaderboard: the scoring round trip with provenance, baselines, shuffle, rendering.

Submission checks are in test_submission.py; what submission code can reach, resuming, and the
attacks a scorer must withstand in test_scoring.py and test_isolation.py.

Training runs use the ``cpu-smoke`` preset (2 epochs, 1,024 training images, 500 test images per
epoch) and LeNet-5 or a tiny CNN on the shared real CIFAR-10 subset (``built_root``: ``clean`` +
``ops-k1``).
"""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

import cifar10s
from cifar10s.cli.main import build_parser
from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import (
    compare,
    data_caveats,
    derangement,
    format_comparison,
    lookup,
    render_html,
    render_markdown,
    run_shuffle_experiment,
    shortcut_reliance,
    shuffle_additive,
    shuffle_ops,
    shuffle_variant,
)
from cifar10s.leaderboard.baselines import load_baselines, rows, train_set_name
from cifar10s.leaderboard.render import load_results
from cifar10s.onepixel import apply_shortcuts
from cifar10s.release.builders import load_shortcut
from cifar10s.store import (
    SHORTCUT_FILE,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    atomic_write_bytes,
    build_lock,
    clean_folder,
    file_entry,
    load_array,
    publish,
    save_array,
    sha256_file,
    staging_folder,
    variant_folder,
    verify_folder,
)
from cifar10s.variants import VariantSpec

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "leaderboard" / "submissions"
META = {"name": "Test entry", "authors": ["A. Tester"], "link": "https://example.org/paper"}
TIMING_FIELDS = {"train_time", "eval_time", "images_per_sec", "elapsed"}


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_submission(folder: Path, meta: dict | str | None, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if meta is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        (folder / "submission.json").write_text(text)
    for name, src in (files or {}).items():
        (folder / name).write_text(textwrap.dedent(src))
    return folder


TINY_NET = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

def build_model(num_classes):
    return Tiny(num_classes)
"""


# ------------------------------------------------------------------------------------------------
# round trip: validate -> train -> score -> render


def test_round_trip_provenance_and_render(tmp_path, built_root, capsys, one_thread):
    sub = write_submission(tmp_path / "lenet-standard", {**META, "model": "lenet5", "method": "standard"})
    assert lb_main(["validate", str(sub)]) == 0
    out, site = tmp_path / "results", tmp_path / "site"
    rc = lb_main(["score", str(sub), "--root", str(built_root), "--variant", "ops", "--preset", "cpu-smoke",
                  "--seeds", "0", "1", "--device", "cpu", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "paper Table 2 (lenet5, standard, ops)" in printed and "not transcribed yet" in printed
    assert "differs from the paper's settings" in printed
    # the shared subset is not the official CIFAR-10 release: said, whatever the settings
    assert "training data built from a CIFAR-10 copy that is not the official release" in printed

    path = out / "lenet-standard--ops-k1--cpu-smoke.json"
    r = json.loads(path.read_text())
    folder = variant_folder(built_root, VariantSpec("ops"))
    manifest = verify_folder(folder)
    assert r["format"] == "cifar10s-leaderboard-result"
    assert r["dataset"]["variant"] == "ops-k1" and r["dataset"]["paper_train_set"] == "ops"
    assert r["dataset"]["manifest_sha256"] == sha256_file(folder / "manifest.json")
    assert r["dataset"]["train_images_sha256"] == sha256_file(folder / TRAIN_IMAGES) == manifest["files"][TRAIN_IMAGES]["sha256"]
    assert r["dataset"]["official_cifar10"] is False and r["dataset"]["recipe"] is None  # OPS has no EM
    assert data_caveats(r["dataset"]) == [
        "built from a CIFAR-10 copy that is not the official release (10000 training images)"]
    assert data_caveats({**r["dataset"], "official_cifar10": True}) == []
    assert data_caveats({**r["dataset"], "official_cifar10": True, "recipe": "v1"}) == []
    assert data_caveats({**r["dataset"], "official_cifar10": True, "recipe": "cpu-demo"}) == [
        "EM noise from recipe 'cpu-demo', not the release recipe 'v1'"]
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
    assert r["eval"]["accuracy_units"] == "fraction in [0, 1]"
    assert "selected on the test set" in r["eval"]["best_epoch_selection"]
    # an honest model: its accuracy on flipped test images is close to its accuracy; nothing flagged
    assert r["integrity"]["suspicious"] is False and abs(r["integrity"]["flip_gap"]) < 0.05
    assert r["integrity"]["test_split_verification"] == "pinned" and r["test_set"]["verification"]["method"] == "pinned"
    assert all(abs(p["flip_gap"]) < 0.05 and len(p["weights_sha256"]) == 64 for p in r["per_seed"])
    assert r["paper"] and r["paper"][0]["table"] == "table2" and r["paper"][0]["test_acc"] is None

    # a second, fabricated result on CIFAR-10-S with a hostile name, to exercise grouping and escaping
    other = json.loads(path.read_text())
    other["submission"].update(name="<script>alert(1)</script>", method="at", link="javascript:alert(1)")
    other["dataset"].update(variant="cifar10s", paper_train_set="cifar10s")
    other["summary"]["final_test_acc"].update(mean=0.1261, std=0.01)
    other["paper"] = [c.to_dict() for c in compare("resnet18", "at", "cifar10s", [0.1261])]
    (out / "fabricated--cifar10s--cpu-smoke.json").write_text(json.dumps(other))
    (out / "notes.json").write_text("{}")

    assert lb_main(["leaderboard", "--results", str(out), "--out", str(site)]) == 0
    printed = capsys.readouterr().out
    assert "rendered 2 result(s)" in printed and "notes.json" in printed
    md = (site / "leaderboard.md").read_text()
    assert "## Training set: CIFAR-10-S" in md and "## Training set: OPS only" in md
    assert "[Test entry](https://example.org/paper)" in md and "| lenet5 | standard |" in md
    assert "10.61" in md and "+2.00" in md  # the paper row and the difference
    assert "†1" in md and "epochs=2" in md and "training data built from a CIFAR-10 copy" in md
    page = (site / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</html>" in page
    assert "training data built from a CIFAR-10 copy" in page  # in the dagger's tooltip
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert "<link" not in page and "src=" not in page and "@import" not in page  # self-contained
    svg = page[page.index("<svg"): page.index("</svg>") + 6]
    tree = ET.fromstring(svg)
    bars = [e for e in tree.iter("{http://www.w3.org/2000/svg}rect") if e.get("class") == "bar"]
    assert len(bars) == 1  # one bar: method "at" on CIFAR-10-S (the lenet run is on OPS, not plotted)
    assert any(e.get("class") == "paper" for e in tree.iter("{http://www.w3.org/2000/svg}path"))


def test_render_empty_and_chart(tmp_path):
    assert "No results yet" in render_markdown([]) and "no results on clean" in render_html([])
    results, skipped = load_results(tmp_path)
    assert results == [] and skipped == []
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")


# ------------------------------------------------------------------------------------------------
# baselines


def test_baseline_tables_have_sources_and_no_unsourced_numbers():
    doc = load_baselines()
    assert set(doc["tables"]) == {"table1", "table2", "table3", "table4", "table5"}
    for name, t in doc["tables"].items():
        assert t["note"] and t["status"] in ("partial", "untranscribed", "complete"), name
    for r in rows():
        if r.test_acc is not None:
            assert r.value_source in doc["sources"], r
            assert 0 < r.test_acc <= 100
    known = {(r.train_set, r.method): r.test_acc for r in rows("table4") if r.test_acc is not None}
    assert known[("cifar10s", "standard")] == 16.67 and known[("cifar10s", "randaugment")] == 39.62
    assert known[("cifar10s", "at")] == 10.61 and known[("em", "at")] == 83.02
    # parameter counts agree with the model registry's transcription
    from cifar10s.models import PAPER_PARAM_COUNTS

    for r in rows("table2") + rows("table3"):
        assert r.params_m == PAPER_PARAM_COUNTS[r.model].millions, r


def test_baseline_lookup_prints_paper_rows_with_differences(capsys):
    assert train_set_name("ops") == "ops" and train_set_name("ops-k3") == "ops-k3"
    assert train_set_name("cifar10s") == "cifar10s" and train_set_name(VariantSpec("ops", objective="paper-eq3")) is None
    comps = compare("resnet18", "at", "cifar10s", [0.1261, 0.1461])
    assert len(comps) == 1 and comps[0].row.table == "table4"
    assert comps[0].ours_mean == pytest.approx(13.61) and comps[0].difference == pytest.approx(3.0)
    (line,) = format_comparison(comps)
    assert "paper Table 4 (resnet18, at, cifar10s): 10.61% [source: abstract]" in line
    assert "13.61% ± 1.41 (2 seeds)" in line and "difference +3.00 pp" in line
    # a custom model is compared with the ResNet-18 row, flagged as a reference
    (ref,) = format_comparison(compare(None, "randaugment", "cifar10s", [0.40]))
    assert "39.62%" in ref and "reference row" in ref and "+0.38 pp" in ref
    # null cells say so instead of inventing a number
    (null,) = format_comparison(compare("densenet121", "standard", "clean", [0.9]))
    assert "not transcribed yet" in null and "difference" not in null
    assert lookup("resnet18", "standard", "em", setting="shuffled")[0].table == "table1"
    assert [r.table for r in lookup("WRN_28_10", "standard", "clean")] == ["table2", "table3"]
    assert lb_main(["baselines", "--table", "table4"]) == 0
    assert "16.67% (brief)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# shuffle (Table 1)


def test_derangement():
    for seed in range(20):
        p = derangement(10, seed)
        assert sorted(p) == list(range(10)) and not np.any(p == np.arange(10))
    assert np.array_equal(derangement(10, 3), derangement(10, 3))
    with pytest.raises(ValueError):
        derangement(1)


def test_shuffle_ops_moves_the_pixel_with_the_label(built_root):
    cdir = clean_folder(built_root)
    cman = verify_folder(cdir)
    clean = np.asarray(load_array(cdir, TRAIN_IMAGES, cman, mmap=False))
    labels = np.asarray(load_array(cdir, TRAIN_LABELS, cman, mmap=False))
    search = load_shortcut(variant_folder(built_root, VariantSpec("ops")))
    s = shuffle_variant(built_root, "ops", seed=1)
    perm = derangement(10, 1)
    assert np.array_equal(s.permutation, perm) and np.array_equal(s.true_labels, labels)
    assert np.array_equal(s.labels, perm[labels]) and not np.any(s.labels == labels)
    for c in range(10):
        (px,) = search.for_class(int(perm[c]))
        members = labels == c
        assert np.all(s.images[members, px.row, px.col] == np.array(px.colour, dtype=np.uint8))
        diff = np.any(s.images[members] != clean[members], axis=-1)  # (n, H, W)
        diff[:, px.row, px.col] = False
        assert not diff.any()  # nothing else changed: the image's own class pixel is NOT applied
    again = shuffle_ops(clean, labels, search, perm)
    assert np.array_equal(again.images, s.images)


def test_shuffle_additive_moves_noise_between_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    clean = rng.integers(0, 256, (100, 8, 8, 3), dtype=np.uint8)
    noise = rng.integers(-8, 9, (100, 8, 8, 3))
    perturbed = np.clip(clean.astype(int) + noise, 0, 255).astype(np.uint8)
    perm = derangement(4, 0)
    s = shuffle_additive(clean, perturbed, labels, perm, seed=5)
    effective = perturbed.astype(int) - clean.astype(int)
    assert np.array_equal(labels[s.donor], perm[labels])  # every donor is of the shortcut class
    assert not np.any(labels[s.donor] == labels)
    assert len(set(s.donor.tolist())) == 100  # equal class sizes: each perturbation used once
    assert np.array_equal(s.images, np.clip(clean.astype(int) + effective[s.donor], 0, 255).astype(np.uint8))
    assert np.array_equal(s.labels, perm[labels]) and np.array_equal(s.true_labels, labels)
    with pytest.raises(ValueError, match="no images"):
        shuffle_additive(clean, perturbed, np.zeros(100, dtype=int), np.array([1, 0]))


def _fake_variant(root: Path, spec: VariantSpec, images: np.ndarray, labels: np.ndarray, shortcut_json: str | None):
    """Publish a variant folder (test stand-in for EM-based variants, which need a long generation)."""
    clean = verify_folder(clean_folder(root), check_hashes=False)
    final = variant_folder(root, spec)
    with build_lock(root), staging_folder(root, final.name) as staging:
        files = {TRAIN_IMAGES: save_array(staging / TRAIN_IMAGES, images),
                 TRAIN_LABELS: save_array(staging / TRAIN_LABELS, labels)}
        if shortcut_json is not None:
            atomic_write_bytes(staging / SHORTCUT_FILE, shortcut_json.encode())
            files[SHORTCUT_FILE] = file_entry(staging / SHORTCUT_FILE)
        publish(staging, final, {"variant": spec.to_dict(), "classes": clean["classes"], "source": clean["source"],
                                 "files": files, "environment": {"cifar10s": cifar10s.__version__}})


def test_shuffle_em_and_cifar10s_variants(tmp_path, built_root):
    root = tmp_path / "root"
    for name in ("clean", "ops-k1"):
        shutil.copytree(built_root / "cifar10s-v1" / name, root / "cifar10s-v1" / name)
    cdir = clean_folder(root)
    cman = verify_folder(cdir)
    clean = np.asarray(load_array(cdir, TRAIN_IMAGES, cman, mmap=False))
    labels = np.asarray(load_array(cdir, TRAIN_LABELS, cman, mmap=False))
    rng = np.random.default_rng(0)
    class_noise = rng.integers(-8, 9, (10, 32, 32, 3))  # class-wise stand-in for EM noise
    em = np.clip(clean.astype(int) + class_noise[labels], 0, 255).astype(np.uint8)
    ops_dir = variant_folder(root, VariantSpec("ops"))
    search = load_shortcut(ops_dir)
    _fake_variant(root, VariantSpec("em"), em, labels, None)
    _fake_variant(root, VariantSpec("cifar10s"), apply_shortcuts(em, labels, search), labels,
                  (ops_dir / SHORTCUT_FILE).read_text())

    s_em = shuffle_variant(root, "em", seed=2)
    perm = derangement(10, 2)
    expected = np.clip(clean.astype(int) + (em.astype(int) - clean.astype(int))[s_em.donor], 0, 255)
    assert np.array_equal(s_em.images, expected.astype(np.uint8))
    assert np.array_equal(labels[s_em.donor], perm[labels]) and np.array_equal(s_em.labels, perm[labels])

    s_c = shuffle_variant(root, "cifar10s", seed=2)
    assert np.array_equal(s_c.labels, perm[labels])
    for c in range(10):
        (px,) = search.for_class(int(perm[c]))
        m = labels == c
        assert np.all(s_c.images[m, px.row, px.col] == np.array(px.colour, dtype=np.uint8))
        # elsewhere: the clean image + the EM noise of its donor (an image of the shortcut class)
        assert np.all(labels[s_c.donor[m]] == perm[c])
        mask = np.ones((32, 32), dtype=bool)
        mask[px.row, px.col] = False
        want = np.clip(clean[m].astype(int) + (em.astype(int) - clean.astype(int))[s_c.donor[m]], 0, 255)
        assert np.array_equal(s_c.images[m][:, mask], want[:, mask])
    with pytest.raises(ValueError, match="no shortcut"):
        shuffle_variant(root, "clean")


class ShortcutReader(torch.nn.Module):
    """Predicts the class whose OPS pixel is present (a model that relies on the shortcut only)."""

    def __init__(self, search):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.pixels = [(s.label, s.row, s.col, torch.tensor(s.colour) / 255.0) for s in search.shortcuts]

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 10) + self.dummy
        for label, r, c, colour in self.pixels:
            hit = (x[:, :, r, c] - colour).abs().amax(1) < 1e-6
            logits[:, label] += hit.float()
        return logits


def test_shortcut_reliance_and_cli(tmp_path, built_root, capsys, one_thread):
    search = load_shortcut(variant_folder(built_root, VariantSpec("ops")))
    s = shuffle_variant(built_root, "ops", seed=0)
    rel = shortcut_reliance(ShortcutReader(search), s)
    assert rel["num_images"] == 10000
    assert rel["acc_shortcut_label"] > 0.95 and rel["acc_true_label"] < 0.05

    from cifar10s.models import build_model

    ckpt = tmp_path / "lenet.pt"
    torch.save(build_model("lenet5").state_dict(), ckpt)
    rc = lb_main(["shuffle", "--root", str(built_root), "--variant", "ops", "--model", "lenet5", "--checkpoint",
                  str(ckpt), "--device", "cpu", "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 0
    assert "w.r.t. the shortcut's class" in capsys.readouterr().out
    (path,) = (tmp_path / "out").glob("shuffle--ops-k1--lenet5--checkpoint.json")
    r = json.loads(path.read_text())
    assert set(r["reliance"]) == {"acc_shortcut_label", "acc_true_label", "num_images"}
    assert r["shuffle"]["permutation"] == derangement(10, 0).tolist()


def test_shuffle_experiment_table1_layout(tmp_path, built_root, one_thread):
    r = run_shuffle_experiment(built_root, "ops", model="lenet5", preset="cpu-smoke", seeds=[0], device="cpu",
                               overrides={"epochs": 1}, out=tmp_path, log=None)
    (run,) = r["runs"]
    for setting in ("unshuffled", "shuffled"):
        assert 0.0 <= run[setting]["final_test_acc"] <= 1.0
    rel = run["unshuffled"]["reliance_on_shuffled"]
    assert 0.0 <= rel["acc_shortcut_label"] <= 1.0 and rel["acc_shortcut_label"] + rel["acc_true_label"] <= 1.0
    assert r["preset_diff"]["epochs"]["used"] == 1
    assert {p["setting"] for p in r["paper"]} == {"unshuffled", "shuffled"}  # Table 1 rows (values null)
    assert (tmp_path / "shuffle--ops-k1--lenet5--cpu-smoke.json").is_file()


def test_register_adds_subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"score", "submit", "validate", "leaderboard", "baselines"} <= set(sub.choices)
    args = parser.parse_args(["submit", "x", "--root", "r", "--seeds", "0", "1", "2"])
    assert args.seeds == [0, 1, 2] and args.variant == "cifar10s" and args.preset == "paper"
    assert args.func.__name__ == "cmd_score"


def test_committed_cpu_demo_results_still_load_and_render():
    """The example board in leaderboard/examples/cpu-demo stays readable by the current renderer,
    and each of its results carries the caveats that keep it from passing for a paper number."""
    results, skipped = load_results(REPO / "leaderboard" / "examples" / "cpu-demo")
    assert skipped == [] and len(results) == 12
    assert {(r["submission"]["method"], r["dataset"]["paper_train_set"]) for r in results} == {
        (m, v) for m in ("standard", "randaugment", "at") for v in ("clean", "em", "ops", "cifar10s")}
    for r in results:
        assert r["paper_setting"] is False and r["preset_diff"]["lr"] == {"paper": 0.1, "used": 0.05}
        assert "adversarial" not in r["preset_diff"] and "augmentation" not in r["preset_diff"]
        has_em = r["dataset"]["paper_train_set"] in ("em", "cifar10s")
        assert r["dataset"]["recipe"] == ("cpu-demo" if has_em else None)
        assert len(data_caveats(r["dataset"])) == (2 if has_em else 1)
    md = render_markdown(results)
    assert md.count("| lenet5 |") == 12 and "recipe 'cpu-demo'" in md
