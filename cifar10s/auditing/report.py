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
    """One kind of shortcut: the classes that carry it, how strong it is, and what shows it."""

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
        """A few lines for people: the verdict, one line per finding, the deciding measurements."""
        n = self.measurements["num_images"]
        if not self.findings:
            lines = [f"no shortcut found in {n} images ({len(self.classes)} classes)"]
        else:
            lines = [f"SHORTCUT FOUND in {n} images: " + ", ".join(f.kind for f in self.findings)]
        for f in self.findings:
            lines.append(f"- {f.kind} (strength {f.strength:.3g}): {f.evidence.get('summary', '')}")
            for px in f.evidence.get("pixels", [])[:40]:
                lines.append(f"    class {px['class']} {self.classes[px['class']]}: (row {px['row']}, col "
                             f"{px['col']}) colour {tuple(px['colour'])} in {px['share']:.1%} of the class, "
                             f"{px['other_share']:.1%} elsewhere")
        lines.append("measured (strongest class, threshold): " + "; ".join(self._measured()))
        return "\n".join(lines)

    def _measured(self) -> list[str]:
        m, th = self.measurements, self.thresholds
        def top(values: list[float], least: int) -> float | None:
            kept = [v for v, c in zip(values, m["class_counts"]) if c >= least]
            return max(kept) if kept else None

        out = []
        pix = top(m["pixel"]["max_strength"], th.min_class_images)
        out.append(f"fixed-colour strength {pix:.3f} ({th.pixel_strength})" if pix is not None else
                   f"no class has {th.min_class_images} images: no pixel claim")
        pat = top(m["pattern"]["effect"], th.pattern_min_class_images)
        win = top(m["pattern"]["window_effect"], th.pattern_min_class_images)
        if pat is None or win is None:
            out.append(f"no class has {th.pattern_min_class_images} images: no pattern or patch claim")
        else:
            out += [f"pattern {pat:.2f} grey levels ({th.pattern_effect})", f"patch window {win:.2f} ({th.patch_effect})"]
        if "heldout_accuracy" in m.get("linear", {}):
            out.append(f"linear probe {m['linear']['heldout_accuracy']:.1%} ({m['linear']['threshold']:.0%})")
        elif "linear" in m:
            out.append(f"linear probe skipped: {m['linear']['skipped']}")
        if "perturbation" in m:
            p = m["perturbation"]
            out.append(f"perturbation L-inf {p['linf_255']:g}/255, its probe {p['heldout_accuracy']:.1%} "
                       f"({th.perturbation_separability:.0%})")
        if "learnability_gap" in m:
            out.append(f"learnability gap {m['learnability_gap']['gap']:+.3f} ({th.learnability_gap})")
        return out
