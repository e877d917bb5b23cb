"""A built variant folder as types: opened and verified once, then asked for its source, its files
and its arrays by name.

:mod:`cifar10s.store` owns the on-disk contract (layout, manifest schema, checked ``.npy``
reading); this module is its typed face. Everything else reads a folder through
:class:`VariantFolder` (or, for a manifest that is not on disk yet such as a downloaded one,
through :func:`source_of` / :func:`files_of`), so the manifest's keys are spelled here and in the
store only::

    train = open_variant(root, VariantSpec("ops"))       # verified (sha256 of every file) once
    clean = open_variant(root, VariantSpec("clean"), check_hashes=False)
    require_same_source(train, clean)                     # the one fingerprint check
    images = train.load(TRAIN_IMAGES)                     # memory-mapped, header checked
    train.source.official, train.files[TRAIN_IMAGES].sha256
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import Remedy
from .repair import repair_call
from .store import (
    MANIFEST,
    TRAIN_IMAGES,
    IntegrityError,
    NotBuiltError,
    is_complete,
    load_array,
    sha256_file,
    variant_folder,
    verify_folder,
)

if TYPE_CHECKING:
    from .variants import VariantSpec

__all__ = [
    "FileEntry",
    "Source",
    "VariantFolder",
    "files_of",
    "not_built",
    "open_folder",
    "open_variant",
    "require_same_source",
    "source_of",
]


@dataclass(frozen=True)
class Source:
    """Where a variant's CIFAR-10 came from: the record a build writes into every manifest."""

    fingerprint: str
    official: bool
    origin: str | None
    num_train: int | None
    num_test: int | None
    record: Mapping[str, Any]  # the manifest's record as written (e.g. member_md5)

    @property
    def content_fingerprint(self) -> dict[str, str] | None:
        """Per split (``train``, ``test``), the order-free content fingerprint; None in manifests
        written before it was recorded."""
        content = self.record.get("content_fingerprint")
        return dict(content) if isinstance(content, Mapping) else None

    @property
    def kind(self) -> str:
        """``official``, ``official-content``, ``full-copy`` or ``subset``
        (:func:`cifar10s.sources.cifar10.source_kind`)."""
        from .sources.cifar10 import source_kind

        return source_kind(self.official, self.content_fingerprint, self.num_train, self.num_test)

    def short(self) -> str:
        """``official CIFAR-10 (1a2b3c4d5e6f)`` or ``NOT official CIFAR-10 (...)``."""
        kind = self.kind
        if kind == "official":
            return f"official CIFAR-10 ({self.fingerprint[:12]})"
        content = self.content_fingerprint or {}
        ident = f"content train {content['train'][:12]} / test {content['test'][:12]}" if content else self.fingerprint[:12]
        words = {"official-content": "official CIFAR-10's images from another copy (NOT the official archive)",
                 "full-copy": "a full-size CIFAR-10 copy, NOT the official archive",
                 "subset": "NOT official CIFAR-10 (a subset)"}[kind]
        return f"{words} ({ident})"


@dataclass(frozen=True)
class FileEntry:
    """One listed file: its checksum and size, and for arrays their shape and dtype."""

    name: str
    sha256: str
    bytes: int
    shape: tuple[int, ...] | None = None
    dtype: str | None = None

    @property
    def is_array(self) -> bool:
        return self.shape is not None


def source_of(manifest: Mapping[str, Any]) -> Source:
    """The source record of a validated manifest (see :func:`cifar10s.store.validate_manifest`)."""
    src = manifest["source"]
    return Source(
        fingerprint=str(src["fingerprint"]), official=bool(src.get("official")), origin=src.get("origin"),
        num_train=src.get("num_train"), num_test=src.get("num_test"), record=dict(src),
    )


def files_of(manifest: Mapping[str, Any]) -> dict[str, FileEntry]:
    """The files a validated manifest lists, by name."""
    return {
        name: FileEntry(name, e["sha256"], e["bytes"], tuple(e["shape"]) if "shape" in e else None, e.get("dtype"))
        for name, e in manifest["files"].items()
    }


@dataclass(frozen=True)
class VariantFolder:
    """A complete variant folder whose manifest was validated (and files checked) when opened."""

    path: Path
    manifest: Mapping[str, Any]
    hashes_checked: bool

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def source(self) -> Source:
        return source_of(self.manifest)

    @property
    def files(self) -> dict[str, FileEntry]:
        return files_of(self.manifest)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest.get("classes") or [])

    @property
    def variant_record(self) -> dict[str, Any] | None:
        """The variant's parameters as the build wrote them (``VariantSpec`` fields), if any."""
        v = self.manifest.get("variant")
        return dict(v) if isinstance(v, Mapping) else None

    @property
    def inputs_key(self) -> str | None:
        """The hash of the stage's inputs and parameters its build cached on."""
        key = self.manifest.get("inputs_key")
        return key if isinstance(key, str) else None

    @property
    def recipe(self) -> dict[str, Any]:
        """The EM recipe record (empty for variants without EM noise)."""
        r = self.manifest.get("recipe")
        return dict(r) if isinstance(r, Mapping) else {}

    @property
    def recipe_version(self) -> str | None:
        return self.recipe.get("version")

    @property
    def built_with(self) -> str | None:
        """The cifar10s version that built the folder."""
        env = self.manifest.get("environment")
        return env.get("cifar10s") if isinstance(env, Mapping) else None

    @property
    def shortcuts(self) -> list[dict[str, Any]]:
        """The OPS pixels written into the images (class, position, colour, score); empty without OPS."""
        found = (self.manifest.get("shortcut") or {}).get("shortcuts")
        return [dict(x) for x in found] if isinstance(found, list) else []

    @property
    def timings_s(self) -> dict[str, Any]:
        t = self.manifest.get("timings_s")
        return dict(t) if isinstance(t, Mapping) else {}

    @property
    def num_train(self) -> int:
        shape = self.files[TRAIN_IMAGES].shape
        return int(shape[0]) if shape else 0

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def sha256(self, name: str) -> str:
        """The manifest's sha256 of ``name`` (checked against the file when opened with hashes)."""
        return self.files[name].sha256

    def manifest_sha256(self) -> str:
        """sha256 of the manifest file itself (what results and work-folder stamps record)."""
        return sha256_file(self.path / MANIFEST)

    def load(self, name: str, *, mmap: bool = True) -> np.ndarray:
        """A listed array, without pickle; memory-mapped copy-on-write unless ``mmap=False``."""
        return load_array(self.path, name, self.manifest, mmap=mmap)


def open_folder(folder: str | os.PathLike[str], *, check_hashes: bool = True,
                layout: str = "variant") -> VariantFolder:
    """Validate ``folder``'s manifest and every file it lists (sha256 too unless ``check_hashes``
    is off) and return it typed. FileNotFoundError when it has no manifest."""
    path = Path(folder)
    return VariantFolder(path, verify_folder(path, check_hashes=check_hashes, layout=layout), check_hashes)


def not_built(spec: VariantSpec, root: str | os.PathLike[str], problem: str | None = None) -> NotBuiltError:
    """The error for a variant that is not built under ``root``, with the ways to build it."""
    folder = variant_folder(root, spec)
    return NotBuiltError(
        problem or f"variant {spec.folder_name!r} is not built under {folder.parent}",
        [Remedy("build it from a CIFAR-10 copy (PATH = cifar-10-python.tar.gz or a cifar-10-batches-py folder)",
                command=spec.build_command(root)),
         Remedy("or build it here, downloading CIFAR-10 if no copy is under the root", api={"download": True},
                where="CIFAR10S")],
    )


def open_variant(root: str | os.PathLike[str], spec: VariantSpec, *, check_hashes: bool = True) -> VariantFolder:
    """The built folder of ``spec`` under ``root``, opened with :func:`open_folder`;
    :class:`~cifar10s.store.NotBuiltError` (saying how to build it) when it is not complete."""
    folder = variant_folder(root, spec)
    if not is_complete(folder):
        raise not_built(spec, root)
    return open_folder(folder, check_hashes=check_hashes)


def require_same_source(variant: VariantFolder, clean: VariantFolder) -> None:
    """Train and test must come from one CIFAR-10 copy: the one place their fingerprints are compared."""
    if variant.source.fingerprint != clean.source.fingerprint:
        raise IntegrityError(
            f"{variant.path} was built from a different CIFAR-10 source than {clean.path}, so train and test "
            f"do not come from the same data; rebuild it with {repair_call(variant.path, source_folder=clean.path)}"
        )
