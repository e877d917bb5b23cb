"""The audit's result as data: findings with their evidence, every measurement, the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .pattern import PatternScan
from .pixel import PixelScan
from .thresholds import Thresholds

__all__ = ["AuditReport", "Finding"]


@dataclass(frozen=True)
class Finding:
    kind: str
    classes: tuple[int, ...]
    strength: float
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": list(self.classes), "strength": round(float(self.strength), 4),
                "evidence": self.evidence}


@dataclass
class AuditReport:
    """The verdict, the findings and every measurement behind them (see :meth:`to_dict`)."""

    findings: list[Finding]
    measurements: dict[str, Any]
    classes: tuple[str, ...]
    thresholds: Thresholds
    pixel: PixelScan
    pattern: PatternScan
    curves: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def shortcut_found(self) -> bool:
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shortcut_found": self.shortcut_found,
            "findings": [f.to_dict() for f in self.findings],
            "classes": list(self.classes),
            "measurements": self.measurements,
            "curves": {k: v.to_dict() for k, v in self.curves.items()},
            "thresholds": self.thresholds.to_dict(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def summary(self) -> str:
        """A few lines for people: the verdict and one line per finding."""
        n = self.measurements["num_images"]
        if not self.findings:
            return f"no shortcut found in {n} images ({len(self.classes)} classes)"
        lines = [f"SHORTCUT FOUND in {n} images: " + ", ".join(f.kind for f in self.findings)]
        for f in self.findings:
            lines.append(f"- {f.kind} (strength {f.strength:.3g}): {f.evidence.get('summary', '')}")
            for px in f.evidence.get("pixels", [])[:40]:
                lines.append(f"    class {px['class']} {self.classes[px['class']]}: (row {px['row']}, col "
                             f"{px['col']}) colour {tuple(px['colour'])} in {px['share']:.1%} of the class, "
                             f"{px['other_share']:.1%} elsewhere")
        return "\n".join(lines)
