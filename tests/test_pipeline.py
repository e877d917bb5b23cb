"""The release pipeline (clean -> OPS -> EM -> CIFAR-10-S), its recipe, caching and verification."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cifar10s import CIFAR10S
from cifar10s.cli.main import main
from cifar10s.release.builders import load_shortcut
from cifar10s.release.pipeline import rebuild
from cifar10s.release.recipe import Recipe, load_recipe
from cifar10s.release.verify import EMTolerance, verify_build
from cifar10s.store import (
    atomic_write_json,
    data_dir,
    read_manifest,
    save_array,
    sha256_file,
    variant_folder,
)
from cifar10s.variants import VariantSpec

REPO = Path(__file__).resolve().parents[1]
# The tiny test recipe stops after 2 rounds on purpose; the builder warns that EM did not converge.
pytestmark = pytest.mark.filterwarnings("ignore:EM stopped after")


def tiny_recipe() -> Recipe:
    """The v1 recipe with a CPU-sized EM (narrow generator, few steps, 2 rounds)."""
    v1 = load_recipe("v1")
    em = dataclasses.replace(v1.em, generator_width=4, batch_size=50, eval_batch_size=100, pgd_steps=2,
                             train_steps=2, max_rounds=2)
    return dataclasses.replace(v1, version="v1-tiny-test", em=em)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    from conftest import make_cifar_archive

    root = tmp_path_factory.mktemp("release")
    archive = make_cifar_archive(root / "cifar-10-python.tar.gz")
    report = rebuild(root, recipe=tiny_recipe(), cifar10=archive, progress=False, allow_unconverged=True)
    assert [s.status for s in report.stages] == ["built"] * 4
    return root


def test_packaged_recipe_is_the_frozen_build_recipe():
    build_copy = json.loads((REPO / "build" / "recipe-v1.json").read_text())
    assert load_recipe("v1").to_dict() == Recipe.from_dict(build_copy).to_dict()
    assert load_recipe(REPO / "build" / "recipe-v1.json") == load_recipe("v1")
    em = load_recipe("v1").em
    assert (em.epsilon, em.step_size, em.train_steps, em.batch_size, em.stop_error) == (8.0, 0.8, 10, 512, 0.01)
    assert em.resolved().pgd_steps == 20 and em.mode == "samplewise" and em.generator_width == 64
    with pytest.raises(ValueError, match="no packaged recipe"):
        load_recipe("v999")
    with pytest.raises(ValueError, match="unknown recipe keys"):
        Recipe.from_dict({**build_copy, "extra": 1})


def test_cpu_demo_recipe_only_scales_the_em_cost_down():
    demo, v1 = load_recipe(REPO / "build" / "recipe-cpu-demo.json"), load_recipe("v1")
    assert demo.version == "cpu-demo" and "NOT a release" in demo.description
    changed = {k for k, v in demo.em.to_dict().items() if v != v1.em.to_dict()[k]}
    assert changed == {"generator_width", "pgd_steps", "batch_size", "max_rounds"}
    assert (demo.ops_pixels, demo.ops_objective) == (v1.ops_pixels, v1.ops_objective)
    assert demo.em.epsilon == 8.0 and demo.em.mode == "samplewise"


def test_cifar10s_is_ops_written_on_top_of_em(release):
    clean = CIFAR10S(release, variant="clean")
    em = CIFAR10S(release, variant="em")
    s = CIFAR10S(release, variant="cifar10s")
    y = np.asarray(s.targets)
    noise = np.asarray(em.data).astype(int) - np.asarray(clean.data)
    assert np.abs(noise).max() <= 8 and np.abs(noise).max() > 0
    search = load_shortcut(variant_folder(release, VariantSpec("cifar10s")))
    assert search == load_shortcut(variant_folder(release, VariantSpec("ops")))  # searched on clean images
    expected = np.array(em.data)
    for sc in search.shortcuts:
        expected[y == sc.label, sc.row, sc.col] = sc.colour  # the pixel overwrites the EM noise
    np.testing.assert_array_equal(s.data, expected)
    m = s.manifest
    assert m["recipe"]["version"] == "v1-tiny-test" and m["em"]["rounds"] == 2
    assert m["em_manifest_sha256"] == sha256_file(variant_folder(release, VariantSpec("em")) / "manifest.json")
    # Resumable EM state is removed once the stage is published.
    assert not any((data_dir(release) / ".work").glob("em-*"))


def test_unchanged_stages_are_cached_and_changed_inputs_rebuild(release, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(release, root)
    report = rebuild(root, recipe=tiny_recipe(), progress=False)
    assert [s.status for s in report.stages] == ["cached"] * 4
    other = dataclasses.replace(tiny_recipe(), em=dataclasses.replace(tiny_recipe().em, seed=1))
    report = rebuild(root, recipe=other, progress=False, allow_unconverged=True)
    assert [s.status for s in report.stages] == ["cached", "cached", "built", "built"]


def test_verify_passes_on_an_unchanged_build(release, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(release, build)
    report = verify_build(build, release, effect=False)
    assert report.passed, report.to_text()
    names = [c.name for c in report.checks]
    assert "cifar10s OPS choice" in names and "build pipeline on release EM == release cifar10s" in names
    em = next(c for c in report.checks if c.name == "EM noise vs release")
    assert "bit-identical" in em.detail and em.kind == "tolerance"


def _retamper(folder: Path, name: str, array: np.ndarray) -> None:
    """Replace an array AND update the manifest, so that only the content checks can catch it."""
    m = read_manifest(folder)
    m["files"][name] = save_array(folder / name, array)
    atomic_write_json(folder / "manifest.json", m)


def test_verify_fails_on_tampered_builds_and_says_why(release, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(release, build)
    s_dir = variant_folder(build, VariantSpec("cifar10s"))
    x = np.load(s_dir / "train_images.npy")
    x[7, 10, 10] ^= 0x40  # one pixel of one image
    _retamper(s_dir, "train_images.npy", x)
    report = verify_build(build, release, effect=False)
    assert not report.passed
    failed = {c.name: c.detail for c in report.checks if not c.passed}
    assert "build: OPS on EM images == cifar10s images" in failed
    assert "1 of 100 images differ (first: index 7)" in failed["build: OPS on EM images == cifar10s images"]

    # Plain file corruption (manifest untouched) is an integrity failure naming the file.
    shutil.rmtree(build)
    shutil.copytree(release, build)
    path = variant_folder(build, VariantSpec("em")) / "noise.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    report = verify_build(build, release, effect=False)
    assert not report.passed and "noise.npy: sha256" in report.to_text()


def test_verify_compares_a_different_em_within_tolerance(release, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(release, build)
    rebuild(build, recipe=dataclasses.replace(tiny_recipe(), em=dataclasses.replace(tiny_recipe().em, seed=3)),
            progress=False, allow_unconverged=True)
    loose = verify_build(build, release, effect=False)
    em = next(c for c in loose.checks if c.name == "EM noise vs release")
    assert em.passed and "values identical" in em.detail
    strict = verify_build(build, release, effect=False, em_tolerance=EMTolerance(min_identical_share=0.999))
    em = next(c for c in strict.checks if c.name == "EM noise vs release")
    assert not em.passed
    # The exact checks downstream of each side's own EM still hold.
    exact = {c.name: c.passed for c in strict.checks}
    assert exact["build: OPS on EM images == cifar10s images"] and exact["cifar10s OPS choice"]
    assert "(given)" in next(c for c in strict.checks if c.name == "EM tolerance").detail
    assert "states none" in next(c for c in loose.checks if c.name == "EM tolerance").detail
    # a release whose recipe states a tolerance (recipe v2 on) is held to it unless another is given
    stated = tmp_path / "stated"
    shutil.copytree(release, stated)
    manifest = next(stated.glob("cifar10s-v1/em/manifest.json"))
    record = json.loads(manifest.read_text())
    record["recipe"]["verify"] = {"em_min_identical": 0.999, "em_max_diff": 16, "basis": "test"}
    manifest.write_text(json.dumps(record))
    held = verify_build(build, stated, effect=False)
    assert not next(c for c in held.checks if c.name == "EM noise vs release").passed
    assert "stated by recipe" in next(c for c in held.checks if c.name == "EM tolerance").detail


def test_verify_effect_check_is_wired(release, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(release, build)
    ok = verify_build(build, release, effect=True, effect_epochs=1, effect_max_accuracy=1.0, device="cpu")
    assert ok.passed and ok.checks[-1].kind == "effect"
    bad = verify_build(build, release, effect=True, effect_epochs=1, effect_max_accuracy=0.0, device="cpu")
    assert not bad.passed and "must be <= 0.000" in bad.checks[-1].detail


def test_verify_cli_exit_codes(release, tmp_path, capsys):
    build = tmp_path / "build"
    shutil.copytree(release, build)
    assert main(["verify", "--root", str(build), "--release", str(release), "--no-effect",
                 "--json", str(tmp_path / "report.json")]) == 0
    assert "RESULT: everything matched" in capsys.readouterr().out
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True
    (variant_folder(build, VariantSpec("ops")) / "shortcut.json").write_text("{}")
    assert main(["verify", "--root", str(build), "--release", str(release), "--no-effect"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_rebuild_cli_with_a_recipe_file(release, tmp_path, capsys):
    recipe_file = tmp_path / "recipe-tiny.json"
    recipe_file.write_text(json.dumps(tiny_recipe().to_dict()))
    root = tmp_path / "copy"
    shutil.copytree(release, root)
    assert main(["rebuild", "--root", str(root), "--recipe", str(recipe_file), "--quiet",
                 "--report", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert "recipe v1-tiny-test" in out and out.count("cached") == 4
    assert [s["status"] for s in json.loads((tmp_path / "report.json").read_text())["stages"]] == ["cached"] * 4
    assert main(["info", "--root", str(root)]) == 0
    info = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("- ")}
    em = json.loads((variant_folder(root, VariantSpec("em")) / "manifest.json").read_text())["em"]
    for name in ("- em", "- cifar10s"):  # the stages with EM noise say which recipe made it, and how it ended
        assert "recipe v1-tiny-test" in info[name]
        assert f"generator accuracy {em['final_accuracy']} after {em['rounds']} rounds" in info[name]
    assert "recipe" not in info["- clean"] and "recipe" not in info["- ops-k1"]
    recipe_file.write_text("{not json")
    assert main(["rebuild", "--root", str(root), "--recipe", str(recipe_file)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
