"""The audit's result as data: findings with their evidence, every measurement, the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .pattern import PatternScan
from .pixel import PixelScan
from .scores import combine
from .thresholds import Thresholds
from .windows import WindowScan

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
    windows: WindowScan | None = None
    #: per detector kind: (N,) per-image evidence in units of its threshold, or a function computing
    #: it only when needed (see :mod:`.scores`)
    contributions: dict[str, Any] = field(default_factory=dict, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)
    score_kinds: list[str] = field(default_factory=list)

    @property
    def shortcut_found(self) -> bool:
        return bool(self.findings)

    def finish_scores(self) -> None:
        """Combine the contributions into :attr:`scores` (after every finding is in)."""
        n = int(self.measurements["num_images"])
        self.scores, self.score_kinds = combine(self.contributions, {f.kind for f in self.findings}, n)

    def _scores_dict(self) -> dict[str, Any]:
        if self.scores is None:
            return {}
        s = self.scores
        top = np.argsort(-s, kind="stable")[:20]
        return {"kinds": self.score_kinds, "from_findings": bool(self.findings),
                "quantiles": {q: round(float(np.quantile(s, float(q))), 4) for q in ("0.5", "0.9", "0.99")},
                "share_at_least_1": round(float((s >= 1).mean()), 4),
                "top": [{"index": int(i), "score": round(float(s[i]), 4)} for i in top]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "shortcut_found": self.shortcut_found,
            "findings": [f.to_dict() for f in self.findings],
            "classes": list(self.classes),
            "measurements": self.measurements,
            "curves": {k: v.to_dict() for k, v in self.curves.items()},
            "thresholds": self.thresholds.to_dict(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "scores": self._scores_dict(),
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
        if "network" in self.measurements:
            net = self.measurements["network"]
            lines.append(f"network baseline (not part of the verdict; {net['seconds']} s): training accuracy "
                         f"{' '.join(f'{a:.1%}' for a in net['train_accuracy'])} after {net['epochs']} epochs; "
                         + ("above" if net["flagged"] else "below") + f" the {net['threshold']:.0%} of UDP (AAAI 2024)")
        if self.scores is not None:
            lines.append(f"per-image scores from {', '.join(self.score_kinds)}: {int((self.scores >= 1).sum())} "
                         "image(s) at or above 1" if self.score_kinds else "per-image scores: 0 for every image "
                         "(no finding)")
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
        iso = top(m["pixel"]["isolated_max_excess"], th.min_class_images)
        if iso is not None:
            out.append(f"isolated pixel excess {iso:.3f} ({th.isolated_excess})")
        if "windows" in m:
            win = top(m["windows"]["excess"], th.min_class_images)
            if win is not None:
                out.append(f"recurring window excess {win:.3f} ({th.window_excess})")
        if "second_order" in m:
            so = m["second_order"]
            out.append(f"second-order {so['heldout_accuracy']:.1%} ({so['threshold']:.0%}, null bar {so['null_bar']:.0%})")
        return out
