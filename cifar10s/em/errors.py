"""The two ways an EM build stops on purpose: too slow for this device, or not converged.

Both are ``RuntimeError`` subclasses whose message says what to do next, so the command line can
print them as they are.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..runtime import format_duration

if TYPE_CHECKING:
    from .budget import EMTimeEstimate


class SlowBuildError(RuntimeError):
    """EM would run longer than the limit on this device and the caller did not opt in.

    ``estimate`` is the :class:`~cifar10s.em.budget.EMTimeEstimate` behind the refusal.
    """

    def __init__(
        self,
        estimate: EMTimeEstimate,
        *,
        limit_s: float,
        root: str | os.PathLike[str] | None = None,
        variant_args: str = "--variant cifar10s",
    ) -> None:
        self.estimate = estimate
        self.limit_s = float(limit_s)
        root_text = "ROOT" if root is None else str(root)
        limit = f"{limit_s / 3600:g} h" if limit_s >= 3600 else format_duration(limit_s)
        lines = [
            (f"EM noise for this recipe would take about {format_duration(estimate.seconds)} on "
             f"{estimate.device} ({estimate.rounds} rounds of ~{format_duration(estimate.round_seconds)}), "
             f"more than the {limit} a build may run without --allow-slow, so nothing was started."),
            f"  estimate: {estimate.describe()}",
            "What to do instead:",
        ]
        if not estimate.device.startswith("cuda"):
            lines.append(f"  - build it on a GPU:  cifar10s build {variant_args} --root {root_text} "
                         "--device cuda")
        lines += [
            ("  - build it here anyway:  add --allow-slow (Python: allow_slow=True in build_variant, "
             "rebuild, CIFAR10S or generate_em_noise)"),
            (f"  - or use a variant that needs no EM noise and builds in seconds:  cifar10s build "
             f"--variant ops --root {root_text} (the One-Pixel Shortcut alone), or --variant clean"),
        ]
        super().__init__("\n".join(lines))


class UnconvergedEMError(RuntimeError):
    """EM reached ``max_rounds`` without meeting its stop condition and the caller did not opt in."""

    def __init__(self, *, rounds: int, accuracy: float | None, stop_error: float,
                 workdir: str | os.PathLike[str] | None = None) -> None:
        self.rounds = int(rounds)
        self.accuracy = accuracy
        acc = "unknown" if accuracy is None else f"{accuracy:.4f}"
        kept = (f" The finished run is kept in {workdir}: rebuilding with the same recipe (or a larger "
                "max_rounds, which continues from it) repeats no finished round."
                if workdir is not None else "")
        super().__init__(
            f"EM stopped after {rounds} rounds (max_rounds) with generator accuracy {acc} on the "
            f"perturbed training set; the stop condition needs >= {1.0 - stop_error:.4f} "
            f"(stop_error {stop_error}). Nothing was published: noise that did not converge is not "
            "a release-grade EM variant. Raise em.max_rounds in the recipe, or publish it anyway, "
            "marked \"release_grade\": false in its manifest, with --allow-unconverged (Python: "
            f"allow_unconverged=True in build_variant or rebuild).{kept}"
        )


__all__ = ["SlowBuildError", "UnconvergedEMError"]
