"""CIFAR-10 as arrays, from the official archive, an extracted folder, or a download.

Whatever the source, the result is the same :class:`CIFAR10Arrays`: the five training batches in
order (as torchvision concatenates them) and the test batch, as (N, 32, 32, 3) uint8 images and
int64 labels. Every source gets a fingerprint (sha256 over the decoded arrays), and we say
whether its batch files are byte-identical to the official release.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import (
    CIFAR10_FILENAME,
    CIFAR10_FOLDER,
    CIFAR10_MEMBER_MD5,
    CIFAR10_OFFICIAL_CONTENT,
    CLASSES,
    META_FILE,
    TEST_BATCH,
    TRAIN_BATCHES,
)
from .download import download_cifar10
from .errors import SourceError
from .safe_pickle import MAX_PICKLE_BYTES, load_batch
from .safe_tar import checked_members, open_archive

__all__ = [
    "CIFAR10Arrays",
    "SourceError",
    "content_fingerprint",
    "find_cifar10",
    "fingerprint_arrays",
    "load_cifar10",
    "resolve_cifar10",
    "source_kind",
]

#: Bytes per image row in a batch (3 x 32 x 32, channel-major).
ROW_BYTES = 3072
#: An official batch has 10,000 rows; a subset may have fewer, never more.
MAX_BATCH_ROWS = 10_000
#: The official split sizes, upper bounds for any source.
MAX_TRAIN_ROWS, MAX_TEST_ROWS = 50_000, 10_000
#: ``batches.meta`` is a few hundred bytes.
MAX_META_BYTES = 64 * 1024


@dataclass(frozen=True)
class CIFAR10Arrays:
    """Decoded CIFAR-10 splits plus where they came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    fingerprint: str
    official: bool
    origin: str
    member_md5: dict[str, str] = field(default_factory=dict)

    @property
    def content_fingerprint(self) -> dict[str, str]:
        """Per split, the order-free identity of its images and labels (:func:`content_fingerprint`)."""
        return {"train": content_fingerprint(self.train_images, self.train_labels),
                "test": content_fingerprint(self.test_images, self.test_labels)}

    def describe(self) -> dict[str, Any]:
        """Provenance record for manifests."""
        content = self.content_fingerprint
        return {
            "origin": self.origin,
            "fingerprint": self.fingerprint,
            "content_fingerprint": content,
            "kind": source_kind(self.official, content, len(self.train_labels), len(self.test_labels)),
            "official": self.official,
            "num_train": len(self.train_labels),
            "num_test": len(self.test_labels),
            "member_md5": dict(self.member_md5),
        }

    @property
    def provenance_note(self) -> str:
        if self.official:
            return "official CIFAR-10 (batch files match the published release)"
        return (
            f"NOT the official CIFAR-10: {len(self.train_labels)} train / {len(self.test_labels)} "
            "test images whose batch files differ from the published release; results built from "
            "it are not comparable with the paper"
        )


def fingerprint_arrays(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray
) -> str:
    """sha256 over shapes and bytes of the four decoded arrays (labels as int64)."""
    h = hashlib.sha256()
    for arr in (train_images, np.asarray(train_labels, np.int64), test_images, np.asarray(test_labels, np.int64)):
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def content_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """What a split holds, whatever the archive's bytes or the images' order.

    sha256 over the sorted sha256 digests of each (label, image) pair, the label as one int64 and
    the image as its 32 x 32 x 3 uint8 bytes. Two copies of CIFAR-10 with the same images and labels
    in another order, or pickled differently, get the same value; one changed pixel or label
    changes it.
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or len(images) != len(labels):
        raise ValueError(f"expected (N, 32, 32, 3) uint8 images with N labels, got {images.shape} and {labels.shape}")
    rows = np.concatenate([labels.astype("<i8").view(np.uint8).reshape(-1, 8), images.reshape(len(images), -1)], axis=1)
    digests = sorted(hashlib.sha256(row).digest() for row in rows)
    h = hashlib.sha256(f"cifar10-content-v1:{len(digests)}:".encode())
    for d in digests:
        h.update(d)
    return h.hexdigest()


def source_kind(official: bool, content: dict[str, str] | None, num_train: int | None, num_test: int | None) -> str:
    """How a CIFAR-10 copy relates to the official release.

    ``"official"``: the batch files are the published ones (member md5s). ``"official-content"``:
    other bytes or order, but the content fingerprints equal the official archive's
    (:data:`~cifar10s.constants.CIFAR10_OFFICIAL_CONTENT`, once measured). ``"full-copy"``: all of
    CIFAR-10's size (50,000 / 10,000 images) from another copy whose content was not matched with
    the official archive's. ``"subset"``: fewer images.
    """
    if official:
        return "official"
    if CIFAR10_OFFICIAL_CONTENT is not None and content == CIFAR10_OFFICIAL_CONTENT:
        return "official-content"
    if num_train == MAX_TRAIN_ROWS and num_test == MAX_TEST_ROWS:
        return "full-copy"
    return "subset"


def _size_limit(name: str) -> int:
    return MAX_META_BYTES if name == META_FILE else MAX_PICKLE_BYTES


def _too_big(where: str, size: int, limit: int) -> SourceError:
    return SourceError(
        f"{where} is {size} bytes, more than the {limit} a CIFAR-10 file can be; refusing to read it. "
        "It is corrupt or not CIFAR-10: download the official archive again"
    )


def _decode(name: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Check one batch's structure (the data's shape and dtype, and that the rows, labels and file
    names agree) and return its images as (N, 32, 32, 3) uint8 and labels as int64."""
    batch = load_batch(raw, name=name)
    missing = [k for k in ("data", "labels", "filenames") if k not in batch]
    if missing:
        raise SourceError(f"{name}: no {', '.join(repr(k) for k in missing)} entry; not a CIFAR-10 batch")
    data, labels, filenames = batch["data"], batch["labels"], batch["filenames"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_BYTES:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise SourceError(f"{name}: 'data' must be a uint8 array of shape (N, {ROW_BYTES}); got {got}")
    rows = int(data.shape[0])
    if not 1 <= rows <= MAX_BATCH_ROWS:
        raise SourceError(f"{name}: {rows} rows; a CIFAR-10 batch has 1 to {MAX_BATCH_ROWS}")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise SourceError(f"{name}: 'labels' must be a list of integers")
    if len(labels) != rows:
        raise SourceError(f"{name}: {len(labels)} labels for {rows} images")
    if not all(0 <= v < len(CLASSES) for v in labels):
        raise SourceError(f"{name}: labels outside 0..{len(CLASSES) - 1}")
    if not isinstance(filenames, list) or not all(isinstance(f, (bytes, str)) for f in filenames):
        raise SourceError(f"{name}: 'filenames' must be a list of names")
    if len(filenames) != rows:
        raise SourceError(f"{name}: {len(filenames)} file names for {rows} images")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.array(labels, dtype=np.int64)


def _read_members_from_tar(path: Path) -> dict[str, bytes]:
    """The batch files' bytes, each size checked from its tar header before it is read."""
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH, META_FILE}
    found: dict[str, bytes] = {}
    with open_archive(path) as tar:
        for member in checked_members(tar, path.parent, max_member_bytes=MAX_PICKLE_BYTES):
            base = os.path.basename(member.name)
            if not (member.isfile() and base in wanted and os.path.dirname(member.name).endswith(CIFAR10_FOLDER)):
                continue
            if base in found:
                raise SourceError(f"{path}: holds {base} twice; not an official CIFAR-10 archive. Download it again")
            if member.size > _size_limit(base):
                raise _too_big(f"{path}: member {member.name}", member.size, _size_limit(base))
            f = tar.extractfile(member)
            assert f is not None
            with f:
                found[base] = f.read(member.size)
    return found


def _read_members_from_dir(path: Path) -> dict[str, bytes]:
    """The batch files of an extracted folder, each size checked before it is read."""
    folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
    found: dict[str, bytes] = {}
    for name in (*TRAIN_BATCHES, TEST_BATCH, META_FILE):
        f = folder / name
        if not f.is_file():
            continue
        limit = _size_limit(name)
        try:
            if f.stat().st_size > limit:
                raise _too_big(str(f), f.stat().st_size, limit)
            with open(f, "rb") as fh:
                raw = fh.read(limit + 1)
        except OSError as exc:
            raise SourceError(f"{f}: cannot be read ({exc.strerror or exc})") from exc
        if len(raw) > limit:  # it grew after the size check
            raise _too_big(str(f), len(raw), limit)
        found[name] = raw
    return found


def load_cifar10(path: str | os.PathLike[str]) -> CIFAR10Arrays:
    """Load CIFAR-10 from an archive (``.tar.gz``) or a folder (``cifar-10-batches-py`` or its parent).

    Archive members are checked from their headers before anything is read (no traversal, no
    links, no devices, no oversize members), a damaged archive is reported as corrupt, every
    pickle goes through a restricted unpickler, and each batch's shape, dtype and row counts are
    checked. Nothing is written to disk. Every failure is a :class:`SourceError`.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(
            f"CIFAR-10 source {path} does not exist. Pass the official cifar-10-python.tar.gz, "
            "an extracted 'cifar-10-batches-py' folder, or use download=True."
        )
    members = _read_members_from_tar(path) if path.is_file() else _read_members_from_dir(path)
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in members]
    if missing:
        raise SourceError(
            f"{path}: missing {', '.join(missing)}; expected the official CIFAR-10 python layout "
            f"({CIFAR10_FOLDER}/data_batch_1..5, test_batch)."
        )
    md5s = {n: hashlib.md5(members[n], usedforsecurity=False).hexdigest() for n in CIFAR10_MEMBER_MD5}
    parts = [_decode(n, members.pop(n)) for n in TRAIN_BATCHES]  # pop: free each file once decoded
    train_images = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    del parts
    test_images, test_labels = _decode(TEST_BATCH, members.pop(TEST_BATCH))
    if len(train_labels) > MAX_TRAIN_ROWS or len(test_labels) > MAX_TEST_ROWS:
        raise SourceError(
            f"{path}: {len(train_labels)} train / {len(test_labels)} test images, more than CIFAR-10's "
            f"{MAX_TRAIN_ROWS} / {MAX_TEST_ROWS}; not a CIFAR-10 source"
        )
    classes = CLASSES
    if META_FILE in members:
        meta = load_batch(members[META_FILE], name=META_FILE, max_bytes=MAX_META_BYTES)
        names = meta.get("label_names")
        if isinstance(names, list) and len(names) == len(CLASSES) and all(isinstance(n, (bytes, str)) for n in names):
            classes = tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)
    return CIFAR10Arrays(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        classes=classes,
        fingerprint=fingerprint_arrays(train_images, train_labels, test_images, test_labels),
        official=md5s == CIFAR10_MEMBER_MD5,
        origin=str(path.resolve()),
        member_md5=md5s,
    )


def find_cifar10(root: str | os.PathLike[str]) -> Path | None:
    """A CIFAR-10 copy already under ``root`` (ours or torchvision's layout), if any."""
    root = Path(root)
    for candidate in (root / CIFAR10_FOLDER, root / CIFAR10_FILENAME):
        if candidate.exists():
            return candidate
    return None


def resolve_cifar10(
    root: str | os.PathLike[str],
    cifar10: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    progress: bool = True,
    **download_kwargs: Any,
) -> Path:
    """Where to read CIFAR-10 from: an explicit path, a copy under ``root``, or a fresh download."""
    if cifar10 is not None:
        return Path(cifar10)
    existing = find_cifar10(root)
    if existing is not None:
        return existing
    if not download:
        raise SourceError(
            f"no CIFAR-10 found under {root}: pass cifar10=PATH, PATH being a local {CIFAR10_FILENAME} "
            f"or '{CIFAR10_FOLDER}' folder, or download=True to fetch the official archive"
        )
    return download_cifar10(root, progress=progress, **download_kwargs)
