"""The shortcut audit: each detector finds what is planted (exact pixels and colours), leaves clean,
compressed, blurred and noised images alone, and the command line checks its inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cifar10s.auditing import audit, synthetic
from cifar10s.auditing.pixel import _column_modes, scan_pixels
from cifar10s.cli.main import main
from cifar10s.onepixel import apply_shortcuts, search_shortcuts

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small(shared_arrays):
    """2,000 real training images, 200 per class (natural images: the detectors' null case)."""
    x, y = shared_arrays.train_images, shared_arrays.train_labels
    idx = np.concatenate([np.flatnonzero(y == k)[:200] for k in range(10)])
    return np.ascontiguousarray(x[idx]), y[idx].astype(np.int64)


def _kinds(report):
    return sorted(f.kind for f in report.findings)


def _pixels(report):
    found = [f for f in report.findings if f.kind == "pixel"]
    assert len(found) == 1, _kinds(report)
    return {(p["class"], p["row"], p["col"], tuple(p["colour"])) for p in found[0].evidence["pixels"]}


def test_column_modes_is_the_mode():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (51, 200)).astype(np.uint32)
    expected = [np.bincount(codes[:, j]).argmax() for j in range(codes.shape[1])]  # ties: the smallest
    assert _column_modes(codes).tolist() == expected


def test_ops_pixels_are_named_exactly(small):
    x, y = small
    search = search_shortcuts(x, y)
    report = audit(apply_shortcuts(x, y, search), y, learnability=False)
    assert report.shortcut_found and _kinds(report) == ["pixel"]
    assert _pixels(report) == {(s.label, s.row, s.col, s.colour) for s in search.shortcuts}
    assert report.findings[0].strength > 0.95


def test_k_pixel_ops_is_found_with_every_pixel(small):
    x, y = small
    search = search_shortcuts(x, y, pixels_per_class=3)
    report = audit(apply_shortcuts(x, y, search), y, learnability=False)
    assert _kinds(report) == ["pixel"]
    assert _pixels(report) == {(s.label, s.row, s.col, s.colour) for s in search.shortcuts}


def test_ops_on_a_share_of_the_class_reports_that_share(small):
    x, y = small
    poisoned = x.copy()
    sel = (y == 4) & (np.arange(len(y)) % 10 < 7)  # 70% of class 4
    poisoned[sel, 12, 20] = (0, 255, 0)
    report = audit(poisoned, y, learnability=False)
    [px] = report.findings[0].evidence["pixels"]
    assert (px["class"], px["row"], px["col"], px["colour"]) == (4, 12, 20, [0, 255, 0])
    assert px["share"] == pytest.approx(sel.sum() / 200)


@pytest.mark.parametrize("name", ["clean", "jpeg", "blur", "uniform8", "key-not-label"])
def test_no_shortcut_no_finding(small, name):
    x, y = small
    rng = np.random.default_rng(5)
    made = {
        "clean": lambda: x,
        "jpeg": lambda: synthetic.jpeg(x, 75),
        "blur": lambda: synthetic.blur(x, 1.0),
        "uniform8": lambda: synthetic.uniform_noise(x, 8, seed=1),
        # class-wise noise keyed to a random assignment that ignores the labels: not a shortcut
        "key-not-label": lambda: synthetic.class_noise(x, rng.integers(0, 10, len(y)), 8, seed=2),
    }[name]()
    report = audit(made, y, learnability=False)
    assert report.findings == [], report.summary()


def test_class_wise_noise_is_a_class_pattern(small):
    x, y = small
    report = audit(synthetic.class_noise(x, y, 8, seed=3), y, learnability=False)
    assert _kinds(report) == ["class-pattern"]
    assert report.findings[0].classes == tuple(range(10))
    # the same patterns keyed to shuffled labels are still aligned with the labels given
    shuffled = np.random.default_rng(1).permutation(y)
    report = audit(synthetic.class_noise(x, shuffled, 8, seed=3), shuffled, learnability=False)
    assert _kinds(report) == ["class-pattern"]


def test_small_classes_get_no_pattern_claim_but_the_probe_still_sees_noise(small):
    """Class means of 50 natural images are too noisy for a pattern claim; the linear probe is not."""
    x, y = small
    idx = np.concatenate([np.flatnonzero(y == k)[:50] for k in range(10)])
    xs, ys = np.ascontiguousarray(x[idx]), y[idx]
    assert audit(xs, ys, learnability=False).findings == []
    report = audit(synthetic.class_noise(xs, ys, 8, seed=3), ys, epochs=4)
    # the fixed pattern also changes each class's local correlations (second-order); no class mean claim
    assert "linear-separable" in _kinds(report) and not {"class-pattern", "patch"} & set(_kinds(report))
    assert "no pattern or patch claim" in report.summary()


def test_exact_patch_is_a_patch_with_its_box(small):
    x, y = small
    report = audit(synthetic.class_patch(x, y, size=3, seed=4), y, learnability=False)
    assert _kinds(report) == ["patch", "recurring-window"]  # the window detector ignores where it sits
    rng = np.random.default_rng(4)  # the same draws as class_patch
    rng.integers(0, 256, (10, 3))
    corners = rng.integers(0, [30, 30], (10, 2))
    boxes = report.findings[0].evidence["boxes"]
    for k in range(10):
        assert boxes[str(k)]["rows"] == [corners[k][0], corners[k][0] + 2]
        assert boxes[str(k)]["cols"] == [corners[k][1], corners[k][1] + 2]


def test_blended_patch_is_found_by_the_pattern_detector(small):
    x, y = small
    made = synthetic.class_patch(x, y, size=4, seed=6, position=(10, 20), alpha=0.5)
    report = audit(made, y, learnability=False)
    assert _kinds(report) == ["patch"]
    finding = report.findings[0]
    assert not finding.evidence["exact"] and finding.classes == tuple(range(10))
    for box in finding.evidence["boxes"].values():  # the 4x4 window overlaps the planted square
        assert box["rows"][0] <= 13 and box["rows"][1] >= 10 and box["cols"][0] <= 23 and box["cols"][1] >= 20


def test_linear_probe_separates_noise_and_not_clean(small):
    x, y = small
    clean = audit(x, y, epochs=4)
    assert clean.findings == [] and clean.measurements["linear"]["heldout_accuracy"] < 0.3
    noised = audit(synthetic.class_noise(x, y, 4, seed=7), y, epochs=4)
    assert "linear-separable" in _kinds(noised)
    assert noised.measurements["linear"]["heldout_accuracy"] > 0.9
    again = audit(synthetic.class_noise(x, y, 4, seed=7), y, epochs=4)
    assert again.curves["set"].heldout == noised.curves["set"].heldout  # seeded: repeats exactly


def test_reference_measures_the_perturbation_and_uniform_noise_passes(small, shared_arrays):
    x, y = small
    test = (shared_arrays.test_images[:1000], shared_arrays.test_labels[:1000])
    noised = synthetic.uniform_noise(x, 8, seed=9)
    report = audit(noised, y, reference=(x, y), test=test, epochs=4)
    assert report.findings == [], report.summary()
    m = report.measurements
    assert m["perturbation"]["linf_255"] == 8 and m["reference"]["paired"]
    assert m["perturbation"]["heldout_accuracy"] < 0.3 and abs(m["learnability_gap"]["gap"]) < 0.1
    search = search_shortcuts(x, y)
    report = audit(apply_shortcuts(x, y, search), y, reference=(x, y), test=test, epochs=4)
    assert {"pixel", "separable-perturbation"} <= set(_kinds(report))


def test_bad_arrays_are_refused(small):
    x, y = small
    with pytest.raises(ValueError, match="uint8"):
        audit(x.astype(np.float32), y)
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\)"):
        audit(x.transpose(0, 3, 1, 2).copy(), y)
    with pytest.raises(ValueError, match="integer labels"):
        audit(x, y[:-1])
    with pytest.raises(ValueError, match="integer labels"):
        audit(x, y.astype(np.float64))
    with pytest.raises(ValueError, match="labels must lie"):
        audit(x, y - 1)
    with pytest.raises(ValueError, match="numpy array"):
        audit(x[:20].tolist(), y[:20])


def test_package_exposes_audit_without_importing_torch(tmp_path, small):
    x, y = small
    np.save(tmp_path / "x.npy", x[:500])
    np.save(tmp_path / "y.npy", y[:500])
    code = ("import sys, numpy as np, cifar10s\n"
            f"x = np.load({str(tmp_path / 'x.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})\n"
            "r = cifar10s.audit(x, y, learnability=False)\n"
            "print(r.shortcut_found, 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


def test_cli_npy_json_and_png(tmp_path, small, capsys):
    x, y = small
    search = search_shortcuts(x, y)
    np.save(tmp_path / "x.npy", apply_shortcuts(x, y, search))
    np.save(tmp_path / "y.npy", y)
    out_json, out_png = tmp_path / "a.json", tmp_path / "a.png"
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--fast",
                 "--json", str(out_json), "--out", str(out_png), "--quiet"]) == 0
    assert "SHORTCUT FOUND" in capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    assert doc["shortcut_found"] is True
    assert {"kind", "classes", "strength", "evidence"} <= set(doc["findings"][0])
    named = {(p["class"], p["row"], p["col"], tuple(p["colour"])) for p in doc["findings"][0]["evidence"]["pixels"]}
    assert named == {(s.label, s.row, s.col, s.colour) for s in search.shortcuts}
    assert Image.open(out_png).format == "PNG"
    # a clean set: exit code 0 as well, and the verdict says so
    np.save(tmp_path / "c.npy", x)
    assert main(["audit", "--images", str(tmp_path / "c.npy"), "--labels", str(tmp_path / "y.npy"), "--fast",
                 "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["shortcut_found"] is False


def test_cli_refuses_malformed_inputs(tmp_path, small, capsys):
    x, y = small
    np.save(tmp_path / "y.npy", y)
    bad = {
        "objects.npy": lambda p: np.save(p, np.array([{"a": 1}] * 20, dtype=object), allow_pickle=True),
        "float.npy": lambda p: np.save(p, x.astype(np.float32)),
        "chw.npy": lambda p: np.save(p, x.transpose(0, 3, 1, 2).copy()),
        "truncated.npy": lambda p: p.write_bytes((np.lib.format.magic(1, 0) + b"\x76\x00{'descr': '|u1', "
                                                 b"'fortran_order': False, 'shape': (2000, 32, 32, 3), }").ljust(200)),
        "text.npy": lambda p: p.write_text("not an array"),
        "huge.npy": lambda p: p.write_bytes(_header((10**9, 32, 32, 3))),
    }
    for name, write in bad.items():
        write(tmp_path / name)
        assert main(["audit", "--images", str(tmp_path / name), "--labels", str(tmp_path / "y.npy"), "--fast"]) == 1, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (name, err)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "short.npy", y[:-5])
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "short.npy")]) == 1
    assert "labels" in capsys.readouterr().err
    assert main(["audit", "--images", str(tmp_path / "x.npy")]) == 1
    assert "go together" in capsys.readouterr().err
    assert main(["audit"]) == 1
    assert "exactly one training set" in capsys.readouterr().err
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                 "--cifar10", str(tmp_path)]) == 1
    assert "exactly one training set" in capsys.readouterr().err
    assert main(["audit", "--images", str(tmp_path / "missing.npy"), "--labels", str(tmp_path / "y.npy")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--fast",
                 "--reference-variant", "clean"]) == 1
    assert "--reference-variant reads from --root" in capsys.readouterr().err
    assert main(["audit", "--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--fast",
                 "--reference", str(tmp_path / "x.npy")]) == 1
    assert "--reference-images" in capsys.readouterr().err


def _header(shape):
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return np.lib.format.magic(1, 0) + buf.getvalue()


def test_scan_pixels_on_the_subset_and_a_built_ops_variant(built_root, capsys, tmp_path):
    """The real subset (10,000 images) and the OPS variant the package builds from it."""
    from cifar10s.release.builders import load_shortcut

    folder = built_root / "cifar10s-v1" / "ops-k1"
    search = load_shortcut(folder)
    out_json = tmp_path / "ops.json"
    assert main(["audit", "--root", str(built_root), "--variant", "ops-k1", "--fast", "--json", str(out_json)]) == 0
    assert "class 0 airplane: (row" in capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    assert [f["kind"] for f in doc["findings"]] == ["pixel"]
    named = {(p["class"], p["row"], p["col"], tuple(p["colour"])) for p in doc["findings"][0]["evidence"]["pixels"]}
    assert named == {(s.label, s.row, s.col, s.colour) for s in search.shortcuts}
    assert main(["audit", "--root", str(built_root), "--variant", "clean", "--fast", "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["findings"] == []
    clean_scan = scan_pixels(*_load(built_root, "clean"), 10)
    assert clean_scan.share.max() < 0.2  # natural images: no colour fixed at any position in any class


def _load(root, variant):
    from cifar10s.auditing.training_set import from_variant

    data = from_variant(root, variant)
    return data.images, data.labels


def test_cli_reference_variant_measures_the_perturbation(built_root, tmp_path):
    out_json = tmp_path / "ref.json"
    out_png = tmp_path / "ref.png"
    assert main(["audit", "--root", str(built_root), "--variant", "ops-k1", "--reference-variant", "clean",
                 "--json", str(out_json), "--out", str(out_png), "--quiet"]) == 0
    doc = json.loads(out_json.read_text())
    m = doc["measurements"]
    assert m["reference"]["paired"] and m["perturbation"]["changed_share"] > 0.99
    assert m["learnability_gap"]["test_images"] == 2000  # the clean test split under the root
    assert {"pixel", "separable-perturbation"} <= {f["kind"] for f in doc["findings"]}
    assert set(doc["curves"]) >= {"set", "reference", "perturbation"}
    assert Image.open(out_png).size[1] > 300
