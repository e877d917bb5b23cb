"""Extract tar archives without path traversal, links out of the target or device files."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path


class UnsafeArchiveError(ValueError):
    """An archive member would escape the target folder or is not a plain file/folder."""


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise UnsafeArchiveError(
            f"archive member '{name}' is a {kind}; CIFAR-10 archives hold only plain files. "
            "Refusing to extract: re-download the archive from the official URL."
        )
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"archive member '{name}' has an absolute path; refusing to extract")
    target = (dest / name).resolve()
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(f"archive member '{name}' would be written outside {dest}; refusing")


def safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Return the archive's members after checking every one of them (all or nothing)."""
    dest = dest.resolve()
    members = tar.getmembers()
    for m in members:
        _check_member(m, dest)
    return members


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract ``archive`` into ``dest`` atomically: checked first, staged, then renamed into place.

    Every member is validated before anything is written. Extraction happens in a temporary
    folder beside ``dest`` and each top-level entry is moved in only once all bytes are out, so
    an interruption never leaves a half-extracted tree that looks complete.
    """
    dest_path = Path(dest)
    dest_path.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = safe_members(tar, dest_path)
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
