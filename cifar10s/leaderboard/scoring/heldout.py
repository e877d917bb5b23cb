"""The held-out clean test set, as the scoring process holds it: verified once, then never re-read.

:class:`HeldOutTestSet` reads the clean test images and labels into memory before any child
process starts and checks them against what the package knows, not only against the folder's own
manifest (which anyone who can rewrite the labels can rewrite too):

* ``pinned``: the sha256 of both arrays is stored in the package for the source's fingerprint
  (``cifar10s/data/test-split-pins.json``);
* ``source-archive``: no pin, but the official CIFAR-10 archive (or folder) is under the root
  and its member md5 match the published ones (:data:`cifar10s.constants.CIFAR10_MEMBER_MD5`):
  the test split is decoded from it again and compared;
* ``unverified``: neither; the result says "test split not pinned".

Every accuracy is computed here from logits a child returned, with this in-memory copy of the
labels. :meth:`HeldOutTestSet.check_unchanged` re-hashes the files after scoring, so a result is
never written when anything under the clean folder changed meanwhile.
"""

from __future__ import annotations

import hashlib
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ... import strict_json
from ...constants import CIFAR10_MEMBER_MD5
from ...folder import open_folder
from ...store import MANIFEST, TEST_IMAGES, TEST_LABELS, IntegrityError, clean_folder, sha256_file
from ...sources.cifar10 import content_fingerprint

__all__ = [
    "HeldOutTestSet",
    "array_sha256",
    "load_pins",
    "snapshot_files",
    "verify_test_split",
]

PINS_FILE = "test-split-pins.json"
REBUILD_HINT = "rebuild it with `cifar10s build --variant clean --force` from a trusted CIFAR-10 copy and score again"


def array_sha256(array: np.ndarray) -> str:
    """sha256 over dtype, shape and C-order bytes (independent of the ``.npy`` header layout)."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def load_pins() -> dict[str, dict[str, Any]]:
    """Source fingerprint -> pinned test-split hashes, as stored in the package."""
    text = resources.files("cifar10s").joinpath("data", PINS_FILE).read_text(encoding="utf-8")
    return dict(strict_json.loads(text)["pins"])


def verify_test_split(root: str | Path, fingerprint: str, images: np.ndarray, labels: np.ndarray,
                      *, pins: dict[str, dict[str, Any]] | None = None,
                      official_md5: dict[str, str] | None = None) -> dict[str, Any]:
    """How the test arrays were checked (see the module docstring); raises IntegrityError on a mismatch."""
    pins = load_pins() if pins is None else pins
    pin = pins.get(fingerprint)
    got = {"test_images_sha256": array_sha256(images), "test_labels_sha256": array_sha256(labels.astype(np.int64))}
    if pin is not None:
        bad = [k for k in got if got[k] != pin[k]]
        if bad:
            raise IntegrityError(f"the clean test split differs from the values pinned in the package for its "
                                 f"CIFAR-10 source ({', '.join(bad)}); the clean folder was modified: {REBUILD_HINT}")
        return {"method": "pinned", "caveat": None, **got}
    from ...sources.cifar10 import SourceError, find_cifar10, load_cifar10

    source = find_cifar10(root)
    md5 = CIFAR10_MEMBER_MD5 if official_md5 is None else official_md5
    if source is not None:
        try:
            src = load_cifar10(source)
        except SourceError:
            src = None
        if src is not None and src.member_md5 == md5:
            if not (np.array_equal(src.test_images, images) and np.array_equal(src.test_labels, labels)):
                raise IntegrityError(f"the clean test split differs from the one decoded from {source.name} "
                                     f"(whose files match the published md5); {REBUILD_HINT}")
            return {"method": "source-archive", "caveat": None, **got}
    return {"method": "unverified", **got,
            "caveat": "test split not pinned: its hashes are not stored in the package and no CIFAR-10 archive "
                      "with the published md5 is under the root to re-derive it from"}


def snapshot_files(paths: list[Path]) -> dict[str, str]:
    """sha256 of each file (the state :meth:`HeldOutTestSet.check_unchanged` compares against)."""
    return {str(p): sha256_file(p) for p in paths}


class HeldOutTestSet:
    """The clean test split held by the scoring process (see the module docstring).

    ``watch`` names further folders (the training variant) whose files must also be unchanged
    when :meth:`check_unchanged` runs.
    """

    def __init__(self, root: str | Path, *, watch: tuple[Path, ...] = ()) -> None:
        clean = open_folder(clean_folder(root), check_hashes=True)
        folder = clean.path
        images = np.ascontiguousarray(clean.load(TEST_IMAGES, mmap=False))
        labels = np.asarray(clean.load(TEST_LABELS, mmap=False)).astype(np.int64)
        fingerprint = clean.source.fingerprint
        self.verification = verify_test_split(root, fingerprint, images, labels)
        images.setflags(write=False)
        labels.setflags(write=False)
        self.images, self._labels = images, labels
        self.num_test = int(images.shape[0])
        watched = [folder / MANIFEST, folder / TEST_IMAGES, folder / TEST_LABELS]
        for extra in watch:
            watched += sorted(p for p in Path(extra).iterdir() if p.is_file() and not p.name.startswith("."))
        self._snapshot = snapshot_files(watched)
        self.provenance = {
            "folder": folder.name,
            "manifest_sha256": clean.manifest_sha256(),
            "test_images_sha256": clean.sha256(TEST_IMAGES),
            "test_labels_sha256": clean.sha256(TEST_LABELS),
            "num_test": self.num_test,
            "source_fingerprint": fingerprint,
            "content_fingerprint": content_fingerprint(images, labels),  # of the images held, not the manifest's word
            "source_kind": clean.source.kind,
            "official_cifar10": clean.source.official,
            "verification": dict(self.verification),
        }

    def check_unchanged(self) -> None:
        """Raise IntegrityError if any watched file differs from when the set was loaded."""
        changed = [Path(p).name for p, sha in self._snapshot.items()
                   if not Path(p).is_file() or sha256_file(p) != sha]
        if changed:
            raise IntegrityError(f"{', '.join(changed)} changed while the submission was being scored; no result "
                                 f"is written. The data folder may have been tampered with: {REBUILD_HINT}")

    def accuracy(self, logits: np.ndarray, indices: np.ndarray | None = None) -> float:
        """Top-1 accuracy of ``logits`` (rows in the order of ``indices``, default all images)."""
        labels = self._labels if indices is None else self._labels[indices]
        if logits.shape[0] != labels.shape[0]:
            raise ValueError(f"{logits.shape[0]} logits for {labels.shape[0]} test images")
        return float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")

    def final_eval_images(self) -> tuple[np.ndarray, np.ndarray]:
        """The test images and their horizontal flips, in a fresh secret order: (images, order).

        The order keeps a model from answering by position; pass the child's logits and ``order``
        to :meth:`split_final_logits`.
        """
        both = np.concatenate([self.images, self.images[:, :, ::-1, :]])
        order = np.random.default_rng(secrets.randbits(128)).permutation(both.shape[0])
        return np.ascontiguousarray(both[order]), order

    def split_final_logits(self, logits: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Undo :meth:`final_eval_images`' order: (logits on the images, logits on their flips)."""
        out = np.empty_like(logits)
        out[order] = logits
        return out[: self.num_test], out[self.num_test :]
