"""The ``datasets``-native copy of a release: Parquet files of PNG images and class labels.

``datasets.load_dataset`` does not read the package's ``.npy`` folders, so a release also carries,
for every configuration (one per published variant), a ``train`` split of that variant's training
images and the clean ``test`` split, laid out as::

    data/<config>/train-00000-of-00001.parquet     that variant's training images
    data/clean/test-00000-of-00001.parquet         the clean test split, shared by every config

Each row is ``{"image": {"bytes": <PNG>, "path": None}, "label": <int64>}``, the Arrow layout of
the ``datasets`` ``Image`` and ``ClassLabel`` features; the features are also recorded in the
file's ``huggingface`` schema metadata, which is where ``datasets`` looks for them. PNG is
lossless, so decoding a row gives back the array's pixels bit for bit.

Files are written row group by row group (``rows_per_group`` images in memory at a time, the
arrays may be memory-mapped) into a temporary file that is renamed into place only when complete.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..store import atomic_file

TRAIN, TEST = "train", "test"
#: Folder of the release holding the Parquet files.
DATA_FOLDER = "data"
#: The configuration whose folder holds the shared clean test split.
TEST_CONFIG = "clean"
ROWS_PER_GROUP = 1000
#: zlib level of the PNGs; any level decodes to the same pixels, 9 only makes the files smaller.
PNG_COMPRESS_LEVEL = 9
_INSTALL_HINT = "install pyarrow (`pip install 'cifar10s[datasets]'`)"


@dataclass(frozen=True)
class ParquetSplit:
    """One written split: where it lies in the release and the sizes the dataset card reports."""

    path: str  # inside the release, '/'-separated
    num_examples: int
    num_bytes: int  # size of the rows in memory as Arrow (what ``datasets`` calls num_bytes)
    file_bytes: int  # size of the Parquet file (what ``datasets`` calls download_size)


def split_path(config: str, split: str) -> str:
    """Path of one split's (single) Parquet file inside the release."""
    if split not in (TRAIN, TEST):
        raise ValueError(f"unknown split {split!r}: expected {TRAIN!r} or {TEST!r}")
    return f"{DATA_FOLDER}/{config}/{split}-00000-of-00001.parquet"


def features_dict(class_names: Sequence[str]) -> dict[str, Any]:
    """The features as ``datasets.Features.to_dict()`` writes them (Image + ClassLabel)."""
    return {"image": {"_type": "Image"}, "label": {"names": list(class_names), "_type": "ClassLabel"}}


def require_pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or an ImportError saying what to install (checked before any work)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"writing the Parquet copy of a release (for datasets.load_dataset) needs pyarrow: {_INSTALL_HINT}, "
            "or publish without it (parquet=False)"
        ) from exc
    return pa, pq


def _schema(pa: Any, class_names: Sequence[str]) -> Any:
    meta = json.dumps({"info": {"features": features_dict(class_names)}}, sort_keys=True)
    return pa.schema(
        [pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])),
         pa.field("label", pa.int64())],
        metadata={"huggingface": meta},
    )


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG of one ``(H, W, 3)`` uint8 image (deterministic for a given Pillow)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _check_inputs(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], what: str) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"{what}: images must be uint8 of shape (N, H, W, 3), got {images.dtype}{images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what}: labels must be integers of shape ({images.shape[0]},), got "
                         f"{labels.dtype}{labels.shape}")
    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f"{what}: class names must be non-empty and distinct, got {list(class_names)}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"{what}: labels must lie in [0, {len(class_names)}), got "
                         f"[{labels.min()}, {labels.max()}]")


def write_split(
    images: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str],
    rows_per_group: int = ROWS_PER_GROUP,
) -> tuple[int, int]:
    """Write one split to ``path`` atomically; returns (rows, Arrow bytes in memory)."""
    pa, pq = require_pyarrow()
    _check_inputs(images, labels, class_names, str(path))
    if rows_per_group < 1:
        raise ValueError(f"rows_per_group must be >= 1, got {rows_per_group}")
    schema = _schema(pa, class_names)
    n, num_bytes = int(images.shape[0]), 0
    with atomic_file(path) as f, pq.ParquetWriter(f, schema) as writer:
        for start in range(0, n, rows_per_group):
            block = np.asarray(images[start:start + rows_per_group])  # only this block is read
            pngs = [encode_png(img) for img in block]
            table = pa.table(
                {"image": pa.StructArray.from_arrays(
                    [pa.array(pngs, pa.binary()), pa.nulls(len(pngs), pa.string())], names=["bytes", "path"]),
                 "label": pa.array(np.asarray(labels[start:start + len(pngs)], dtype=np.int64))},
                schema=schema,
            )
            num_bytes += table.nbytes
            writer.write_table(table, row_group_size=rows_per_group)
        if n == 0:
            writer.write_table(schema.empty_table())
    return n, num_bytes


def write_release_parquet(
    dest: str | os.PathLike[str],
    train: Mapping[str, tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, np.ndarray],
    *,
    class_names: Sequence[str],
    rows_per_group: int = ROWS_PER_GROUP,
) -> dict[str, dict[str, ParquetSplit]]:
    """Write every configuration's ``train`` split and the shared ``test`` split under ``dest``.

    ``train`` maps a configuration name (a variant folder such as ``ops-k1``) to its training
    ``(images, labels)``; ``test`` is the clean test split. Returns ``{config: {split: ParquetSplit}}``
    (every config's ``test`` entry names the same shared file), which the dataset card describes.
    """
    if not train:
        raise ValueError("no configuration to write: pass at least one variant's training split")
    dest = Path(dest)

    def write(rel: str, images: np.ndarray, labels: np.ndarray) -> ParquetSplit:
        target = dest / rel
        rows, num_bytes = write_split(images, labels, target, class_names=class_names,
                                      rows_per_group=rows_per_group)
        return ParquetSplit(rel, rows, num_bytes, target.stat().st_size)

    shared_test = write(split_path(TEST_CONFIG, TEST), *test)
    return {config: {TRAIN: write(split_path(config, TRAIN), *arrays), TEST: shared_test}
            for config, arrays in train.items()}
