"""An EM run's work folder: its state after every round and its JSON-lines round log.

The state is a checkpoint of tensors and plain containers, written and read through
:mod:`cifar10s.checkpoint` (atomic; ``weights_only=True``, so bytes from disk are never
unpickled with the unrestricted pickler). A run killed at any moment leaves either the previous
or the new state, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT_NAME = "em_checkpoint.pt"
LOG_NAME = "em_log.jsonl"
FORMAT_VERSION = 1


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over shape, images and labels: a checkpoint only resumes on the same data."""
    h = hashlib.sha256()
    h.update(repr((tuple(images.shape), str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def save_state(workdir: Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors and plain containers) to ``workdir/em_checkpoint.pt``."""
    path = Path(workdir) / CHECKPOINT_NAME
    save_checkpoint({**state, "format_version": FORMAT_VERSION}, path)
    return path


def load_state(workdir: Path) -> dict[str, Any] | None:
    """The state in ``workdir/em_checkpoint.pt`` (read with ``weights_only=True``); ``None`` if there is none."""
    path = Path(workdir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not an EM checkpoint of format {FORMAT_VERSION}")
    return state


def append_log(workdir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``workdir/em_log.jsonl`` and fsync it."""
    path = Path(workdir) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_log(workdir: Path, records: list[dict[str, Any]]) -> None:
    """Atomically replace the JSON-lines log with ``records`` (used when resuming, so the log
    matches the checkpoint even if the run died between the checkpoint and the log append)."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(Path(workdir) / LOG_NAME, text.encode("utf-8"))


def read_log(workdir: Path) -> list[dict[str, Any]]:
    path = Path(workdir) / LOG_NAME
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
