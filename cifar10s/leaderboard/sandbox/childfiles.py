"""What a child leaves in its folders, read and checked by the host as someone else's bytes.

A child writes into its scratch folder and (for training) its seed's work folder, and may put
anything there: a symbolic link to the signing key where its log or report was, a FIFO that
blocks whoever opens it, a hard link, a setuid file, a device, or millions of files. The host
therefore never opens a child-written path by name the ordinary way:

* :func:`read_child_file` walks to the file one component at a time with ``O_NOFOLLOW`` (no link
  is followed anywhere on the way), opens it ``O_NONBLOCK`` (a FIFO cannot block), and reads it only
  when ``fstat`` says a regular file with one link on the folder's own device and at most its cap;
* :func:`audit_folder` walks a folder without following links after the child's processes are gone
  (and while it runs, for the quota), and refuses setuid/setgid files, devices, FIFOs, sockets,
  hard links, links pointing outside the folder, and more files or bytes than :class:`Quota` allows;
* :func:`keep_only` deletes what is not needed to resume a run.

Every refusal is :class:`ChildFileRefused` (a :class:`~.failures.WorkerFailed`) with one line that
names the file and what was wrong; the file is never followed and its bytes are never quoted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .failures import WorkerFailed

__all__ = ["ChildFileRefused", "Quota", "audit_folder", "hand_to", "keep_only", "purge_unsafe", "read_child_file",
           "read_logits"]

_GIB = 1 << 30


class ChildFileRefused(WorkerFailed):
    """A file a child left is not what the host accepts (a link, a FIFO, too large, over quota...)."""


@dataclass(frozen=True)
class Quota:
    """The most a child may leave in its folders together (defaults fit a checkpointed ResNet-18 run
    with per-epoch logits of 200 epochs)."""

    max_bytes: int = 2 * _GIB
    max_files: int = 1000


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def _open_nofollow(folder: Path, rel: str, what: str) -> int:
    """A descriptor of ``folder/rel`` reached without following any link (each component opened
    relative to the one before). FileNotFoundError when it is not there."""
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"not a plain relative path: {rel!r}")
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(folder, flags_dir)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC) if last else flags_dir
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ChildFileRefused(f"{what}: {'/'.join(parts[:i + 1])} is a symbolic link or not a folder; "
                                           "refused, not followed") from None
                if exc.errno == errno.ENXIO:  # a socket (or a FIFO without a writer on some systems)
                    raise ChildFileRefused(f"{what}: {rel} is a socket or FIFO, not a regular file; refused") from None
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_child_file(folder: Path, rel: str, *, max_bytes: int, what: str) -> bytes:
    """The bytes of a file a child wrote at ``folder/rel``, or :class:`ChildFileRefused`.

    Refused: a link anywhere on the way, anything but a regular file, more than one hard link,
    another device than ``folder``'s, more than ``max_bytes``. FileNotFoundError when missing.
    """
    device = os.stat(folder, follow_symlinks=False).st_dev
    fd = _open_nofollow(folder, rel, what)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ChildFileRefused(f"{what}: {rel} is {_kind(st.st_mode)}, not a regular file; refused")
        if st.st_nlink != 1:
            raise ChildFileRefused(f"{what}: {rel} has {st.st_nlink} hard links; refused")
        if st.st_dev != device:
            raise ChildFileRefused(f"{what}: {rel} is on another file system than its folder; refused")
        if st.st_size > max_bytes:
            raise ChildFileRefused(f"{what}: {rel} is {st.st_size} bytes, more than the {max_bytes} allowed")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:  # it grew after fstat
            raise ChildFileRefused(f"{what}: {rel} is more than the {max_bytes} bytes allowed")
        return data
    finally:
        os.close(fd)


def read_logits(folder: Path, rel: str, n: int, num_classes: int, what: str) -> np.ndarray:
    """A child's logits at ``folder/rel``: a plain float32 ``(n, num_classes)`` ``.npy`` of finite
    values, read as someone else's bytes (:func:`.childfiles.read_child_file`)."""
    import io

    limit = n * num_classes * 4 + 4096  # the array and a generous .npy header
    try:
        raw = read_child_file(folder, rel, max_bytes=limit, what=what)
    except FileNotFoundError:
        raise WorkerFailed(f"{what}: the child process did not write {Path(rel).name}") from None
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise WorkerFailed(f"{what}: {Path(rel).name} is not a plain .npy array ({str(exc)[:200]})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (n, num_classes):
        got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise WorkerFailed(f"{what}: expected float32 logits of shape ({n}, {num_classes}), got {got}")
    if not np.isfinite(arr).all():
        raise WorkerFailed(f"{what}: the model produced non-finite logits (NaN or inf)")
    return arr


def _inside(link_dir: str, target: str, root: str) -> bool:
    """Whether a link in ``link_dir`` pointing at ``target`` stays inside ``root`` (lexically:
    nothing on the host is resolved)."""
    if os.path.isabs(target):
        return False
    resolved = os.path.normpath(os.path.join(link_dir, target))
    return resolved == root or resolved.startswith(root.rstrip("/") + "/")


def _entries(folder: str) -> Iterable[tuple[str, os.stat_result]]:
    """Every path under ``folder`` with its lstat, links never followed, folders before their contents."""
    stack = [folder]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as it:
                items = list(it)
        except OSError as exc:
            raise ChildFileRefused(f"{here} cannot be listed ({exc.strerror}); refused") from None
        for entry in items:
            st = entry.stat(follow_symlinks=False)
            yield entry.path, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)


def audit_folder(folders: Iterable[Path], quota: Quota, *, what: str, quota_only: bool = False) -> tuple[int, int]:
    """Check what a child left in ``folders`` (taken together against ``quota``); returns (files, bytes).

    ``quota_only``: while the child still runs, count only (what it is in the middle of writing is
    judged after it ends). Sizes are apparent sizes, so a sparse file counts in full.
    """
    files = size = 0
    for folder in folders:
        root = os.path.realpath(folder)
        if not os.path.isdir(root):
            continue
        for path, st in _entries(root):
            rel = os.path.relpath(path, root)
            files += 1
            if stat.S_ISREG(st.st_mode):
                size += st.st_size
            if files > quota.max_files:
                raise ChildFileRefused(f"{what}: left more than {quota.max_files} files in its folders; refused "
                                       "(raise it with --limit work_files=N)")
            if size > quota.max_bytes:
                raise ChildFileRefused(f"{what}: left more than {quota.max_bytes} bytes in its folders; refused "
                                       "(raise it with --limit work_bytes=SIZE)")
            if quota_only:
                continue
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                if not _inside(os.path.dirname(path), os.readlink(path), root):
                    raise ChildFileRefused(f"{what}: {rel} is a symbolic link pointing outside its folder; refused")
            elif stat.S_ISDIR(mode):
                if mode & stat.S_ISUID:
                    raise ChildFileRefused(f"{what}: folder {rel} has the setuid bit; refused")
            elif not stat.S_ISREG(mode):
                raise ChildFileRefused(f"{what}: {rel} is {_kind(mode)}; a child may leave only files and folders")
            elif mode & (stat.S_ISUID | stat.S_ISGID):
                raise ChildFileRefused(f"{what}: {rel} has the setuid or setgid bit; refused")
            elif st.st_nlink != 1:
                raise ChildFileRefused(f"{what}: {rel} has {st.st_nlink} hard links; refused")
    return files, size


def keep_only(folder: Path, keep: Callable[[str], bool]) -> list[str]:
    """Delete everything under ``folder`` whose relative path ``keep`` rejects (links removed, never
    followed); returns what was deleted. Folders are kept when something inside them is."""
    removed = []
    root = os.path.realpath(folder)
    for path, st in sorted(_entries(root), key=lambda item: item[0].count("/"), reverse=True):
        rel = os.path.relpath(path, root)
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError):
                if not keep(rel + "/") and not os.listdir(path):
                    os.rmdir(path)
                    removed.append(rel + "/")
            continue
        if not keep(rel):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            removed.append(rel)
    return removed


def purge_unsafe(folders: Iterable[Path]) -> None:
    """After a refusal: delete from ``folders`` every link, device, FIFO, socket, setuid/setgid file
    and hard link (never followed), so that nothing of the kind stays behind for anyone to use."""
    for folder in folders:
        root = os.path.realpath(folder)
        if not os.path.isdir(root):
            continue
        for path, st in list(_entries(root)):
            mode = st.st_mode
            bad = (not stat.S_ISDIR(mode) and not stat.S_ISREG(mode)) or bool(mode & stat.S_ISUID) or (
                stat.S_ISREG(mode) and (mode & stat.S_ISGID or st.st_nlink != 1))
            if bad:
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(mode):
                        os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID), follow_symlinks=False)
                    else:
                        os.unlink(path)


def hand_to(folder: Path, uid: int, gid: int) -> None:
    """Give ``folder`` and everything in it to ``uid:gid`` (the child's host user), links never
    followed, so that a child running as that user can write its folder and nothing else. The
    folder itself gets mode 0770: its group (the child's) may enter it, other users may not."""
    if os.geteuid() != 0:
        return
    os.chown(folder, uid, gid, follow_symlinks=False)
    os.chmod(folder, 0o770)
    for path, _st in _entries(os.path.realpath(folder)):
        os.chown(path, uid, gid, follow_symlinks=False)
