"""The frozen, versioned recipe that defines a CIFAR-10-S release.

A recipe fixes every hyper-parameter and seed of the pipeline (EM noise -> OPS -> compose). The
canonical copy of each version lives in ``build/recipe-<version>.json`` in the repository; the
package ships an identical copy (``cifar10s/data/``) so an installed package rebuilds the same
thing (a test checks the two are equal).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .. import strict_json
from ..checks import check_choice
from ..constants import DEFAULT_RECIPE
from ..em import EMConfig
from ..onepixel import OBJECTIVES


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the bytes of a release, given the CIFAR-10 source."""

    version: str
    em: EMConfig
    ops_pixels: int = 1
    ops_objective: str = "mean-std"
    description: str = ""
    verify: dict[str, Any] | None = None
    """How close a fresh rebuild's EM noise must be to a release of this recipe:
    ``{"em_min_identical": share, "em_max_diff": int, "basis": text}`` (recipes from v2 on; ``verify``
    uses it unless given another tolerance)."""

    def __post_init__(self) -> None:
        if self.verify is not None:
            v = self.verify
            if not isinstance(v, dict) or set(v) - {"em_min_identical", "em_max_diff", "basis"}:
                raise ValueError(f"recipe {self.version}: verify holds em_min_identical, em_max_diff, basis")
            share, diff = v.get("em_min_identical", 0.0), v.get("em_max_diff", 16)
            if (not isinstance(share, (int, float)) or isinstance(share, bool) or not 0.0 <= share <= 1.0
                    or not isinstance(diff, int) or isinstance(diff, bool) or not 0 <= diff <= 16):
                raise ValueError(f"recipe {self.version}: verify.em_min_identical must be in [0, 1] and "
                                 "verify.em_max_diff an int in [0, 16]")
        check_choice(f"OPS objective in recipe {self.version}:", self.ops_objective, OBJECTIVES)
        if self.ops_pixels < 1:
            raise ValueError(f"recipe {self.version}: ops.pixels must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        out = {
            "version": self.version,
            "description": self.description,
            "em": self.em.to_dict(),
            "ops": {"pixels": self.ops_pixels, "objective": self.ops_objective},
        }
        if self.verify is not None:
            out["verify"] = dict(self.verify)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        unknown = set(data) - {"version", "description", "em", "ops", "verify"}
        if unknown:
            raise ValueError(f"unknown recipe keys {sorted(unknown)}; expected version, description, em, ops"
                             " (and verify)")
        try:
            ops = data.get("ops", {})
            return cls(
                version=str(data["version"]),
                description=str(data.get("description", "")),
                em=EMConfig.from_dict(dict(data["em"])),
                ops_pixels=int(ops.get("pixels", 1)),
                ops_objective=str(ops.get("objective", "mean-std")),
                verify=dict(data["verify"]) if data.get("verify") is not None else None,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed recipe: {exc!r}") from exc

    @property
    def em_key(self) -> str:
        """sha256 of the EM part, the cache key of the EM stage (with the clean data's hash)."""
        return hashlib.sha256(json.dumps(self.em.to_dict(), sort_keys=True).encode()).hexdigest()


def load_recipe(recipe: str | os.PathLike[str] | None = None) -> Recipe:
    """A recipe by version name (``"v1"``, shipped with the package) or from a JSON file path."""
    if recipe is None:
        recipe = DEFAULT_RECIPE
    path = Path(recipe)
    if path.suffix == ".json" or path.exists():
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read recipe file {path}: {exc}") from exc
    else:
        try:
            text = resources.files("cifar10s").joinpath(f"data/recipe-{recipe}.json").read_text()
        except FileNotFoundError as exc:
            raise ValueError(f"no packaged recipe named {recipe!r}; pass a JSON file path") from exc
    try:
        data = strict_json.loads(text)
    except ValueError as exc:
        raise ValueError(f"recipe {recipe} is not valid JSON: {exc}") from exc
    return Recipe.from_dict(data)
