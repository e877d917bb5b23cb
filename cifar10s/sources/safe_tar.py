"""Read and extract tar archives defensively.

Every member is checked from its header before any of its bytes are read: no absolute paths, no
``..``, no links, no devices or FIFOs, no sparse files, and no member (or metadata header) larger
than a CIFAR-10 archive ever holds, so a few bytes of archive cannot claim gigabytes of memory or
disk. Members are walked lazily, so an oversize member is refused before the stream is advanced
past it.

A damaged archive is reported as corrupt instead of looking shorter than it is: tarfile treats an
unreadable header after the first as the end of the archive, so headers are checked strictly
here, and the stream is read to its end, which makes gzip (or bz2/xz) verify its checksum.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SourceError

#: Largest member accepted by default (the official archive's largest is about 31 MB).
MAX_MEMBER_BYTES = 64 * 1024 * 1024
#: Most members an archive may have (the official one has 8).
MAX_MEMBERS = 1000
#: Largest sum of member sizes :func:`safe_extract` writes (the official archive holds ~178 MB).
MAX_TOTAL_BYTES = 512 * 1024 * 1024
#: Largest pax or GNU long-name header (tarfile reads those whole into memory).
MAX_HEADER_BYTES = 1024 * 1024
#: Most bytes allowed after the end-of-archive marker (tar pads to a 10 KiB record).
MAX_TRAILING_BYTES = 1024 * 1024

#: Low-level failures that mean the bytes are damaged (truncated stream, bad CRC, bad header).
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


class UnsafeArchiveError(SourceError):
    """An archive member would escape the target folder, is not a plain file/folder, or is oversize."""


class CorruptArchiveError(SourceError):
    """The archive's bytes are damaged: truncated, failing their checksum, or with a bad header."""


class _BadHeader(tarfile.ReadError):
    """A header that tarfile would take for the end of the archive."""


class _StrictTarInfo(tarfile.TarInfo):
    """TarInfo that reports bad headers and refuses oversize metadata and sparse members.

    tarfile reads pax and GNU long-name headers whole and expands sparse maps before the caller
    sees the member, so those limits must be applied here, while the header is parsed.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError, tarfile.EmptyHeaderError) as exc:
            raise _BadHeader(f"{exc} at byte {tarfile_.offset}") from None

    def _check_header_size(self) -> None:
        if not 0 <= self.size <= MAX_HEADER_BYTES:
            raise UnsafeArchiveError(
                f"archive metadata header '{self.name}' claims {self.size} bytes (at most "
                f"{MAX_HEADER_BYTES} are accepted); refusing to read it. Re-download the archive"
            )

    def _proc_gnulong(self, tarfile_: tarfile.TarFile) -> Any:
        self._check_header_size()
        return super()._proc_gnulong(tarfile_)  # type: ignore[misc]

    def _proc_pax(self, tarfile_: tarfile.TarFile) -> Any:
        self._check_header_size()
        return super()._proc_pax(tarfile_)  # type: ignore[misc]

    def _refuse_sparse(self, *args: Any) -> Any:
        raise UnsafeArchiveError(
            f"archive member '{self.name}' is a sparse file; CIFAR-10 archives hold only plain files. "
            "Refusing to read it: re-download the archive from the official URL"
        )

    _proc_sparse = _refuse_sparse
    _proc_gnusparse_00 = _refuse_sparse
    _proc_gnusparse_01 = _refuse_sparse
    _proc_gnusparse_10 = _refuse_sparse


def _detail(exc: BaseException) -> str:
    """The first line of an exception's message (tarfile's can span several)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


#: How the formats tarfile reads begin: gzip, bzip2, xz (a plain tar says "ustar" at byte 257).
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _looks_like_archive(path: Path) -> bool:
    """Whether ``path`` starts like a (compressed) tar at all; a damaged archive still does."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(265)
    except OSError:
        return True  # let tarfile report the I/O error
    return head.startswith(_COMPRESSED_MAGIC) or head[257:262] == b"ustar"


def _unreadable(path: Path, exc: BaseException) -> str:
    if not _looks_like_archive(path):
        return (
            f"{path} is not a CIFAR-10 archive (not a tar file, compressed or not); pass the official "
            "cifar-10-python.tar.gz or an extracted 'cifar-10-batches-py' folder"
        )
    return (
        f"{path}: not a readable tar archive ({_detail(exc)}); the archive is corrupt or truncated: "
        f"delete it (and any {path.name}.part beside it) and download it again, or pass an "
        "extracted 'cifar-10-batches-py' folder"
    )


def _unopenable(path: Path, exc: BaseException) -> SourceError:
    """A damaged archive is corrupt; a file that is no archive at all (a README, a .npy) is the wrong file."""
    return (CorruptArchiveError if _looks_like_archive(path) else SourceError)(_unreadable(path, exc))


@contextlib.contextmanager
def open_archive(path: str | os.PathLike[str]) -> Iterator[tarfile.TarFile]:
    """Open a (possibly compressed) tar for reading; damage found inside the block is reported as
    :class:`CorruptArchiveError` with what to do about it."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:*", tarinfo=_StrictTarInfo)  # noqa: SIM115 - closed by ``with tar`` below
    except OSError as exc:
        if exc.errno is None:  # gzip/bz2 report bad data as OSError without an errno
            raise _unopenable(path, exc) from exc
        raise SourceError(f"{path}: cannot be read ({exc.strerror or _detail(exc)})") from exc
    except _CORRUPT as exc:
        raise _unopenable(path, exc) from exc
    try:
        with tar:
            yield tar
    except _CORRUPT as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # a real I/O error (disk full...), not damage
            raise
        raise CorruptArchiveError(
            f"{path}: the archive is corrupt or truncated ({_detail(exc)}): delete it (and any "
            f"{path.name}.part beside it) and download it again"
        ) from exc


def _check_member(member: tarfile.TarInfo, dest: Path, max_member_bytes: int) -> None:
    name = member.name
    if not (member.isfile() or member.isdir()) or member.issparse():
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise UnsafeArchiveError(
            f"archive member '{name}' is a {kind}; CIFAR-10 archives hold only plain files. "
            "Refusing to extract: re-download the archive from the official URL"
        )
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"archive member '{name}' has an absolute path; refusing to extract")
    target = (dest / name).resolve()
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(f"archive member '{name}' would be written outside {dest}; refusing")
    if not 0 <= member.size <= max_member_bytes:
        raise UnsafeArchiveError(
            f"archive member '{name}' claims {member.size} bytes, more than the {max_member_bytes} "
            "a CIFAR-10 archive member can need; refusing to read it. Re-download the archive"
        )


def _check_tail(tar: tarfile.TarFile) -> None:
    """Read what follows the end-of-archive marker, so the decompressor checks its CRC and length."""
    assert tar.fileobj is not None
    left = MAX_TRAILING_BYTES
    while chunk := tar.fileobj.read(min(1 << 16, left + 1)):
        left -= len(chunk)
        if left < 0:
            raise UnsafeArchiveError(
                f"more than {MAX_TRAILING_BYTES} bytes follow the end of the archive; it is not a "
                "CIFAR-10 archive. Re-download it"
            )


def checked_members(
    tar: tarfile.TarFile,
    dest: str | os.PathLike[str],
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_members: int = MAX_MEMBERS,
) -> Iterator[tarfile.TarInfo]:
    """Yield the archive's members one at a time, each checked from its header (as if extracted
    into ``dest``) before the stream moves past it; once all are out, check the stream's end.

    A member's bytes may be read (``tar.extractfile``) when it is yielded. Use inside
    :func:`open_archive`, which turns damage into :class:`CorruptArchiveError`.
    """
    dest_path = Path(dest).resolve()
    for count, member in enumerate(tar, start=1):
        if count > max_members:
            raise UnsafeArchiveError(
                f"the archive has more than {max_members} members; it is not a CIFAR-10 archive. Re-download it"
            )
        _check_member(member, dest_path, max_member_bytes)
        yield member
    _check_tail(tar)


def safe_members(
    tar: tarfile.TarFile, dest: Path, *, max_member_bytes: int = MAX_MEMBER_BYTES
) -> list[tarfile.TarInfo]:
    """Return the archive's members after checking every one of them (all or nothing)."""
    return list(checked_members(tar, dest, max_member_bytes=max_member_bytes))


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Path:
    """Extract ``archive`` into ``dest`` atomically: checked first, staged, then renamed into place.

    Every member is validated (and the archive read to its end) before anything is written, and
    the members' total size is bounded. Extraction happens in a temporary folder beside ``dest``
    and each top-level entry is moved in only once all bytes are out, so an interruption never
    leaves a half-extracted tree that looks complete.
    """
    dest_path = Path(dest)
    dest_path.mkdir(parents=True, exist_ok=True)
    with open_archive(archive) as tar:
        members = safe_members(tar, dest_path, max_member_bytes=max_member_bytes)
        total = sum(m.size for m in members if m.isfile())
        if total > max_total_bytes:
            raise UnsafeArchiveError(
                f"{archive}: members total {total} bytes, more than the {max_total_bytes} a CIFAR-10 "
                "archive holds; refusing to extract. Re-download the archive"
            )
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_path))
        try:
            for m in members:
                out = staging / m.name
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                with src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f)
            for entry in staging.iterdir():
                final = dest_path / entry.name
                if final.exists():
                    shutil.rmtree(final) if final.is_dir() else final.unlink()
                os.replace(entry, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest_path
