"""The training set to audit, from wherever it comes, checked before any detector sees it.

Sources: arrays handed to :func:`~cifar10s.auditing.verdict.audit`; a pair of ``.npy`` files
(read without pickle, header checked before the data is read); a built variant under a data root
(through the store, which checks the manifest); a CIFAR-10 archive or folder (through
:mod:`cifar10s.sources`, which never unpickles anything but plain arrays).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LabelledImages", "MAX_CLASSES", "MAX_IMAGES", "check_training_set", "from_cifar10", "from_npy",
           "from_variant", "clean_test_of_root"]

#: Bounds on what is audited: CIFAR-10-sized images, at most a few CIFAR-10s.
IMAGE_SHAPE = (32, 32, 3)
MAX_IMAGES = 200_000
MAX_CLASSES = 1000
MIN_IMAGES = 10


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...] | None
    origin: str
    test: LabelledImages | None = None  # the matching clean test split, where the source has one


def check_training_set(images: object, labels: object, num_classes: int | None = None,
                       where: str = "images") -> tuple[np.ndarray, np.ndarray, int]:
    """uint8 (N, 32, 32, 3) images and N integer labels in [0, K): returned as arrays with K."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{where}: expected a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{where}: expected uint8 images of shape (N, 32, 32, 3); got {images.dtype} "
                         f"{images.shape}. Convert with np.asarray(x, dtype=np.uint8) in HWC order")
    n = images.shape[0]
    if not MIN_IMAGES <= n <= MAX_IMAGES:
        raise ValueError(f"{where}: {n} images; the audit needs {MIN_IMAGES} to {MAX_IMAGES}")
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu" or lab.shape != (n,):
        raise ValueError(f"{where}: expected {n} integer labels of shape ({n},); got {lab.dtype} {lab.shape}")
    lo, hi = int(lab.min()), int(lab.max())
    limit = MAX_CLASSES if num_classes is None else num_classes
    if lo < 0 or hi >= limit:
        raise ValueError(f"{where}: labels must lie in [0, {limit}); found {lo}..{hi}")
    if lo == hi:
        raise ValueError(f"{where}: every label is {lo}; a shortcut needs at least two classes to tell apart")
    return images, lab.astype(np.int64), hi + 1 if num_classes is None else num_classes


def _read_npy(path: Path, what: str) -> np.ndarray:
    """An ``.npy`` file without pickle, its header checked before any data is read."""
    from ..store import read_npy_header

    try:
        with open(path, "rb") as f:
            shape, _, dtype = read_npy_header(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} does not exist") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"{what} file {path} is not a valid .npy array ({exc}); save it with np.save") from exc
    if dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"{what} file {path} holds {dtype} values; expected plain numbers (no pickled objects)")
    if len(shape) >= 1 and shape[0] > MAX_IMAGES:
        raise ValueError(f"{what} file {path}: {shape[0]} rows, more than the {MAX_IMAGES} the audit reads")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if expected > MAX_IMAGES * int(np.prod(IMAGE_SHAPE)) * 8:
        raise ValueError(f"{what} file {path}: {shape} {dtype} is too large")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise ValueError(f"{what} file {path} could not be read ({exc})") from exc


def from_npy(images: str | os.PathLike[str], labels: str | os.PathLike[str]) -> LabelledImages:
    """Images (uint8 N x 32 x 32 x 3) and labels (N ints) from two ``.npy`` files."""
    x = _read_npy(Path(images), "images")
    y = _read_npy(Path(labels), "labels")
    check_training_set(x, y, where=str(images))
    return LabelledImages(np.asarray(x), np.asarray(y).astype(np.int64), None, f"{images} + {labels}")


def from_variant(root: str | os.PathLike[str], variant: str) -> LabelledImages:
    """The training split of a built variant under ``root`` (manifest and sha256 checked)."""
    from ..folder import open_variant
    from ..store import TRAIN_IMAGES, TRAIN_LABELS
    from ..variants import parse_variant

    spec = parse_variant(variant)
    folder = open_variant(root, spec)  # NotBuiltError says how to build it
    return LabelledImages(np.asarray(folder.load(TRAIN_IMAGES)), np.asarray(folder.load(TRAIN_LABELS)).astype(np.int64),
                          tuple(folder.classes) or None, f"{spec.folder_name} under {root}")


def clean_test_of_root(root: str | os.PathLike[str]) -> LabelledImages | None:
    """The clean CIFAR-10 test split stored under ``root``, if the clean variant is built."""
    from ..folder import open_folder
    from ..store import TEST_IMAGES, TEST_LABELS, clean_folder, is_complete

    path = clean_folder(root)
    if not is_complete(path):
        return None
    folder = open_folder(path)
    return LabelledImages(np.asarray(folder.load(TEST_IMAGES)), np.asarray(folder.load(TEST_LABELS)).astype(np.int64),
                          None, f"clean test split under {root}")


def from_cifar10(path: str | os.PathLike[str]) -> LabelledImages:
    """The training split of a CIFAR-10 archive or ``cifar-10-batches-py`` folder, its test split attached."""
    from ..sources.cifar10 import load_cifar10

    src = load_cifar10(path)
    test = LabelledImages(src.test_images, src.test_labels.astype(np.int64), src.classes, f"{path} (test split)")
    return LabelledImages(src.train_images, src.train_labels.astype(np.int64), src.classes, str(path), test)
