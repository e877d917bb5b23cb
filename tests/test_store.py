"""Builds are atomic, locked against each other, and recover from interruptions."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from cifar10s.release import builders
from cifar10s.release.builders import build_variant, built_variants
from cifar10s.store import data_dir, is_complete, variant_folder, verify_folder
from cifar10s.variants import VariantSpec


def _build(root: str, archive: str, force: bool) -> str:
    return str(build_variant(root, VariantSpec("ops"), cifar10=archive, progress=False, force=force).path)


def test_concurrent_builds_into_one_root_do_not_corrupt_each_other(tmp_path, tiny_archive):
    ctx = mp.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_build, [(str(tmp_path), str(tiny_archive), True)] * 3)
    assert len(set(results)) == 1
    for name in ("clean", "ops-k1"):
        verify_folder(data_dir(tmp_path) / name, check_hashes=True)
    leftovers = [p.name for p in data_dir(tmp_path).iterdir() if p.name.startswith(".staging")]
    assert leftovers == []


def test_interrupted_build_leaves_nothing_that_looks_complete(tmp_path, tiny_archive, monkeypatch):
    real_save = builders.save_array
    calls = {"n": 0}

    def dying_save(path, array):
        calls["n"] += 1
        if calls["n"] == 6:  # clean wrote 4 arrays; die while writing the OPS variant
            raise KeyboardInterrupt("simulated kill")
        return real_save(path, array)

    monkeypatch.setattr(builders, "save_array", dying_save)
    with pytest.raises(KeyboardInterrupt):
        build_variant(tmp_path, VariantSpec("ops"), cifar10=tiny_archive, progress=False)
    ops = variant_folder(tmp_path, VariantSpec("ops"))
    assert not ops.exists() and not is_complete(ops)
    assert list(built_variants(tmp_path)) == ["clean"]
    monkeypatch.setattr(builders, "save_array", real_save)
    build_variant(tmp_path, VariantSpec("ops"), progress=False)  # uses the clean folder already there
    assert list(built_variants(tmp_path)) == ["clean", "ops-k1"]
    assert not [p for p in data_dir(tmp_path).iterdir() if p.name.startswith(".staging")]


def test_up_to_date_build_is_skipped_and_new_source_rebuilds(tmp_path, tiny_archive):
    from conftest import make_cifar_archive

    first = build_variant(tmp_path, VariantSpec("ops"), cifar10=tiny_archive, progress=False)
    folder = first.path
    assert first.built and first.status == "built" and first.timings["ops_search"] >= 0
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    again = build_variant(tmp_path, VariantSpec("ops"), cifar10=tiny_archive, progress=False)
    assert again.status == "cached" and again.path == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    other = make_cifar_archive(tmp_path / "other.tar.gz", seed=5)
    assert build_variant(tmp_path, VariantSpec("ops"), cifar10=other, progress=False).built
    clean = build_variant(tmp_path, VariantSpec("clean"), cifar10=other, progress=False)
    assert clean.status == "cached" and clean.path == data_dir(tmp_path) / "clean"
    m = verify_folder(folder)
    clean = verify_folder(data_dir(tmp_path) / "clean")
    assert m["source"]["fingerprint"] == clean["source"]["fingerprint"] != ""
    assert m["source"]["origin"].endswith("other.tar.gz")


def test_manifest_records_provenance(built_root):
    m = verify_folder(variant_folder(built_root, VariantSpec("ops")))
    assert m["format_version"] == 1 and m["variant"]["kind"] == "ops"
    assert m["source"]["official"] is False and len(m["source"]["fingerprint"]) == 64
    assert set(m["files"]) == {"train_images.npy", "train_labels.npy", "shortcut.json"}
    assert all(len(e["sha256"]) == 64 for e in m["files"].values())
    assert {"cifar10s", "numpy", "torch"} <= set(m["environment"])
    assert len(m["shortcut"]["shortcuts"]) == 10


def test_arrays_are_plain_npy_without_pickle(built_root):
    folder = variant_folder(built_root, VariantSpec("ops"))
    arr = np.load(folder / "train_images.npy", allow_pickle=False)
    assert arr.dtype == np.uint8
