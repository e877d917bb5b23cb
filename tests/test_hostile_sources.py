"""Hostile CIFAR-10 sources are refused with a clear error before they can cost memory or disk."""

from __future__ import annotations

import _codecs
import gzip
import io
import pickle
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cifar_archive

from cifar10s.release.builders import build_variant
from cifar10s.sources import cifar10 as cifar10_mod
from cifar10s.sources.cifar10 import SourceError, load_cifar10
from cifar10s.sources.safe_pickle import UnsafePickleError, load_batch
from cifar10s.sources.safe_tar import (
    CorruptArchiveError,
    UnsafeArchiveError,
    safe_extract,
)
from cifar10s.store import data_dir
from cifar10s.variants import VariantSpec

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

MEMBERS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
SMALL_PEAK = 20 * 1024 * 1024  # far below the ~460 MB a (150000, 3072) uint8 array would need


class _Reduce:
    """Pickles as ``func(*args)``: how a hostile file makes the unpickler call something."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _zero_stride(shape: tuple[int, ...], dtype: str, itemsize: int) -> _Reduce:
    """``numpy.ndarray(shape, dtype, buffer, 0, strides=0)``: a huge array view of a few bytes."""
    return _Reduce(np.ndarray, shape, dtype, b"\0" * itemsize, 0, (0,) * len(shape))


def zero_stride_batch() -> bytes:
    """About 120 bytes that, unpickled naively, are 150,000 fake images with labels."""
    return pickle.dumps(
        {"data": _zero_stride((150_000, 3072), "u1", 1), "labels": _zero_stride((150_000,), "<i8", 8)},
        protocol=4,
    )


def _batch(data, labels, filenames=None, protocol: int = 2) -> bytes:
    rows = len(labels)
    names = [f"img_{i}.png".encode() for i in range(rows)] if filenames is None else filenames
    obj = {b"batch_label": b"b", b"data": data, b"labels": labels, b"filenames": names}
    return pickle.dumps(obj, protocol=protocol)


def _good_batch(rows: int = 4) -> bytes:
    return _batch(np.zeros((rows, 3072), np.uint8), [i % 10 for i in range(rows)])


def _archive(path: Path, replace: dict[str, bytes]) -> Path:
    """An archive in the official layout whose members are ``replace``'s bytes or a good batch."""
    with tarfile.open(path, "w:gz") as tar:
        for name in MEMBERS:
            raw = replace.get(name, _good_batch())
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def _peak_bytes(fn) -> int:
    """Peak traced allocation (numpy's included) while running ``fn``, which must raise."""
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as info:
            fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert "\n" not in str(info.value)  # reads as one line
    return peak


# --- pickles -----------------------------------------------------------------------------------


def test_zero_stride_pickle_is_refused_without_allocating():
    payload = zero_stride_batch()
    assert len(payload) < 130
    peak = _peak_bytes(lambda: load_batch(payload, name="data_batch_1"))
    assert peak < SMALL_PEAK
    with pytest.raises(UnsafePickleError, match=r"data_batch_1: .*numpy\.ndarray"):
        load_batch(payload, name="data_batch_1")


def test_build_from_zero_stride_archive_fails_clearly_and_writes_nothing(tmp_path, capsys):
    archive = _archive(tmp_path / "evil.tar.gz", {"data_batch_1": zero_stride_batch()})
    root = tmp_path / "root"
    peak = _peak_bytes(lambda: build_variant(root, VariantSpec("clean"), cifar10=archive, progress=False))
    assert peak < SMALL_PEAK
    assert not (data_dir(root) / "clean").exists()

    from cifar10s.cli.main import main

    rc = main(["build", "--variant", "clean", "--root", str(root), "--cifar10", str(archive), "--quiet"])
    out, err = capsys.readouterr()
    assert rc != 0 and "numpy.ndarray" in err and "built" not in out


@pytest.mark.parametrize(
    "payload, message",
    [
        # a large uninitialised array from numpy's own reconstruction helper
        (_Reduce(_reconstruct, np.ndarray, (10**9,), b"b"), "_reconstruct"),
        (_Reduce(np.dtype, "O", False, True), "dtype 'O'"),  # object arrays would unpickle anything
        (_Reduce(np.dtype, "<i8", False, True), "dtype '<i8'"),
        (_Reduce(_codecs.encode, "x" * 8, "utf-16"), "encoding 'utf-16'"),
        (_Reduce(np.frombuffer, b"\0" * 8, "u1"), "numpy.frombuffer|numpy._core.*frombuffer"),
        (_Reduce(np.zeros, (10**9,)), "numpy.*zeros"),
        (_Reduce(pickle.loads, b"N."), "loads"),
        (_Reduce(bytearray, 10**9), "bytearray"),
    ],
    ids=["reconstruct-big", "dtype-object", "dtype-int64", "codecs-utf16", "frombuffer", "zeros", "loads", "bytearray"],
)
def test_every_other_callable_is_refused(payload, message):
    raw = pickle.dumps({b"data": payload, b"labels": []}, protocol=2)
    with pytest.raises(UnsafePickleError, match=message):
        load_batch(raw, name="data_batch_2")


def test_pickle_size_and_opcode_count_are_bounded_before_unpickling(monkeypatch, tmp_path):
    marker = tmp_path / "ran"
    big = pickle.dumps([_Reduce(open, str(marker), "w")] + [b"x" * 1000] * 2, protocol=2)
    with pytest.raises(UnsafePickleError, match="larger than 100 bytes"):
        load_batch(big, name="data_batch_1", max_bytes=100)
    many = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": list(range(1000, 1300))}, protocol=2)
    monkeypatch.setattr("cifar10s.sources.safe_pickle.MAX_PICKLE_OPCODES", 200)
    with pytest.raises(UnsafePickleError, match="more than 200 pickle opcodes"):
        load_batch(many, name="data_batch_1")
    assert not marker.exists()


# --- batch contents ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, message",
    [
        (_batch(np.zeros((3, 3072), np.uint8), [0, 1]), "2 labels for 3 images"),
        (_batch(np.zeros((2, 3072), np.uint8), [0, 1], [b"a", b"b", b"c"]), "3 file names for 2 images"),
        (_batch(np.zeros((2, 3072), np.uint8), ["0", "1"]), "'labels' must be a list of integers"),
        (_batch(np.zeros((2, 3072), np.uint8), [0, 10]), "labels outside 0..9"),
        (_batch([[0] * 3072, [0] * 3072], [0, 1]), r"'data' must be a uint8 array of shape \(N, 3072\); got list"),
        (_batch(np.zeros((2, 3071), np.uint8), [0, 1]), r"\(N, 3072\); got uint8 \(2, 3071\)"),
        # protocol 3 stores the empty pixel bytes natively (protocol 2 would call bytes(), refused)
        (_batch(np.zeros((0, 3072), np.uint8), [], protocol=3), "0 rows"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2), "no 'filenames'"),
    ],
    ids=["labels", "filenames", "label-type", "label-range", "data-list", "columns", "empty", "no-filenames"],
)
def test_inconsistent_batches_are_refused(tmp_path, raw, message):
    archive = _archive(tmp_path / "bad.tar.gz", {"data_batch_3": raw})
    with pytest.raises(SourceError, match=message):
        load_cifar10(archive)


def test_row_limits_per_batch_and_per_split(tmp_path, monkeypatch):
    archive = make_cifar_archive(tmp_path / "tiny.tar.gz", per_batch=20, n_test=20)
    monkeypatch.setattr(cifar10_mod, "MAX_BATCH_ROWS", 10)
    with pytest.raises(SourceError, match="data_batch_1: 20 rows; a CIFAR-10 batch has 1 to 10"):
        load_cifar10(archive)
    monkeypatch.setattr(cifar10_mod, "MAX_BATCH_ROWS", 10_000)
    monkeypatch.setattr(cifar10_mod, "MAX_TRAIN_ROWS", 99)
    with pytest.raises(SourceError, match="100 train / 20 test images, more than"):
        load_cifar10(archive)


# --- archives ------------------------------------------------------------------------------------


def test_member_claiming_a_terabyte_is_refused_from_its_header(tmp_path):
    info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    info.size = 1 << 40  # no data follows: only the header exists
    path = tmp_path / "huge.tar.gz"
    path.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
    assert path.stat().st_size < 1000
    peak = _peak_bytes(lambda: load_cifar10(path))
    assert peak < SMALL_PEAK
    with pytest.raises(UnsafeArchiveError, match=f"claims {1 << 40} bytes"):
        load_cifar10(path)
    with pytest.raises(UnsafeArchiveError, match="claims"):
        safe_extract(path, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_oversize_member_is_refused_before_its_bytes_are_read(tmp_path, monkeypatch):
    archive = make_cifar_archive(tmp_path / "tiny.tar.gz")
    reads = []
    real = tarfile.TarFile.extractfile
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, m: reads.append(m.name) or real(self, m))
    monkeypatch.setattr(cifar10_mod, "MAX_PICKLE_BYTES", 1000)
    with pytest.raises(UnsafeArchiveError, match=r"data_batch_1' claims \d+ bytes, more than the 1000"):
        load_cifar10(archive)
    assert reads == []


@pytest.mark.parametrize("kind", ["sparse", "pax"])
def test_sparse_members_and_huge_metadata_headers_are_refused(tmp_path, kind):
    if kind == "sparse":
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.type, info.size = tarfile.GNUTYPE_SPARSE, 10
        header, message = info.tobuf(format=tarfile.GNU_FORMAT), "sparse file"
    else:
        info = tarfile.TarInfo("././@PaxHeader")
        info.type, info.size = tarfile.XHDTYPE, 1 << 30
        header, message = info.tobuf(format=tarfile.USTAR_FORMAT), "metadata header .* claims 1073741824 bytes"
    path = tmp_path / f"{kind}.tar.gz"
    path.write_bytes(gzip.compress(header + b"\0" * 1024))
    with pytest.raises(UnsafeArchiveError, match=message):
        load_cifar10(path)


def test_oversize_file_in_an_extracted_folder_is_refused(tmp_path, monkeypatch):
    folder = safe_extract(make_cifar_archive(tmp_path / "tiny.tar.gz"), tmp_path / "x") / "cifar-10-batches-py"
    monkeypatch.setattr(cifar10_mod, "MAX_PICKLE_BYTES", 1000)
    with pytest.raises(SourceError, match=r"data_batch_1 is \d+ bytes, more than the 1000"):
        load_cifar10(folder)


def _damage(raw_gz: bytes, how: str) -> bytes:
    if how == "truncated-gzip":
        return raw_gz[: len(raw_gz) * 2 // 3]
    if how == "bad-crc":  # the gzip trailer: CRC32 then length
        crc = bytearray(raw_gz)
        crc[-8] ^= 0xFF
        return bytes(crc)
    tar = bytearray(gzip.decompress(raw_gz))
    if how == "bad-header":  # a byte of data_batch_4's name: its header checksum no longer matches
        at = tar.index(b"cifar-10-batches-py/data_batch_4")
        tar[at + 5] ^= 0x01
        return gzip.compress(bytes(tar))
    assert how == "truncated-tar"  # cut on a block boundary, before the end-of-archive marker
    return bytes(tar[: tar.index(b"cifar-10-batches-py/data_batch_4")])


@pytest.mark.parametrize("how", ["truncated-gzip", "bad-crc", "bad-header", "truncated-tar"])
def test_damaged_archive_is_reported_as_corrupt_not_incomplete(tmp_path, tiny_archive, how):
    path = tmp_path / "damaged.tar.gz"
    path.write_bytes(_damage(tiny_archive.read_bytes(), how))
    with pytest.raises(CorruptArchiveError, match="corrupt or truncated") as info:
        load_cifar10(path)
    message = str(info.value)
    assert "missing" not in message and "download it again" in message and "\n" not in message
    with pytest.raises(CorruptArchiveError):
        safe_extract(path, tmp_path / "out")
    assert [p for p in (tmp_path / "out").iterdir()] == []


def test_errors_belong_to_the_package_hierarchy():
    assert issubclass(UnsafePickleError, SourceError) and issubclass(UnsafeArchiveError, SourceError)
    assert issubclass(CorruptArchiveError, SourceError) and issubclass(SourceError, ValueError)
