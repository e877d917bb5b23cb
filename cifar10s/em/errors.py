"""The two ways an EM build stops on purpose: too slow for this device, or not converged.

Both are :class:`~cifar10s.errors.ActionableError` subclasses (so ``RuntimeError``\\ s) whose
remedies say what to do next, in Python keywords or command-line flags depending on who prints
them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ActionableError, Remedy, SlowRunError
from ..runtime import format_duration

if TYPE_CHECKING:
    from .budget import EMTimeEstimate

_EM_CALLS = "build_variant, rebuild or generate_em_noise"


class SlowBuildError(SlowRunError):
    """EM would run longer than the limit on this device and the caller did not opt in.

    ``estimate`` is the :class:`~cifar10s.em.budget.EMTimeEstimate` behind the refusal. ``root``
    and ``variant_args`` are kept as attributes for callers of earlier versions; the remedies name
    keywords and flags, not a whole command line.
    """

    def __init__(
        self,
        estimate: EMTimeEstimate,
        *,
        limit_s: float,
        root: str | os.PathLike[str] | None = None,
        variant_args: str | None = None,
    ) -> None:
        self.estimate = estimate
        self.limit_s = float(limit_s)
        self.root, self.variant_args = root, variant_args
        limit = f"{limit_s / 3600:g} h" if limit_s >= 3600 else format_duration(limit_s)
        problem = (
            f"EM noise for this recipe would take about {format_duration(estimate.seconds)} on "
            f"{estimate.device} ({estimate.rounds} rounds of ~{format_duration(estimate.round_seconds)}), "
            f"more than the {limit} a build may run without opting in, so nothing was started.\n"
            f"  estimate: {estimate.describe()}"
        )
        remedies = []
        if not estimate.device.startswith("cuda"):
            remedies.append(Remedy("build it on a GPU", api={"device": "cuda"}, flags=("--device", "cuda"),
                                   where=_EM_CALLS))
        remedies += [
            Remedy("build it here anyway", api={"allow_slow": True}, flags=("--allow-slow",),
                   where="build_variant, rebuild, CIFAR10S or generate_em_noise"),
            Remedy("or use a variant that needs no EM noise and builds in seconds (the One-Pixel Shortcut "
                   "alone, or clean)", api={"variant": "ops"}, flags=("--variant", "ops")),
        ]
        super().__init__(problem, remedies)


class UnconvergedEMError(ActionableError):
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
            f"a release-grade EM variant.{kept}",
            [Remedy("raise em.max_rounds in the recipe"),
             Remedy('or publish it anyway, marked "release_grade": false in its manifest',
                    api={"allow_unconverged": True}, flags=("--allow-unconverged",), where="build_variant or rebuild")],
        )


__all__ = ["SlowBuildError", "UnconvergedEMError"]
