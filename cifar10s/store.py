"""On-disk layout of built data: versioned folders of ``.npy`` arrays with a verified manifest.

``<root>/cifar10s-v1/<variant>/`` holds ``*.npy`` arrays (loaded memory-mapped, never with
pickle) and ``manifest.json`` (variant, parameters, source fingerprint, sha256 of every array,
package version). A folder is written under a staging name and renamed into place only when every
file and the manifest are complete, under a file lock, so concurrent or interrupted builds never
leave something that looks finished.

A manifest is untrusted input when read back (it may come from a download or a tampered folder):
its schema is checked (plain file names inside the folder, typed entries), every listed file must
be a regular file, not a link, whose ``.npy`` header agrees with the manifest, and the arrays must
mean what the package expects (uint8 images (N, 32, 32, 3), int64 labels (N,) in 0..9).

It is one module (about 480 lines) because the on-disk layout and its validation are one
contract: every writer and reader of a variant folder goes through it (most through its typed
face, :mod:`cifar10s.folder`). Atomic writes are :mod:`cifar10s.atomic`'s, re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock

from . import strict_json
# atomic_write_bytes / atomic_write_json: re-exported, so ``from cifar10s.store import ...`` keeps working
from .atomic import atomic_file, atomic_write_bytes, atomic_write_json, current_umask  # noqa: F401
from .constants import DATA_FORMAT_VERSION, IMAGE_SHAPE, NUM_CLASSES
from .errors import ActionableError
from .errors import Cifar10sError
from .repair import repair_call

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


class IntegrityError(Cifar10sError, RuntimeError):
    """Built data does not match its manifest (corrupt, tampered or half-written)."""


class NotBuiltError(ActionableError):
    """The requested variant has not been built under this root.

    A ``RuntimeError``, like torchvision's "Dataset not found" error, so code written for
    ``torchvision.datasets.CIFAR10`` catches it; its remedies say how to build it
    (:func:`cifar10s.folder.not_built`).
    """


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


#: A manifest is a few kilobytes; anything far larger is not one.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: (images, labels) pairs a variant folder may hold; the train pair is required.
#: Evaluation sets made from a variant (e.g. Table 1's shuffled sets): images and their labels.
EVAL_IMAGES, EVAL_LABELS = "images.npy", "labels.npy"
#: (images, labels) pairs a folder of each layout may hold; the first pair is required.
_LAYOUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "variant": ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)),
    "evaluation-set": ((EVAL_IMAGES, EVAL_LABELS),),
}


def _rebuild(path: str | os.PathLike[str]) -> str:
    """How to repair the variant folder holding ``path`` (a file of it or its manifest), in Python."""
    return f"repair it with {repair_call(Path(path).parent)}"


def _bad(where: str, what: str) -> IntegrityError:
    return IntegrityError(f"{where}: {what}; the manifest is corrupt or was edited, {_rebuild(where)}")


def check_file_name(name: object, where: str) -> str:
    """A listed file must be a plain name inside its variant folder: no path, no ``..``."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..", MANIFEST)
        or len(name) > 255
        or any(c in name for c in "/\\:\0")
    ):
        raise _bad(where, f"file name {name!r} is not a plain file name inside the variant folder")
    return name


def _entry_dtype(name: str, entry: Mapping[str, Any], where: str) -> np.dtype:
    text = entry.get("dtype")
    try:
        if not isinstance(text, str) or len(text) > 32:
            raise TypeError
        dtype = np.dtype(text)
    except (TypeError, ValueError, SyntaxError, OverflowError):  # what numpy raises for odd strings
        raise _bad(where, f"{name}: 'dtype' {repr(text)[:40]} is not a numpy dtype string") from None
    if dtype.hasobject:
        raise _bad(where, f"{name}: object dtype {text!r} would need pickle")
    return dtype


def _check_entry(name: str, entry: object, where: str) -> Mapping[str, Any]:
    """Types of one ``files`` entry: sha256 hex, byte count, and for arrays shape and dtype."""
    if not isinstance(entry, dict):
        raise _bad(where, f"the entry of {name} is not an object")
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise _bad(where, f"{name}: 'sha256' must be 64 lowercase hex digits")
    size = entry.get("bytes")
    if type(size) is not int or size < 0:
        raise _bad(where, f"{name}: 'bytes' must be an integer >= 0, not {size!r}")
    if "shape" in entry or "dtype" in entry:
        shape = entry.get("shape")
        if not isinstance(shape, list) or len(shape) > 32 or not all(type(d) is int and d >= 0 for d in shape):
            raise _bad(where, f"{name}: 'shape' must be a list of integers >= 0, not {str(shape)[:60]}")
        _entry_dtype(name, entry, where)
    return entry


def _describe(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('dtype')} {tuple(entry.get('shape') or ())}"


def _check_arrays(files: Mapping[str, Any], where: str, layout: str = "variant") -> None:
    """What the arrays must mean: uint8 (N, 32, 32, 3) images with int64 (N,) labels, N >= 1."""
    pairs = _LAYOUTS[layout]
    for images, labels in pairs:
        if images not in files and labels not in files and images != pairs[0][0]:
            continue
        for n in (images, labels):
            if n not in files or "shape" not in files[n]:
                raise IntegrityError(f"{where}: {n} is not listed as an array; {_rebuild(where)}")
        img, lab = files[images], files[labels]
        shape = img["shape"]
        if len(shape) != 4 or tuple(shape[1:]) != IMAGE_SHAPE or shape[0] < 1 or _entry_dtype(images, img, where) != np.uint8:
            raise IntegrityError(
                f"{where}: {images} must be uint8 of shape (N, 32, 32, 3), the manifest lists {_describe(img)}; {_rebuild(where)}"
            )
        if lab["shape"] != [shape[0]] or _entry_dtype(labels, lab, where) != np.int64:
            raise IntegrityError(
                f"{where}: {labels} must be int64 of shape ({shape[0]},) to match {images}, the manifest lists "
                f"{_describe(lab)}; {_rebuild(where)}"
            )
    noise = files.get(EM_NOISE)
    if noise is not None and noise.get("shape") != files[pairs[0][0]]["shape"]:
        raise IntegrityError(f"{where}: {EM_NOISE} must have the shape of {TRAIN_IMAGES}; {_rebuild(where)}")


def validate_manifest(manifest: object, where: str, *, layout: str = "variant") -> dict[str, Any]:
    """Check a parsed manifest's schema and meaning; return it, or raise :class:`IntegrityError`.

    Also for manifests that did not come from disk (e.g. downloaded ones) before acting on them.
    ``layout``: ``"variant"`` (a built variant folder) or ``"evaluation-set"`` (``images.npy`` +
    ``labels.npy``, e.g. an exported shuffled set).
    """
    if not isinstance(manifest, dict):
        raise IntegrityError(f"{where}: not a JSON object; {_rebuild(where)}")
    version = manifest.get("format_version")
    if type(version) is not int or version != DATA_FORMAT_VERSION:
        raise IntegrityError(
            f"{where}: format version {repr(version)[:20]} is not {DATA_FORMAT_VERSION}, the one this version of "
            f"cifar10s reads; {_rebuild(where)}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise _bad(where, "no 'files' table")
    for name, entry in files.items():
        _check_entry(check_file_name(name, where), entry, where)
    source = manifest.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("fingerprint"), str):
        raise _bad(where, "no 'source' record with a fingerprint")
    content = source.get("content_fingerprint")
    if content is not None and not (
        isinstance(content, dict) and set(content) == {"train", "test"}
        and all(isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v) for v in content.values())
    ):
        raise _bad(where, "'source.content_fingerprint' must map 'train' and 'test' to sha256 hex digests")
    for key, kind, called in (("variant", dict, "a JSON object"), ("classes", list, "a JSON array"),
                              ("inputs_key", str, "a string")):
        if key in manifest and not isinstance(manifest[key], kind):
            raise _bad(where, f"'{key}' must be {called}")
    _check_arrays(files, where, layout)
    return manifest


def read_manifest(folder: str | os.PathLike[str], *, layout: str = "variant") -> dict[str, Any]:
    """Read and validate ``folder``'s manifest (FileNotFoundError when there is none)."""
    path = Path(folder) / MANIFEST
    st = os.lstat(path)  # FileNotFoundError passes through: "not built" is not corruption
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"{path}: not a regular file (a link or special file); {_rebuild(path)}")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"{path}: {st.st_size} bytes is far too large for a manifest; {_rebuild(path)}")
    try:
        manifest = strict_json.loads(path.read_bytes())
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise IntegrityError(f"{path}: unreadable manifest ({str(exc)[:200]}); {_rebuild(path)}") from exc
    return validate_manifest(manifest, str(path), layout=layout)


def _regular_file(f: Path) -> os.stat_result:
    """lstat of a listed file that must exist as a regular file, never a link."""
    try:
        st = os.lstat(f)
    except FileNotFoundError:
        raise IntegrityError(f"{f} is listed in the manifest but missing; {_rebuild(f)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise IntegrityError(
            f"{f} is a symbolic link; built data never contains links, so {_rebuild(f)}"
        )
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"{f} is not a regular file; {_rebuild(f)}")
    return st


def read_npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of an open ``.npy`` file (format 1.0 or 2.0), read before any
    of its data; a file in another format or with a malformed header raises ValueError."""
    version = np.lib.format.read_magic(fh)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        return read(fh)
    except (OSError, ValueError):
        raise
    except Exception as exc:  # numpy's header parser lets tokenize and parser errors of garbage bytes through
        raise ValueError(f"malformed .npy header ({type(exc).__name__})") from exc


def _check_npy(f: Path, entry: Mapping[str, Any], size: int) -> None:
    """The ``.npy`` header agrees with the manifest and with the file's size (read before any data)."""
    try:
        with open(f, "rb") as fh:
            shape, fortran, dtype = read_npy_header(fh)
            offset = fh.tell()
    except (OSError, ValueError, SyntaxError) as exc:
        raise IntegrityError(f"{f}: not a readable .npy file ({str(exc)[:200]}); {_rebuild(f)}") from exc
    if list(shape) != entry["shape"] or dtype != np.dtype(entry["dtype"]):
        raise IntegrityError(
            f"{f}: {dtype.str}{tuple(shape)} does not match the manifest's {_describe(entry)}; {_rebuild(f)}"
        )
    if fortran:
        raise IntegrityError(f"{f}: stored in Fortran order, cifar10s writes C order; {_rebuild(f)}")
    if offset + math.prod(shape) * dtype.itemsize != size:
        raise IntegrityError(f"{f}: {size} bytes, but its header describes {offset + math.prod(shape) * dtype.itemsize}; {_rebuild(f)}")


def _check_label_values(f: Path) -> None:
    """Labels are small: check their range through a memory map (no copy, no second read of images)."""
    try:
        labels = np.load(f, mmap_mode="r", allow_pickle=False)
        low, high = int(labels.min()), int(labels.max())
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{f}: unreadable labels ({str(exc)[:200]}); {_rebuild(f)}") from exc
    if low < 0 or high >= NUM_CLASSES:
        raise IntegrityError(f"{f}: labels range over {low}..{high}, outside 0..{NUM_CLASSES - 1}; {_rebuild(f)}")


def verify_folder(folder: str | os.PathLike[str], *, check_hashes: bool = True,
                  layout: str = "variant") -> dict[str, Any]:
    """Check the manifest (schema and meaning) and every file it lists: a regular file, not a link,
    of the listed size (and sha256), arrays whose header matches, labels in 0..9."""
    folder = Path(folder)
    manifest = read_manifest(folder, layout=layout)
    for name in manifest["files"]:
        check_listed_file(folder, name, manifest, check_hashes=check_hashes, layout=layout)
    return manifest


def check_listed_file(folder: str | os.PathLike[str], name: str, manifest: Mapping[str, Any], *,
                      check_hashes: bool = True, layout: str = "variant") -> None:
    """One file of a validated manifest: regular, of the listed size (and sha256), its ``.npy``
    header as listed, and for labels their values in 0..9."""
    f, entry = Path(folder) / name, manifest["files"][name]
    size = _regular_file(f).st_size
    if size != entry["bytes"]:
        raise IntegrityError(f"{f} has {size} bytes, manifest says {entry['bytes']}; {_rebuild(f)}")
    if check_hashes:
        got = sha256_file(f)
        if got != entry["sha256"]:
            raise IntegrityError(
                f"{f}: sha256 {got[:16]}... does not match the manifest's {entry['sha256'][:16]}...; "
                f"the file is corrupt or was modified; {_rebuild(f)}"
            )
    if "shape" in entry:
        _check_npy(f, entry, size)
    if name in {labels for _, labels in _LAYOUTS[layout]}:
        _check_label_values(f)


def load_array(folder: str | os.PathLike[str], name: str, manifest: Mapping[str, Any], *, mmap: bool = True) -> np.ndarray:
    """Load one listed array without pickle, memory-mapped by default, after checking its name,
    its entry and its ``.npy`` header against the manifest (so no size is trusted blindly).

    The map is copy-on-write: ``arr[i] = ...`` (common in poisoning code) changes the array in
    memory and never the file on disk."""
    folder = Path(folder)
    where = str(folder / MANIFEST)
    files = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not isinstance(files, Mapping) or name not in files:
        raise IntegrityError(f"{name} is not listed in {where}")
    entry = _check_entry(check_file_name(name, where), files[name], where)
    if "shape" not in entry:
        raise IntegrityError(f"{where}: {name} is not listed as an array; {_rebuild(where)}")
    f = folder / name
    _check_npy(f, entry, _regular_file(f).st_size)
    try:
        arr = np.load(f, mmap_mode="c" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{f}: unreadable array ({str(exc)[:200]}); {_rebuild(f)}") from exc
    if list(arr.shape) != entry["shape"] or arr.dtype != np.dtype(entry["dtype"]):
        raise IntegrityError(f"{name}: {arr.dtype.str}{arr.shape} does not match the manifest; {_rebuild(f)}")
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
    """Exclusive lock for building into ``root`` (blocks until free, across processes).

    Folders that this call created are removed again if nothing but the lock ended up in them
    (a build that failed before writing anything leaves no empty ``cifar10s-v1/`` behind).
    """
    d = data_dir(root)
    created = [p for p in (Path(root).expanduser(), d) if not p.exists()]
    d.mkdir(parents=True, exist_ok=True)
    lock = d / ".build.lock"
    try:
        with FileLock(str(lock), timeout=timeout):
            yield
    finally:
        if d in created and [p.name for p in d.iterdir()] == [lock.name]:
            lock.unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty


def remove_stale_staging(root: str | os.PathLike[str]) -> list[Path]:
    """Delete every staging folder under ``root``'s data folder (left there by killed builds).

    Call only while holding :func:`build_lock`: every staging folder is created under that lock,
    so while it is held none of them belongs to a live build. Returns what was removed.
    """
    d = data_dir(root)
    if not d.is_dir():
        return []
    removed = []
    for entry in d.iterdir():
        if not entry.name.startswith(_STAGING_PREFIX):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


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
    os.chmod(staging, 0o777 & ~current_umask())
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
