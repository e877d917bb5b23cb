"""One command that rebuilds a whole release: clean -> OPS -> EM -> CIFAR-10-S, stage by stage.

Each stage is :func:`cifar10s.release.builders.build_variant`, which skips a stage whose inputs are
unchanged and whose files verify; the report says which stages ran, which were cached, and how
long each took.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import MANIFEST, read_manifest, variant_folder
from ..variants import VariantSpec
from .builders import build_variant
from .recipe import Recipe, load_recipe


@dataclass
class StageResult:
    variant: str
    status: str  # "built" or "cached"
    seconds: float
    folder: str


@dataclass
class RebuildReport:
    recipe: dict[str, Any]
    stages: list[StageResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "stages": [s.__dict__ for s in self.stages]}

    def to_text(self) -> str:
        lines = [f"recipe {self.recipe['version']}"]
        lines += [f"  {s.variant:10s} {s.status:6s} {s.seconds:9.2f} s  {s.folder}" for s in self.stages]
        return "\n".join(lines)


def release_stages(recipe: Recipe) -> list[VariantSpec]:
    """The variants of a release, in dependency order."""
    return [
        VariantSpec("clean"),
        VariantSpec("ops", recipe.ops_pixels, recipe.ops_objective),
        VariantSpec("em"),
        VariantSpec("cifar10s", recipe.ops_pixels, recipe.ops_objective),
    ]


def _stamp(folder: Path) -> int | None:
    try:
        return (folder / MANIFEST).stat().st_mtime_ns
    except FileNotFoundError:
        return None


def rebuild(
    root: str | os.PathLike[str],
    *,
    recipe: Recipe | str | os.PathLike[str] | None = None,
    cifar10: str | os.PathLike[str] | None = None,
    download: bool = False,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
    allow_slow: bool = False,
    allow_unconverged: bool = False,
) -> RebuildReport:
    """Build every stage of ``recipe`` under ``root``; ``force`` redoes each one.

    ``allow_slow`` / ``allow_unconverged``: see :func:`~cifar10s.release.builders.build_variant`.
    """
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    report = RebuildReport(recipe.to_dict())
    for i, spec in enumerate(release_stages(recipe)):
        folder = variant_folder(root, spec)
        before = _stamp(folder)
        t0 = time.perf_counter()
        build_variant(root, spec, cifar10=cifar10 if i == 0 else None, download=download, force=force,
                      progress=progress, recipe=recipe, device=device, allow_slow=allow_slow,
                      allow_unconverged=allow_unconverged)
        after = _stamp(folder)
        status = "cached" if before is not None and before == after else "built"
        report.stages.append(StageResult(spec.folder_name, status, time.perf_counter() - t0, str(folder)))
        read_manifest(folder)  # fails loudly if a stage left something unreadable
    return report
