"""Manifests are untrusted input: every malformed one gives a clear IntegrityError, never a traceback."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cifar_archive

from cifar10s.release import builders
from cifar10s.release.builders import build_variant
from cifar10s.store import (
    MANIFEST,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IntegrityError,
    atomic_write_json,
    build_lock,
    clean_folder,
    data_dir,
    file_entry,
    load_array,
    read_manifest,
    save_array,
    staging_folder,
    variant_folder,
    verify_folder,
)
from cifar10s.variants import VariantSpec

OPS = VariantSpec("ops")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """clean + ops-k1 built from a 100-image archive (copied by each test that changes it)."""
    base = tmp_path_factory.mktemp("schema")
    archive = make_cifar_archive(base / "tiny.tar.gz")
    build_variant(base / "root", OPS, cifar10=archive, progress=False)
    return base


@pytest.fixture
def root(tiny_root, tmp_path) -> Path:
    shutil.copytree(tiny_root / "root", tmp_path / "root")
    shutil.copy(tiny_root / "tiny.tar.gz", tmp_path / "tiny.tar.gz")
    return tmp_path / "root"


class _Whole:
    """Returned by a change that replaces the whole manifest."""

    def __init__(self, value) -> None:
        self.value = value


def _edit(folder: Path, change) -> None:
    """Rewrite ``folder``'s manifest after ``change(manifest)`` edits it in place (or returns a _Whole)."""
    m = json.loads((folder / MANIFEST).read_text())
    out = change(m)
    atomic_write_json(folder / MANIFEST, out.value if isinstance(out, _Whole) else m)


def _drop(*keys):
    def change(m):
        for k in keys[:-1]:
            m = m[k]
        del m[keys[-1]]

    return change


def _set_file(name, entry):
    return lambda m: m["files"].__setitem__(name, entry)


def _entry_field(name, key, value):
    return lambda m: m["files"][name].__setitem__(key, value)


def _rename(old, new):
    return lambda m: m["files"].__setitem__(new, m["files"].pop(old))


MALFORMED = {
    "not-an-object": (lambda m: _Whole([m]), "not a JSON object"),
    "version-as-string": (lambda m: m.__setitem__("format_version", "1"), "format version '1' is not 1"),
    "no-files": (_drop("files"), "no 'files' table"),
    "files-a-list": (lambda m: m.__setitem__("files", [TRAIN_IMAGES]), "no 'files' table"),
    "parent-path": (_rename(TEST_LABELS, "../test_labels.npy"), r"file name '\.\./test_labels\.npy' is not a plain"),
    "absolute-path": (_rename(TEST_LABELS, "/etc/passwd"), r"file name '/etc/passwd' is not a plain"),
    "sub-folder": (_rename(TEST_LABELS, "sub/test_labels.npy"), "is not a plain file name"),
    "dot-dot": (_rename(TEST_LABELS, ".."), r"file name '\.\.' is not a plain"),
    "the-manifest": (_rename(TEST_LABELS, MANIFEST), "is not a plain file name"),
    "entry-not-object": (_set_file(TRAIN_LABELS, "abc"), "the entry of train_labels.npy is not an object"),
    "sha-short": (_entry_field(TRAIN_LABELS, "sha256", "abc"), "'sha256' must be 64 lowercase hex digits"),
    "sha-not-hex": (_entry_field(TRAIN_LABELS, "sha256", "z" * 64), "'sha256' must be 64"),
    "sha-missing": (_drop("files", TRAIN_LABELS, "sha256"), "'sha256' must be 64"),
    "bytes-string": (_entry_field(TRAIN_LABELS, "bytes", "128"), "'bytes' must be an integer >= 0"),
    "bytes-negative": (_entry_field(TRAIN_LABELS, "bytes", -1), "'bytes' must be an integer >= 0"),
    "bytes-bool": (_entry_field(TRAIN_LABELS, "bytes", True), "'bytes' must be an integer"),
    "shape-string": (_entry_field(TRAIN_LABELS, "shape", "100"), "'shape' must be a list of integers"),
    "shape-float": (_entry_field(TRAIN_LABELS, "shape", [100.0]), "'shape' must be a list of integers"),
    "dtype-number": (_entry_field(TRAIN_LABELS, "dtype", 8), "'dtype' 8 is not a numpy dtype"),
    "dtype-garbage": (_entry_field(TRAIN_LABELS, "dtype", "not-a-dtype"), "is not a numpy dtype"),
    "dtype-object": (_entry_field(TRAIN_LABELS, "dtype", "|O"), "object dtype"),
    "no-source": (_drop("source"), "no 'source' record"),
    "variant-string": (lambda m: m.__setitem__("variant", "clean"), "'variant' must be a JSON object"),
    "no-train-images": (_drop("files", TRAIN_IMAGES), "train_images.npy is not listed as an array"),
    "test-labels-alone": (_drop("files", TEST_IMAGES), "test_images.npy is not listed as an array"),
    "images-float": (_entry_field(TRAIN_IMAGES, "dtype", "<f4"), r"train_images\.npy must be uint8 of shape \(N, 32, 32, 3\)"),
    "images-3d": (_entry_field(TRAIN_IMAGES, "shape", [100, 32, 32]), "must be uint8 of shape"),
    "labels-count": (_entry_field(TRAIN_LABELS, "shape", [99]), r"train_labels\.npy must be int64 of shape \(100,\)"),
    "labels-int32": (_entry_field(TEST_LABELS, "dtype", "<i4"), r"test_labels\.npy must be int64"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_gives_a_one_line_integrity_error(root, case):
    change, message = MALFORMED[case]
    folder = clean_folder(root)
    _edit(folder, change)
    for check in (read_manifest, verify_folder, lambda f: verify_folder(f, check_hashes=False)):
        with pytest.raises(IntegrityError, match=message) as info:
            check(folder)
        assert "\n" not in str(info.value)
    assert not builders._up_to_date(folder, None)


def test_unreadable_and_oversize_manifests(root, monkeypatch):
    folder = clean_folder(root)
    (folder / MANIFEST).write_text("[" * 100_000)  # deep nesting: RecursionError inside json
    with pytest.raises(IntegrityError, match="unreadable manifest"):
        read_manifest(folder)
    monkeypatch.setattr("cifar10s.store.MAX_MANIFEST_BYTES", 10)
    (folder / MANIFEST).write_text("{}" + " " * 20)
    with pytest.raises(IntegrityError, match="far too large for a manifest"):
        read_manifest(folder)


@pytest.mark.parametrize("edit,message", [
    # the second "sha256" is what Python's json would keep; a reviewer reading the file sees the first
    (lambda t: t.replace('"sha256": "', '"sha256": "' + "0" * 64 + '", "sha256": "', 1), "duplicate key 'sha256'"),
    (lambda t: t.replace('"files"', '"files": {}, "files"', 1), "duplicate key 'files'"),
    (lambda t: t.replace('"bytes": ', '"bytes": 1e400, "x": ', 1), "out of range"),
    (lambda t: t.replace('"bytes": ', '"bytes": ' + "9" * 30 + ', "x": ', 1), "an integer with 30 digits"),
])
def test_manifests_with_duplicate_keys_or_unreadable_numbers_are_refused(root, edit, message):
    folder = clean_folder(root)
    path = folder / MANIFEST
    good = path.read_text()
    path.write_text(edit(good))
    assert path.read_text() != good
    with pytest.raises(IntegrityError, match=f"unreadable manifest.*{message}"):
        read_manifest(folder)


def test_a_listed_path_outside_the_folder_is_never_opened(root):
    folder = clean_folder(root)
    outside = folder.parent / "elsewhere.npy"
    shutil.copy(folder / TEST_LABELS, outside)  # a valid file with the right sha256, outside the folder
    _edit(folder, _rename(TEST_LABELS, "../elsewhere.npy"))
    with pytest.raises(IntegrityError, match="not a plain file name"):
        verify_folder(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    with pytest.raises(IntegrityError, match="not a plain file name"):
        load_array(folder, "../elsewhere.npy", manifest)


def test_symlinked_files_are_refused_even_with_matching_bytes(root, tmp_path):
    folder = clean_folder(root)
    target = tmp_path / "real_labels.npy"
    shutil.move(folder / TRAIN_LABELS, target)
    os.symlink(target, folder / TRAIN_LABELS)
    with pytest.raises(IntegrityError, match="symbolic link"):
        verify_folder(folder)
    manifest = read_manifest(folder)
    with pytest.raises(IntegrityError, match="symbolic link"):
        load_array(folder, TRAIN_LABELS, manifest)
    assert not builders._up_to_date(folder, None)
    real_manifest = tmp_path / "manifest.json"
    shutil.move(folder / MANIFEST, real_manifest)
    os.symlink(real_manifest, folder / MANIFEST)
    with pytest.raises(IntegrityError, match="not a regular file"):
        read_manifest(folder)


def _replace_array(folder: Path, name: str, array: np.ndarray) -> None:
    """Swap an array AND its manifest entry, so the folder is self-consistent (hashes match)."""
    m = json.loads((folder / MANIFEST).read_text())
    m["files"][name] = save_array(folder / name, array)
    atomic_write_json(folder / MANIFEST, m)


@pytest.mark.parametrize(
    "name, make, message",
    [
        (TRAIN_IMAGES, lambda x: x[..., :1], r"must be uint8 of shape \(N, 32, 32, 3\).*\(100, 32, 32, 1\)"),
        (TRAIN_IMAGES, lambda x: x.astype(np.int16), "must be uint8"),
        (TRAIN_LABELS, lambda y: y.astype(np.int32), "must be int64"),
        (TRAIN_LABELS, lambda y: y[:50], r"must be int64 of shape \(100,\)"),
        (TRAIN_LABELS, lambda y: np.concatenate([[10], y[1:]]), r"labels range over \d\.\.10, outside 0\.\.9"),
        (TEST_LABELS, lambda y: y - 1, r"labels range over -1\.\.8"),
    ],
    ids=["images-1-channel", "images-int16", "labels-int32", "labels-short", "label-10", "label-negative"],
)
def test_self_consistent_but_meaningless_arrays_are_refused(root, name, make, message):
    folder = clean_folder(root)
    _replace_array(folder, name, make(np.load(folder / name)))
    with pytest.raises(IntegrityError, match=message):
        verify_folder(folder)
    with pytest.raises(IntegrityError, match=message):
        verify_folder(folder, check_hashes=False)
    assert not builders._up_to_date(folder, None)


def test_npy_header_must_agree_with_the_manifest_and_the_file_size(root):
    folder = clean_folder(root)
    _edit(folder, _entry_field(TRAIN_IMAGES, "shape", [50, 32, 32, 3]))
    _edit(folder, _entry_field(TRAIN_LABELS, "shape", [50]))
    with pytest.raises(IntegrityError, match=r"\(100, 32, 32, 3\) does not match the manifest's"):
        verify_folder(folder)
    m = json.loads((folder / MANIFEST).read_text())
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        load_array(folder, TRAIN_IMAGES, m)

    # A truncated array whose manifest entry was updated to the short file: the header tells.
    path = folder / TEST_IMAGES
    path.write_bytes(path.read_bytes()[:-3072])
    _edit(folder, lambda mm: mm["files"][TEST_IMAGES].update(file_entry(path)))
    with pytest.raises(IntegrityError, match="but its header describes"):
        load_array(folder, TEST_IMAGES, json.loads((folder / MANIFEST).read_text()))


def test_load_array_checks_the_entry_it_is_given(root):
    folder = clean_folder(root)
    good = verify_folder(folder)
    bad = {"files": {TRAIN_LABELS: {**good["files"][TRAIN_LABELS], "bytes": "x"}}}
    with pytest.raises(IntegrityError, match="'bytes' must be an integer"):
        load_array(folder, TRAIN_LABELS, bad)
    with pytest.raises(IntegrityError, match="is not listed"):
        load_array(folder, TRAIN_LABELS, {"files": []})
    assert load_array(folder, TRAIN_LABELS, good, mmap=False).shape == (100,)


def test_malformed_but_self_consistent_variant_is_rebuilt_not_up_to_date(root):
    ops = variant_folder(root, OPS)
    x = np.load(ops / TRAIN_IMAGES)
    _replace_array(ops, TRAIN_IMAGES, x[..., :1])
    with pytest.raises(IntegrityError, match="must be uint8"):
        verify_folder(ops)
    build_variant(root, OPS, progress=False)  # no --force: the stale folder must not count as built
    m = verify_folder(ops)
    assert m["files"][TRAIN_IMAGES]["shape"] == [100, 32, 32, 3]
    np.testing.assert_array_equal(np.load(ops / TRAIN_IMAGES), x)


def test_a_folder_holding_another_variant_is_not_up_to_date(root):
    ops = variant_folder(root, OPS)
    _edit(ops, lambda m: m.__setitem__("variant", VariantSpec("ops", 2).to_dict()))
    verify_folder(ops)  # intact as files go
    assert not builders._up_to_date(ops, None)
    build_variant(root, OPS, progress=False)
    assert read_manifest(ops)["variant"] == OPS.to_dict()


def _stale(root: Path) -> list[Path]:
    d = data_dir(root)
    made = [d / ".staging-ops-k1-a1b2c3", d / ".staging-clean-old-4242"]
    for p in made:
        p.mkdir()
        (p / TRAIN_IMAGES).write_bytes(b"half-written")
    (d / ".staging-em-link").symlink_to(d / "clean")  # removed as a link; its target is left alone
    return [*made, d / ".staging-em-link"]


def test_stale_staging_folders_are_removed_by_the_next_build_even_without_rebuilding(root):
    stale = _stale(root)
    stamp = (variant_folder(root, OPS) / MANIFEST).stat().st_mtime_ns
    build_variant(root, OPS, progress=False)
    assert (variant_folder(root, OPS) / MANIFEST).stat().st_mtime_ns == stamp  # nothing was rebuilt
    assert not any(os.path.lexists(p) for p in stale)
    verify_folder(clean_folder(root))  # the symlink's target survived


def test_staging_cleanup_runs_only_while_the_build_lock_is_held(root, monkeypatch):
    events: list[str] = []
    real_lock, real_cleanup = builders.build_lock, builders.remove_stale_staging

    def lock(r, *a, **k):
        cm = real_lock(r, *a, **k)

        class Recorder:
            def __enter__(self):
                cm.__enter__()
                events.append("locked")

            def __exit__(self, *exc):
                events.append("unlocked")
                return cm.__exit__(*exc)

        return Recorder()

    monkeypatch.setattr(builders, "build_lock", lock)
    monkeypatch.setattr(builders, "remove_stale_staging", lambda r: events.append("cleanup") or real_cleanup(r))
    build_variant(root, OPS, progress=False)
    assert events == ["locked", "cleanup", "unlocked"]


def _build_after_marker(root: str, marker: str) -> None:
    Path(marker).touch()
    build_variant(root, OPS, progress=False)


def test_a_staging_folder_held_by_a_running_build_is_left_alone(root, tmp_path):
    marker = tmp_path / "started"
    ctx = mp.get_context("fork")
    with build_lock(root), staging_folder(root, "ops-k1") as live:
        (live / TRAIN_IMAGES).write_bytes(b"in progress")
        other = ctx.Process(target=_build_after_marker, args=(str(root), str(marker)))
        other.start()
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # the other build is now waiting for the lock
        assert marker.exists() and other.is_alive()
        assert (live / TRAIN_IMAGES).read_bytes() == b"in progress"
    other.join(60)
    assert other.exitcode == 0
    assert not [p for p in data_dir(root).iterdir() if p.name.startswith(".staging")]
