"""CIFAR-10 as arrays, from the official archive, an extracted folder, or a download.

Whatever the source, the result is the same :class:`CIFAR10Arrays`: the five training batches in
order (as torchvision concatenates them) and the test batch, as (N, 32, 32, 3) uint8 images and
int64 labels. Every source gets a fingerprint (sha256 over the decoded arrays), and we say
whether its batch files are byte-identical to the official release.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import (
    CIFAR10_FILENAME,
    CIFAR10_FOLDER,
    CIFAR10_MEMBER_MD5,
    CLASSES,
    META_FILE,
    TEST_BATCH,
    TRAIN_BATCHES,
)
from .download import download_cifar10
from .safe_pickle import load_batch
from .safe_tar import safe_members


class SourceError(ValueError):
    """The given CIFAR-10 source is missing, unreadable or not in the expected layout."""


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

    def describe(self) -> dict[str, Any]:
        """Provenance record for manifests."""
        return {
            "origin": self.origin,
            "fingerprint": self.fingerprint,
            "official": self.official,
            "num_train": int(len(self.train_labels)),
            "num_test": int(len(self.test_labels)),
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


def _decode(name: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = load_batch(raw, name=name)
    try:
        data = np.asarray(batch["data"])
        labels = np.asarray(batch["labels"] if "labels" in batch else batch["fine_labels"], dtype=np.int64)
    except KeyError as exc:
        raise SourceError(f"{name}: missing key {exc}; not a CIFAR-10 batch") from exc
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise SourceError(f"{name}: 'data' must be uint8 of shape (N, 3072); got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise SourceError(f"{name}: {len(labels)} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise SourceError(f"{name}: labels outside 0..{len(CLASSES) - 1}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_members_from_tar(path: Path) -> dict[str, bytes]:
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH, META_FILE}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in safe_members(tar, path.parent):
                base = os.path.basename(member.name)
                if member.isfile() and base in wanted and os.path.dirname(member.name).endswith(CIFAR10_FOLDER):
                    f = tar.extractfile(member)
                    assert f is not None
                    found[base] = f.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(
            f"{path}: not a readable tar archive ({exc}). Delete it and download again, or pass an "
            "extracted 'cifar-10-batches-py' folder."
        ) from exc
    return found


def _read_members_from_dir(path: Path) -> dict[str, bytes]:
    folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
    found: dict[str, bytes] = {}
    for name in (*TRAIN_BATCHES, TEST_BATCH, META_FILE):
        f = folder / name
        if f.is_file():
            found[name] = f.read_bytes()
    return found


def load_cifar10(path: str | os.PathLike[str]) -> CIFAR10Arrays:
    """Load CIFAR-10 from an archive (``.tar.gz``) or a folder (``cifar-10-batches-py`` or its parent).

    Archive members are checked before anything is read (no traversal, no links, no devices),
    and every pickle goes through a restricted unpickler. Nothing is written to disk.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(
            f"CIFAR-10 source {path} does not exist. Pass the official cifar-10-python.tar.gz, "
            "an extracted 'cifar-10-batches-py' folder, or use download=True / --download."
        )
    members = _read_members_from_tar(path) if path.is_file() else _read_members_from_dir(path)
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in members]
    if missing:
        raise SourceError(
            f"{path}: missing {', '.join(missing)}; expected the official CIFAR-10 python layout "
            f"({CIFAR10_FOLDER}/data_batch_1..5, test_batch)."
        )
    md5s = {n: hashlib.md5(members[n], usedforsecurity=False).hexdigest() for n in CIFAR10_MEMBER_MD5}
    parts = [_decode(n, members[n]) for n in TRAIN_BATCHES]
    train_images = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = _decode(TEST_BATCH, members[TEST_BATCH])
    classes = CLASSES
    if META_FILE in members:
        meta = load_batch(members[META_FILE], name=META_FILE)
        names = meta.get("label_names")
        if isinstance(names, list) and len(names) == len(CLASSES):
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
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
            f"no CIFAR-10 found under {root}. Pass download=True (or --download) to fetch the "
            f"official archive, or point cifar10=PATH (--cifar10 PATH) at a local "
            f"{CIFAR10_FILENAME} or '{CIFAR10_FOLDER}' folder."
        )
    return download_cifar10(root, progress=progress, **download_kwargs)
