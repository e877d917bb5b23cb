"""Names and parameters of the dataset variants, and the folder each one is stored in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .checks import check_choice
from .onepixel import OBJECTIVES

#: Variant kinds: the clean data, OPS alone (k pixels), EM noise alone, and CIFAR-10-S (EM + OPS).
KINDS: tuple[str, ...] = ("clean", "ops", "em", "cifar10s")


@dataclass(frozen=True)
class VariantSpec:
    """Which training set to build or load. The test split is always clean CIFAR-10."""

    kind: str = "cifar10s"
    pixels: int = 1
    objective: str = "mean-std"

    def __post_init__(self) -> None:
        check_choice("variant", self.kind, KINDS,
                     "(ops-kK or cifar10s-kK for K shortcut pixels per class, e.g. ops-k3)")
        check_choice("OPS objective", self.objective, OBJECTIVES)
        if not isinstance(self.pixels, int) or self.pixels < 1:
            raise ValueError(f"pixels must be a positive integer, got {self.pixels!r}")
        if self.kind in ("clean", "em") and (self.pixels != 1 or self.objective != "mean-std"):
            raise ValueError(f"variant {self.kind!r} has no shortcut pixels; drop pixels/objective")

    @property
    def uses_ops(self) -> bool:
        return self.kind in ("ops", "cifar10s")

    @property
    def uses_em(self) -> bool:
        return self.kind in ("em", "cifar10s")

    @property
    def folder_name(self) -> str:
        """Stable folder name, e.g. ``clean``, ``ops-k1``, ``ops-k3-paper-eq3``, ``cifar10s``."""
        if not self.uses_ops:
            return self.kind
        name = f"{self.kind}-k{self.pixels}" if (self.kind == "ops" or self.pixels != 1) else self.kind
        return name if self.objective == "mean-std" else f"{name}-{self.objective}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pixels": self.pixels, "objective": self.objective}

    @classmethod
    def from_folder_name(cls, name: str) -> VariantSpec:
        """The inverse of :attr:`folder_name`: ``ops-k3-paper-eq3`` -> ``VariantSpec("ops", 3, "paper-eq3")``."""
        text = name.strip().lower()
        objective = "mean-std"
        for candidate in OBJECTIVES:
            if candidate != "mean-std" and text.endswith("-" + candidate):
                text, objective = text[: -len(candidate) - 1], candidate
        spec = parse_variant(text, objective=objective)
        if spec.folder_name != name.strip().lower():
            raise ValueError(f"{name!r} is not a variant folder name (e.g. clean, ops-k1, ops-k3-paper-eq3, em, cifar10s)")
        return spec

    def cli_args(self) -> str:
        """The ``cifar10s build`` flags that select this variant, e.g. ``--variant ops --pixels 3``."""
        args = f"--variant {self.kind}"
        if self.pixels != 1:
            args += f" --pixels {self.pixels}"
        if self.objective != "mean-std":
            args += f" --objective {self.objective}"
        return args

    def build_command(self, root: str | os.PathLike[str]) -> str:
        """The command that builds this variant under ``root`` from a local CIFAR-10 copy."""
        return f"cifar10s build {self.cli_args()} --root {root} --cifar10 PATH"


def parse_variant(name: str, *, pixels: int | None = None, objective: str | None = None) -> VariantSpec:
    """Parse ``clean``, ``ops``, ``ops-k3``, ``em``, ``cifar10s`` (plus optional overrides)."""
    base, _, rest = name.strip().lower().partition("-k")
    k = pixels
    if rest:
        if not rest.isdigit():
            raise ValueError(f"cannot parse variant {name!r}: expected e.g. 'ops-k3'")
        if pixels is not None and pixels != int(rest):
            raise ValueError(f"variant {name!r} conflicts with pixels={pixels}")
        k = int(rest)
    return VariantSpec(kind=base, pixels=1 if k is None else k, objective=objective or "mean-std")
