"""What a result records about where it came from: code, data, environment, and its work folders.

Kept apart from the orchestration so that the renderer and the shuffle experiment can describe
their inputs the same way without importing the scorer.
"""

from __future__ import annotations

import math
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import strict_json
from ...folder import open_variant
from ...store import TRAIN_IMAGES, TRAIN_LABELS, atomic_write_json
from ...variants import VariantSpec
from ...version import __version__
from ...paper import train_set_name
from ..board.result_file import data_caveats


__all__ = [
    "STD_DEFINITION",
    "code_version",
    "data_caveats",
    "dataset_provenance",
    "environment",
    "recorded_workdir",
    "stamp_workdir",
    "summary",
]

STD_DEFINITION = "sample standard deviation over seeds (divisor n - 1); 0.0 for a single seed"
STAMP_SUFFIX = ".scoring.json"


def code_version() -> dict[str, Any]:
    """``cifar10s.__version__`` plus the git commit (and whether the tree is dirty) when available."""
    repo = Path(__file__).resolve().parents[2]
    commit: str | None = None
    dirty: bool | None = None
    if (repo / ".git").exists():
        try:
            r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "HEAD"], capture_output=True,
                               text=True, timeout=20)
            if r.returncode == 0 and r.stdout.strip():
                commit = r.stdout.strip()
                s = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=20)
                dirty = bool(s.stdout.strip()) if s.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            pass
    return {"cifar10s": __version__, "git_commit": commit, "git_dirty": dirty}


def dataset_provenance(root: str | Path, spec: VariantSpec) -> dict[str, Any]:
    """Which training data was used: variant, manifest sha256, array sha256s and source."""
    folder = open_variant(root, spec, check_hashes=False)
    return {
        "variant": spec.folder_name,
        "spec": spec.to_dict(),
        "paper_train_set": train_set_name(spec),
        "manifest_sha256": folder.manifest_sha256(),
        "train_images_sha256": folder.sha256(TRAIN_IMAGES),
        "train_labels_sha256": folder.sha256(TRAIN_LABELS),
        "num_train": folder.num_train,
        "source_fingerprint": folder.source.fingerprint,
        "source_content_fingerprint": folder.source.content_fingerprint,
        "source_kind": folder.source.kind,
        "num_test": folder.source.num_test,
        "official_cifar10": folder.source.official,
        "recipe": folder.recipe_version,  # None for variants without EM
        "built_with_cifar10s": folder.built_with,
    }


def environment(device: torch.device) -> dict[str, Any]:
    """Library versions, platform and threads of the scoring run (+ CUDA and the GPU's name)."""
    env = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def summary(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, sample std (:data:`STD_DEFINITION`), n and the values (non-finite ones not counted)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    mean = sum(vals) / n if n else None
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else (0.0 if n else None)  # type: ignore[operator]
    return {"mean": mean, "std": std, "n": n, "values": list(values)}


def recorded_workdir(workdir: str | None, out_dir: Path | None) -> str | None:
    """A seed's work folder as the result records it: relative to the result's folder when inside
    it (the default ``.work/...``), so a published result does not carry the scoring machine's paths."""
    if workdir is None or out_dir is None:
        return workdir
    try:
        return Path(workdir).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return workdir


def stamp_workdir(wd: Path, stamp: dict[str, Any]) -> dict[str, Any]:
    """Record what a work folder is for, or check it is for the same thing; returns the stored stamp.

    The record is ``<wd>.scoring.json`` beside the folder, not in it: the folder is the training
    child's, the record the scorer's. Keys starting with ``_`` are chosen once, when the record is
    created (e.g. a secret order),
    and kept as they were on later runs.
    """
    path = wd.with_name(wd.name + STAMP_SUFFIX)
    if path.exists():
        old = strict_json.read_file(path, max_bytes=2**20)
        if not isinstance(old, dict):
            raise ValueError(f"{path} is not a scoring record; use a fresh --workdir")
        keys = {k for k in set(old) | set(stamp) if not k.startswith("_")}
        changed = sorted(k for k in keys if old.get(k) != stamp.get(k))
        if changed:
            raise ValueError(
                f"{wd} holds a scoring run of something else (changed: {', '.join(changed)}); the "
                "submission files or the data changed since it was started. Use a fresh --workdir."
            )
        missing = {k: v for k, v in stamp.items() if k.startswith("_") and k not in old}
        if missing:
            old.update(missing)
            atomic_write_json(path, old)
        return dict(old)
    atomic_write_json(path, stamp)
    return dict(stamp)
