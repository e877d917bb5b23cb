"""Which built variant folders under a root are intact, and for each damaged one every bad file.

``cifar10s info`` lists what is built; it must not call a folder fine whose files no longer match
its manifest (a flipped bit, a truncated copy, a garbage ``.npy`` header). :func:`check_root` goes
through every folder that has a manifest, checks the manifest and then each listed file on its own
(sha256, or with ``fast`` only sizes, ``.npy`` headers and label ranges), so that one report names
every damaged file, and says how to repair the folder (:mod:`cifar10s.repair`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..repair import repair_call, repair_command
from ..store import IntegrityError, check_listed_file, data_dir, is_complete, read_manifest

__all__ = ["FolderHealth", "check_folder", "check_root"]

_REPAIR_SUFFIX = "; repair it with "


@dataclass(frozen=True)
class FolderHealth:
    """One variant folder: its manifest (None when unreadable) and what is wrong with its files."""

    path: Path
    manifest: dict[str, Any] | None
    problems: dict[str, str] = field(default_factory=dict)  # file name -> what is wrong with it
    hashes_checked: bool = True

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ok(self) -> bool:
        return not self.problems

    def repair_command(self) -> str:
        """The shell command that repairs this folder."""
        return repair_command(self.path)

    def repair_call(self) -> str:
        """The Python call that repairs this folder."""
        return repair_call(self.path)


def _problem(exc: BaseException) -> str:
    """An error's message without its repair advice (the report gives that once per folder)."""
    return str(exc).split(_REPAIR_SUFFIX, 1)[0]


def check_folder(folder: str | os.PathLike[str], *, fast: bool = False) -> FolderHealth:
    """Check ``folder``'s manifest and every file it lists, each on its own."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except (IntegrityError, ValueError, OSError) as exc:
        return FolderHealth(folder, None, {"manifest.json": _problem(exc)}, not fast)
    problems: dict[str, str] = {}
    for name in manifest["files"]:
        try:
            check_listed_file(folder, name, manifest, check_hashes=not fast)
        except (IntegrityError, OSError) as exc:
            problems[name] = _problem(exc)
    return FolderHealth(folder, manifest, problems, not fast)


def check_root(root: str | os.PathLike[str], *, fast: bool = False) -> list[FolderHealth]:
    """Every variant folder with a manifest under ``root``'s data folder, in name order, checked."""
    d = data_dir(root)
    if not d.is_dir():
        return []
    folders = sorted(p for p in d.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    return [check_folder(p, fast=fast) for p in folders if is_complete(p)]
