import numpy as np
import pytest

from cifar10s.constants import CLASSES
from cifar10s.sources.cifar10 import (
    SourceError,
    fingerprint_arrays,
    load_cifar10,
    resolve_cifar10,
)
from cifar10s.sources.safe_tar import safe_extract


def test_shared_subset_layout(shared_arrays):
    a = shared_arrays
    assert a.train_images.shape == (10_000, 32, 32, 3) and a.train_images.dtype == np.uint8
    assert a.test_images.shape == (2_000, 32, 32, 3)
    assert a.train_labels.dtype == np.int64
    assert np.bincount(a.train_labels).tolist() == [1000] * 10
    assert np.bincount(a.test_labels).tolist() == [200] * 10
    assert a.classes == CLASSES
    assert not a.official and "NOT the official" in a.provenance_note


def test_archive_and_extracted_folder_agree(shared_archive, shared_arrays, tmp_path):
    folder = safe_extract(shared_archive, tmp_path)
    for path in (folder, folder / "cifar-10-batches-py"):
        b = load_cifar10(path)
        assert b.fingerprint == shared_arrays.fingerprint
        np.testing.assert_array_equal(b.train_images, shared_arrays.train_images)


def test_same_pixels_as_torchvision(shared_archive, shared_arrays, tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar
    from torchvision.datasets import CIFAR10

    safe_extract(shared_archive, tmp_path)
    # torchvision checks the *official* md5s; the subset differs, so skip only that check.
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    tv_train = CIFAR10(str(tmp_path), train=True)
    tv_test = CIFAR10(str(tmp_path), train=False)
    np.testing.assert_array_equal(tv_train.data, shared_arrays.train_images)
    assert tv_train.targets == shared_arrays.train_labels.tolist()
    np.testing.assert_array_equal(tv_test.data, shared_arrays.test_images)
    assert tv_train.classes == list(shared_arrays.classes)


def test_fingerprint_sees_every_array():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    y = np.array([0, 1])
    base = fingerprint_arrays(x, y, x, y)
    assert fingerprint_arrays(x, y, x, y) == base
    x2 = x.copy()
    x2[1, 5, 5, 2] = 1
    assert fingerprint_arrays(x2, y, x, y) != base
    assert fingerprint_arrays(x, y, x, y[::-1].copy()) != base


def test_missing_and_incomplete_sources_say_what_to_do(tmp_path):
    with pytest.raises(SourceError, match="does not exist.*download=True"):
        load_cifar10(tmp_path / "nope.tar.gz")
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(SourceError, match="missing data_batch_1"):
        load_cifar10(tmp_path)
    with pytest.raises(SourceError, match="no CIFAR-10 found.*download=True"):
        resolve_cifar10(tmp_path / "empty")


def test_bad_batch_contents_are_rejected(tmp_path):
    import io
    import tarfile

    from conftest import batch_pickle

    good = batch_pickle(np.zeros((2, 3072), np.uint8), [0, 1])
    bad_shape = batch_pickle(np.zeros((2, 100), np.uint8), [0, 1])
    bad_label = batch_pickle(np.zeros((2, 3072), np.uint8), [0, 42])
    for name, bad, msg in [("shape", bad_shape, r"\(N, 3072\)"), ("label", bad_label, "labels outside")]:
        path = tmp_path / f"{name}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for member in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
                raw = bad if member == "data_batch_3" else good
                info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        with pytest.raises(SourceError, match=msg):
            load_cifar10(path)


def test_existing_copy_under_root_is_found(tmp_path, tiny_archive):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(tiny_archive.read_bytes())
    assert resolve_cifar10(tmp_path) == tmp_path / "cifar-10-python.tar.gz"


def test_content_fingerprint_ignores_order_and_sees_one_pixel(shared_arrays):
    from cifar10s.sources.cifar10 import content_fingerprint

    x, y = shared_arrays.test_images, shared_arrays.test_labels
    base = content_fingerprint(x, y)
    order = np.random.default_rng(0).permutation(len(y))
    assert content_fingerprint(x[order], y[order]) == base  # another order: the same content
    changed = x.copy()
    changed[7, 3, 4, 1] ^= 1
    assert content_fingerprint(changed, y) != base  # one pixel
    relabelled = y.copy()
    relabelled[7] = (relabelled[7] + 1) % 10
    assert content_fingerprint(x, relabelled) != base  # one label
    assert content_fingerprint(x[:-1], y[:-1]) != base  # one image fewer


def test_source_kind_never_calls_a_copy_official(shared_arrays):
    from cifar10s.sources.cifar10 import source_kind

    record = shared_arrays.describe()
    assert record["kind"] == "subset" and not record["official"]
    assert set(record["content_fingerprint"]) == {"train", "test"}
    assert source_kind(False, record["content_fingerprint"], 50_000, 10_000) == "full-copy"
    assert source_kind(True, None, 50_000, 10_000) == "official"
