"""One command that rebuilds a whole release: clean -> OPS -> EM -> CIFAR-10-S, stage by stage.

Each stage is :func:`cifar10s.release.builders.build_variant`, which skips a stage whose inputs are
unchanged and whose files verify; the report says which stages ran, which were cached, and how
long each took, as the builder's :class:`~cifar10s.release.builders.BuildOutcome` says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..folder import open_folder
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
        outcome = build_variant(root, spec, cifar10=cifar10 if i == 0 else None, download=download, force=force,
                                progress=progress, recipe=recipe, device=device, allow_slow=allow_slow,
                                allow_unconverged=allow_unconverged)
        report.stages.append(StageResult(spec.folder_name, outcome.status, outcome.seconds, str(outcome.path)))
        open_folder(outcome.path, check_hashes=False)  # fails loudly if a stage left something unreadable
    return report
