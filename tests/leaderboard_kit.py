"""Helpers shared by the submission, scoring and isolation tests: writing submission folders,
small models, and reading the clean test split the way a test (never the scorer) may."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np

META = {"name": "Test entry", "authors": ["A. Tester"], "link": "https://example.org/paper"}

#: the smallest useful CNN: trains in well under a second on 256 images
TINY_NET = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

def build_model(num_classes):
    return Tiny(num_classes)
"""

#: settings that keep a scoring run to a few seconds of training (cpu-smoke, one short epoch)
QUICK = {"epochs": 1, "train_subset": 256, "eval_subset": 200}


def write_submission(folder: Path, meta: dict | str | None, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if meta is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        (folder / "submission.json").write_text(text)
    for name, src in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(src))
    return folder


def clean_test_split(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The clean test images and labels (read by the test after scoring, for its own checks)."""
    from cifar10s.store import TEST_IMAGES, TEST_LABELS, clean_folder, load_array, verify_folder

    folder = clean_folder(root)
    manifest = verify_folder(folder)
    return (np.asarray(load_array(folder, TEST_IMAGES, manifest, mmap=False)),
            np.asarray(load_array(folder, TEST_LABELS, manifest, mmap=False)).astype(np.int64))


def image_hash(image_hwc_u8: np.ndarray) -> str:
    """The per-image key the attack and walker submissions use (sha1 of the HWC uint8 bytes)."""
    return hashlib.sha1(np.ascontiguousarray(image_hwc_u8).tobytes()).hexdigest()[:16]


def sandbox_with(*writable: Path):
    """The scorer's sandbox with extra writable folders (an attack's log folder, so a test can tell
    "it ran and found nothing" from "it never ran"); False (no sandbox) where bubblewrap cannot run
    here, for the tests of the defences that hold without it. tests/test_sandbox.py covers the
    sandbox itself and skips, with the reason, where it cannot run."""
    from cifar10s.leaderboard.sandbox.bwrap import SandboxUnavailable, detect

    try:
        return detect(writable=writable)
    except SandboxUnavailable:
        return False
