"""On-disk layout of built data: versioned folders of ``.npy`` arrays with a verified manifest.

``<root>/cifar10s-v1/<variant>/`` holds ``*.npy`` arrays (loaded memory-mapped, never with
pickle) and ``manifest.json`` (variant, parameters, source fingerprint, sha256 of every array,
package version). A folder is written under a staging name and renamed into place only when every
file and the manifest are complete, under a file lock, so concurrent or interrupted builds never
leave something that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Mapping

import numpy as np
from filelock import FileLock

from .constants import DATA_FORMAT_VERSION

if TYPE_CHECKING:
    from .variants import VariantSpec

MANIFEST = "manifest.json"
_STAGING_PREFIX = ".staging-"

#: File names inside a variant folder (the layout every reader and writer uses).
TRAIN_IMAGES, TRAIN_LABELS = "train_images.npy", "train_labels.npy"
TEST_IMAGES, TEST_LABELS = "test_images.npy", "test_labels.npy"  # only in the clean folder
SHORTCUT_FILE = "shortcut.json"  # OPS variants: the searched pixels and colours
EM_NOISE, EM_LOG = "noise.npy", "em_log.json"  # the em folder: the noise and the per-round log
WORK_DIR = ".work"  # resumable intermediate state (EM checkpoints) under the data folder


class IntegrityError(RuntimeError):
    """Built data does not match its manifest (corrupt, tampered or half-written)."""


class NotBuiltError(RuntimeError):
    """The requested variant has not been built under this root.

    A ``RuntimeError``, like torchvision's "Dataset not found" error, so code written for
    ``torchvision.datasets.CIFAR10`` catches it.
    """


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    """Mode for new files: what ``open()`` would give (mkstemp alone gives 0600)."""
    return 0o666 & ~_current_umask()


def data_dir(root: str | os.PathLike[str]) -> Path:
    """The versioned folder under ``root`` that holds every built variant."""
    return Path(root).expanduser() / f"cifar10s-v{DATA_FORMAT_VERSION}"


def variant_folder(root: str | os.PathLike[str], spec: VariantSpec) -> Path:
    """``<root>/cifar10s-v1/<variant folder name>``."""
    return data_dir(root) / spec.folder_name


def clean_folder(root: str | os.PathLike[str]) -> Path:
    """The clean variant's folder: it also holds the (always clean) test split."""
    return data_dir(root) / "clean"


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 4 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the folder that holds the entry."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success fsync it and rename it onto
    ``path`` (so readers see the old or the new file, never a torn one); on failure remove it.

    This is the one place the package writes files atomically; everything else calls it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_array(path: str | os.PathLike[str], array: np.ndarray) -> dict[str, Any]:
    """Save ``array`` as a plain ``.npy`` atomically; return its manifest entry."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype == object:
        raise TypeError("object arrays would need pickle; refusing to store them")
    with atomic_file(path) as f:
        np.save(f, array, allow_pickle=False)
    return {
        "sha256": sha256_file(path),
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "bytes": path.stat().st_size,
    }


def file_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Manifest entry of a non-array file (checked by size and sha256)."""
    return {"sha256": sha256_file(path), "bytes": Path(path).stat().st_size}


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: unreadable manifest ({exc}); rebuild with --force") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != DATA_FORMAT_VERSION:
        raise IntegrityError(
            f"{path}: format version {manifest.get('format_version') if isinstance(manifest, dict) else '?'} "
            f"is not {DATA_FORMAT_VERSION}; rebuild this variant with this version of cifar10s (--force)"
        )
    return manifest


def verify_folder(folder: str | os.PathLike[str], *, check_hashes: bool = True) -> dict[str, Any]:
    """Check every array listed in the manifest exists with the right size (and sha256)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name, entry in manifest.get("files", {}).items():
        f = folder / name
        if not f.is_file():
            raise IntegrityError(f"{f} is listed in the manifest but missing; rebuild with --force")
        if f.stat().st_size != entry["bytes"]:
            raise IntegrityError(f"{f} has {f.stat().st_size} bytes, manifest says {entry['bytes']}")
        if check_hashes:
            got = sha256_file(f)
            if got != entry["sha256"]:
                raise IntegrityError(
                    f"{f}: sha256 {got[:16]}... does not match the manifest's {entry['sha256'][:16]}...; "
                    "the file is corrupt or was modified. Rebuild with --force (or re-download)."
                )
    return manifest


def load_array(folder: str | os.PathLike[str], name: str, manifest: Mapping[str, Any], *, mmap: bool = True) -> np.ndarray:
    """Load one listed array without pickle, memory-mapped by default, checking shape and dtype."""
    entry = manifest["files"].get(name)
    if entry is None:
        raise IntegrityError(f"{name} is not listed in {Path(folder) / MANIFEST}")
    arr = np.load(Path(folder) / name, mmap_mode="r" if mmap else None, allow_pickle=False)
    if list(arr.shape) != entry["shape"] or arr.dtype.str != entry["dtype"]:
        raise IntegrityError(f"{name}: {arr.dtype.str}{arr.shape} does not match the manifest")
    return arr


def environment_record() -> dict[str, Any]:
    """Versions that produced a build (for the manifest)."""
    from .version import __version__

    record: dict[str, Any] = {
        "cifar10s": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(ImportError):
        import torch

        record["torch"] = torch.__version__
    return record


@contextlib.contextmanager
def build_lock(root: str | os.PathLike[str], timeout: float = -1) -> Iterator[None]:
    """Exclusive lock for building into ``root`` (blocks until free, across processes)."""
    d = data_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d / ".build.lock"), timeout=timeout):
        yield


@contextlib.contextmanager
def staging_folder(root: str | os.PathLike[str], name: str) -> Iterator[Path]:
    """A fresh folder to build ``name`` in; removed on failure. Call :func:`publish` to finish.

    Must be used while holding :func:`build_lock`, which is why stale staging folders of the same
    name (left by a killed build) can safely be deleted here.
    """
    d = data_dir(root)
    for stale in d.glob(f"{_STAGING_PREFIX}{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{name}-", dir=d))
    os.chmod(staging, 0o777 & ~_current_umask())
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, final: Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest last, then swap the staging folder into place."""
    manifest = {"format_version": DATA_FORMAT_VERSION, "created_unix": int(time.time()), **manifest}
    atomic_write_json(staging / MANIFEST, manifest)
    if final.exists():
        trash = final.with_name(f"{_STAGING_PREFIX}{final.name}-old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, final)
    return final


def is_complete(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` has a manifest (the last thing a build writes)."""
    return (Path(folder) / MANIFEST).is_file()
