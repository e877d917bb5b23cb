import io
import tarfile

import pytest

from cifar10s.sources.cifar10 import SourceError, load_cifar10
from cifar10s.sources.safe_tar import CorruptArchiveError, UnsafeArchiveError, safe_extract


def _archive(path, entries):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


BAD = {
    "traversal": [_file("cifar-10-batches-py/ok"), _file("../escaped.txt")],
    "absolute": [_file("/tmp/absolute-cifar10s-test.txt")],
    "symlink": [_special("cifar-10-batches-py/link", tarfile.SYMTYPE, "/etc/passwd")],
    "hardlink": [_special("cifar-10-batches-py/hard", tarfile.LNKTYPE, "/etc/passwd")],
    "device": [_special("cifar-10-batches-py/dev", tarfile.CHRTYPE)],
    "fifo": [_special("cifar-10-batches-py/fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_archives_are_refused_and_nothing_is_written(tmp_path, case):
    archive = _archive(tmp_path / f"{case}.tar.gz", BAD[case])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # checked before anything was written
    assert not (tmp_path / "escaped.txt").exists()
    with pytest.raises(UnsafeArchiveError):
        load_cifar10(archive)


def test_good_archive_extracts_and_loads(tmp_path, tiny_archive):
    out = safe_extract(tiny_archive, tmp_path / "x")
    folder = out / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir())[:2] == ["batches.meta", "data_batch_1"]
    assert not [p for p in out.iterdir() if p.name.startswith(".extract-")]
    a, b = load_cifar10(tiny_archive), load_cifar10(folder)
    assert a.fingerprint == b.fingerprint


def test_not_a_tar_gives_clear_error(tmp_path):
    bogus = tmp_path / "cifar.tar.gz"
    bogus.write_bytes(b"definitely not gzip")
    with pytest.raises(SourceError, match="is not a CIFAR-10 archive") as info:
        load_cifar10(bogus)
    assert not isinstance(info.value, CorruptArchiveError)  # the wrong file, not a damaged archive
    assert "download it again" not in str(info.value) and "\n" not in str(info.value)
