"""Table 1's shuffle experiment: per-image shuffled evaluation sets, their export, the runs and the CLI.

Uses the shared real CIFAR-10 subset (``built_root``: ``clean`` + ``ops-k1``, 10,000 training
images). EM-based variants are stood in for by a class-wise random noise published as ``em``
(and ``cifar10s`` = that noise + the OPS pixels), because real EM generation is too slow here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import cifar10s
from cifar10s.cli.main import build_parser, main
from cifar10s.dataset import CIFAR10S
from cifar10s.table1.shuffle import (
    EXPORT_FILES,
    export_shuffled,
    load_shuffled,
    shuffle_permutation,
    shuffle_perturbations,
    shuffled_variant,
)
from cifar10s.table1.run import PAPER_TABLE1, format_table1, run_table1
from cifar10s.onepixel import apply_shortcuts
from cifar10s.release.builders import (
    SHORTCUT_FILE,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    clean_folder,
    load_shortcut,
    variant_folder,
)
from cifar10s.store import (
    MANIFEST,
    IntegrityError,
    atomic_write_bytes,
    build_lock,
    file_entry,
    publish,
    save_array,
    sha256_file,
    staging_folder,
    verify_folder,
)
from cifar10s.training.evaluation import evaluate
from cifar10s.variants import VariantSpec

N = 10_000  # images in the shared subset, 1,000 per class

# Short, deterministic CPU training of LeNet-5 without crop + flip (which would keep it from
# learning anything this fast): 4 epochs of AdamW on the 10,000 images. Trained on clean data it
# reaches ~45% on its training set; trained on OPS data it learns the shortcut pixel.
SMOKE = {"epochs": 4, "augmentation": "none", "train_subset": None, "optimizer": "adamw", "lr": 0.002,
         "weight_decay": 0.0, "schedule": "constant"}


def _clean(root: Path) -> tuple[np.ndarray, np.ndarray]:
    ds = CIFAR10S(root, train=True, variant="clean", mmap=False)
    return ds.data, np.asarray(ds.targets, dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# the shuffled set


def test_permutation_is_per_image_and_seeded(built_root):
    p0, p0_again, p1 = shuffle_permutation(N, 0), shuffle_permutation(N, 0), shuffle_permutation(N, 1)
    assert p0.dtype == np.int64 and np.array_equal(np.sort(p0), np.arange(N))
    assert np.array_equal(p0, p0_again) and not np.array_equal(p0, p1)
    clean, labels = _clean(built_root)
    moved = labels[p0]
    for c in range(10):
        # not a class-level permutation: the images of one class receive labels of every class,
        # about 100 of each (a class map would give them all one label)
        counts = np.bincount(moved[labels == c], minlength=10)
        assert counts.min() > 50 and counts.max() < 160, counts
    s = shuffle_perturbations(clean, clean, labels, 0)
    assert np.array_equal(s.permutation, p0) and np.array_equal(s.labels, moved)


def test_additive_move_is_exact_int16_and_clipped():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    clean = rng.integers(0, 256, (200, 4, 4, 3), dtype=np.uint8)
    clean[:50] = rng.choice(np.array([0, 1, 254, 255], dtype=np.uint8), (50, 4, 4, 3))  # clipping on both ends
    noise = rng.integers(-8, 9, clean.shape)
    perturbed = np.clip(clean.astype(int) + noise, 0, 255).astype(np.uint8)
    s = shuffle_perturbations(clean, perturbed, labels, seed=7)
    perm = shuffle_permutation(200, 7)
    assert np.array_equal(s.permutation, perm) and np.array_equal(s.labels, labels[perm])
    assert s.images.dtype == np.uint8 and s.labels.dtype == np.int64
    for j in range(200):  # reference, one image at a time in Python ints
        i = int(perm[j])
        want = np.clip(clean[j].astype(int) + perturbed[i].astype(int) - clean[i].astype(int), 0, 255)
        assert np.array_equal(s.images[j], want)
    assert np.array_equal(shuffle_perturbations(clean, clean, labels, 7).images, clean)  # no perturbation, no change
    with pytest.raises(ValueError, match="perturbed images must be uint8"):
        shuffle_perturbations(clean, perturbed.astype(np.int16), labels, 0)
    with pytest.raises(ValueError, match="labels must have shape"):
        shuffle_perturbations(clean, perturbed, labels[:-1], 0)


def test_ops_pixel_moves_with_its_label(built_root):
    clean, labels = _clean(built_root)
    search = load_shortcut(variant_folder(built_root, VariantSpec("ops")))
    s = shuffled_variant(built_root, "ops", seed=3)
    assert np.array_equal(s.labels, labels[shuffle_permutation(N, 3)])
    assert np.mean(s.labels != labels) > 0.85  # most images now carry another class's label
    changed = np.any(s.images != clean, axis=-1)  # (N, H, W)
    for k in range(10):
        (px,) = search.for_class(k)
        carriers = s.labels == k
        # the pixel of the moved label's class holds that class's OPS colour, whatever the image
        assert np.all(s.images[carriers, px.row, px.col] == np.array(px.colour, dtype=np.uint8))
        changed[carriers, px.row, px.col] = False
    assert not changed.any()  # nothing else differs from the clean image (no own-class pixel)


def test_em_and_cifar10s_variants(tmp_path, built_root):
    root = tmp_path / "root"
    for name in ("clean", "ops-k1"):
        shutil.copytree(built_root / "cifar10s-v1" / name, root / "cifar10s-v1" / name)
    clean, labels = _clean(root)
    search = load_shortcut(variant_folder(root, VariantSpec("ops")))
    em = _publish_fake_em(root, clean, labels, search)
    perm = shuffle_permutation(N, 2)
    additive = np.clip(clean.astype(int) + em.astype(int)[perm] - clean.astype(int)[perm], 0, 255).astype(np.uint8)
    s_em = shuffled_variant(root, "em", seed=2)
    assert np.array_equal(s_em.images, additive) and np.array_equal(s_em.labels, labels[perm])
    s_c = shuffled_variant(root, "cifar10s", seed=2)
    assert np.array_equal(s_c.images, apply_shortcuts(additive, labels[perm], search))
    assert np.array_equal(s_c.labels, labels[perm])
    with pytest.raises(ValueError, match="no perturbation"):
        shuffled_variant(root, "clean")


def _publish_fake_em(root: Path, clean: np.ndarray, labels: np.ndarray, search) -> np.ndarray:
    """Publish ``em`` (class-wise noise in [-8, 8]) and ``cifar10s`` (+ OPS) folders; return the EM images."""
    noise = np.random.default_rng(0).integers(-8, 9, (10, 32, 32, 3))
    em = np.clip(clean.astype(int) + noise[labels], 0, 255).astype(np.uint8)
    cman = verify_folder(clean_folder(root), check_hashes=False)
    shortcut_json = (variant_folder(root, VariantSpec("ops")) / SHORTCUT_FILE).read_text()
    for spec, images, extra in ((VariantSpec("em"), em, None),
                                (VariantSpec("cifar10s"), apply_shortcuts(em, labels, search), shortcut_json)):
        final = variant_folder(root, spec)
        with build_lock(root), staging_folder(root, final.name) as staging:
            files = {TRAIN_IMAGES: save_array(staging / TRAIN_IMAGES, images),
                     TRAIN_LABELS: save_array(staging / TRAIN_LABELS, labels.astype(np.int64))}
            if extra is not None:
                atomic_write_bytes(staging / SHORTCUT_FILE, extra.encode())
                files[SHORTCUT_FILE] = file_entry(staging / SHORTCUT_FILE)
            publish(staging, final, {"variant": spec.to_dict(), "classes": cman["classes"], "source": cman["source"],
                                     "files": files, "environment": {"cifar10s": cifar10s.__version__}})
    return em


class ShortcutReader(torch.nn.Module):
    """Predicts the class whose OPS pixel and colour are present: a model that follows the shortcut only."""

    def __init__(self, search):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.pixels = [(s.label, s.row, s.col, torch.tensor(s.colour) / 255.0) for s in search.shortcuts]

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 10) + self.dummy
        for label, r, c, colour in self.pixels:
            logits[:, label] += ((x[:, :, r, c] - colour).abs().amax(1) < 1e-6).float()
        return logits


def test_a_shortcut_follower_scores_far_above_chance(built_root):
    clean, labels = _clean(built_root)
    reader = ShortcutReader(load_shortcut(variant_folder(built_root, VariantSpec("ops"))))
    s = shuffled_variant(built_root, "ops", seed=0)
    assert evaluate(reader, s.images, s.labels, device="cpu") > 0.95
    assert evaluate(reader, clean, labels, device="cpu") < 0.3  # it cannot read images


# ------------------------------------------------------------------------------------------------
# export


def test_export_writes_arrays_and_manifest(tmp_path, built_root):
    out = export_shuffled(built_root, "ops", tmp_path / "x", seed=5)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["kind"] == "table1-shuffled-eval-set" and manifest["seed"] == 5
    assert manifest["variant_folder"] == "ops-k1" and manifest["num_images"] == N
    assert VariantSpec(**manifest["variant"]).folder_name == "ops-k1"
    assert manifest["made_from"]["variant_manifest_sha256"] == sha256_file(
        variant_folder(built_root, VariantSpec("ops")) / MANIFEST)
    assert set(manifest["files"]) == set(EXPORT_FILES)
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(out / name)
    images, labels, perm = (np.load(out / name, allow_pickle=False) for name in EXPORT_FILES)
    assert images.shape == (N, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == perm.shape == (N,) and labels.dtype == perm.dtype == np.int64
    s, _ = load_shuffled(out)
    ref = shuffled_variant(built_root, "ops", seed=5)
    for got, want in zip(s, ref):
        assert np.array_equal(got, want)
    # a re-export with another seed replaces every file; a damaged file is caught on load
    export_shuffled(built_root, "ops", out, seed=6)
    assert not np.array_equal(load_shuffled(out)[0].permutation, ref.permutation)
    arr = np.load(out / "labels.npy")
    np.save(out / "labels.npy", (arr + 1) % 10)
    with pytest.raises(IntegrityError, match="sha256"):
        load_shuffled(out)
    with pytest.raises(ValueError, match="no perturbation"):
        export_shuffled(built_root, "clean", tmp_path / "y")


def test_cli_export_end_to_end(tmp_path, built_root, capsys):
    assert main(["shuffle", "--root", str(built_root), "--variant", "ops", "--export", str(tmp_path / "ex"),
                 "--shuffle-seed", "2"]) == 0
    assert "ops-k1" in capsys.readouterr().out
    s, manifest = load_shuffled(tmp_path / "ex" / "ops-k1")
    assert manifest["seed"] == 2 and np.array_equal(s.permutation, shuffle_permutation(N, 2))
    assert main(["shuffle", "--root", str(built_root), "--variant", "clean", "--export", str(tmp_path / "e2")]) == 1  # a runtime error (the library refuses the variant), not a usage error
    assert "no perturbation" in capsys.readouterr().err
    assert main(["shuffle", "--root", str(built_root), "--variant", "em", "--export", str(tmp_path / "e3")]) == 1
    assert "cifar10s build --variant em" in capsys.readouterr().err


def test_cli_help_documents_every_flag_with_default_and_example():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    p = sub.choices["shuffle"]
    for action in p._actions:
        if action.dest not in ("help", "root"):
            assert "default" in (action.help or ""), action.dest
    text = p.format_help()
    assert "examples:" in text and "cifar10s shuffle --root data" in text and "--export DIR" in text


# ------------------------------------------------------------------------------------------------
# the Table 1 run


@pytest.fixture(scope="module")
def table1(tmp_path_factory, built_root):
    """LeNet-5 trained on clean and on OPS data (2 epochs, CPU), evaluated on the Table 1 sets."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("table1")
    lines: list[str] = []
    try:
        result = run_table1(built_root, variants=["ops"], model="lenet5", preset="cpu-smoke", seeds=[0],
                            device="cpu", out=out, overrides=SMOKE, log=lines.append)
    finally:
        torch.set_num_threads(n)
    return result, out, "\n".join(lines)


def test_normal_model_is_at_chance_and_ops_model_far_above(table1):
    result, _, _ = table1
    normal, ops = result["accuracy"]["clean"], result["accuracy"]["ops-k1"]
    # The normally trained model learned something from the images (chance is 0.10)...
    assert normal["clean"]["mean"] > 0.3 and normal["ops-k1"]["mean"] > 0.3
    # ...which says nothing about the moved labels. For a model that ignores the perturbation,
    # each prediction hits the moved label with probability 0.1 (balanced classes), so its
    # accuracy on 10,000 images is binomial with sd sqrt(0.1 * 0.9 / 10000) = 0.003: +-0.02 is
    # about 6.7 sd, and a set whose labels had not moved would score like the training set.
    assert abs(normal["shuffled-ops-k1"]["mean"] - 0.10) < 0.02
    # The OPS-trained model follows the pixel: far above chance on the shuffled set (> 30 sd).
    assert ops["shuffled-ops-k1"]["mean"] > 0.2 and ops["ops-k1"]["mean"] > ops["clean"]["mean"]


def test_table1_layout_json_and_print(table1):
    result, out, printed = table1
    assert result["train_sets"] == ["clean", "ops-k1"]
    assert result["eval_sets"] == ["clean", "ops-k1", "shuffled-ops-k1", "clean-test"]
    on_disk = json.loads((out / "table1--lenet5--standard--cpu-smoke.json").read_text())
    assert on_disk["accuracy"] == result["accuracy"] and on_disk["format"] == "cifar10s-table1-result"
    assert on_disk["preset_diff"]["epochs"]["used"] == 4 and on_disk["overrides"] == SMOKE
    assert on_disk["shuffle"]["variants"]["ops-k1"]["permutation_sha256"]
    data = on_disk["data"]  # each set's folder, as the scorer's provenance module describes a loaded split
    assert all(set(data[s]) == {"manifest_sha256", "source_fingerprint", "source_content_fingerprint", "source_kind",
                                "official_cifar10", "num_images"}
               for s in ("clean", "ops-k1", "clean-test"))
    assert data["clean"]["num_images"] == data["ops-k1"]["num_images"] == N
    assert data["clean-test"]["manifest_sha256"] == data["clean"]["manifest_sha256"]  # the test split is clean/'s
    assert data["ops-k1"]["source_fingerprint"] == data["clean"]["source_fingerprint"]
    for run in result["runs"].values():
        (r,) = run
        assert r["epochs"] == 4 and r["resumed_from_epoch"] == 0
    # printed beside Table 1's numbers for the same cells
    assert format_table1(result) in printed
    row = next(line for line in printed.splitlines() if line.startswith("shuffled ops-k1 training"))
    assert f"[{PAPER_TABLE1['shuffled-ops-k1']['clean']:.2f}]" in row and "[72.43]" in row
    assert "clean test (not in Table 1)" in printed and "reference only" in printed


def test_cli_loads_finished_runs_and_checkpoints(tmp_path, table1, built_root, capsys, one_thread):
    """Finished runs in --workdir are loaded, not retrained, and --checkpoint evaluates given
    weights: both give the numbers of the original run."""
    result, out, _ = table1
    ops_ckpt = Path(result["runs"]["ops-k1"][0]["workdir"]) / "checkpoint.pt"
    sets = [arg for k, v in SMOKE.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    rc = main(["shuffle", "--root", str(built_root), "--variant", "ops", "--model", "lenet5", "--preset", "cpu-smoke",
               "--device", "cpu", "--out", str(tmp_path), "--workdir", str(out / ".work"), "--quiet",
               "--checkpoint", f"ops-k1={ops_ckpt}", *sets])
    assert rc == 0 and "evaluating data" in capsys.readouterr().out
    again = json.loads((tmp_path / "table1--lenet5--standard--cpu-smoke.json").read_text())
    assert again["accuracy"] == result["accuracy"]
    assert again["runs"]["clean"][0]["resumed_from_epoch"] == 4  # loaded from the work folder
    assert again["runs"]["ops-k1"][0]["checkpoint"] == str(ops_ckpt)


def test_run_table1_rejects_bad_arguments(built_root):
    with pytest.raises(ValueError, match="no perturbation"):
        run_table1(built_root, variants=["clean"], log=None)
    with pytest.raises(ValueError, match="twice"):
        run_table1(built_root, variants=["ops", "ops-k1"], log=None)
    with pytest.raises(ValueError, match="single seed"):
        run_table1(built_root, variants=["ops"], seeds=[0, 1], checkpoints={"clean": "x.pt"}, log=None)
    with pytest.raises(ValueError, match="not a training set"):
        run_table1(built_root, variants=["ops"], checkpoints={"em": "x.pt"}, log=None)
