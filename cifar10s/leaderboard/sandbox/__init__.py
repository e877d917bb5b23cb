"""Running submission code: child processes in a bubblewrap sandbox, and what the scorer keeps from them.

* :mod:`.bwrap`: the sandbox every child starts in (detection, binds, limits, the result's record).
* :mod:`.namespace`: a started sandbox's processes, found by their PID namespace, ended, waited for.
* :mod:`.runner`: starting a child, its time limit, reading back only a well-formed report and arrays.
* :mod:`.worker`: the child's entry point (``inspect``, ``train``, ``predict``), the only place
  submission code runs; :mod:`.entry` imports the submission's entry file there.
* :mod:`.seedruns`: what the training and evaluating children are handed, their logits made accuracies.
* :mod:`.heldout`: the clean test split, held by the scoring process; its labels never reach a child.
* :mod:`.integrity`: the flip gap and the result's ``integrity`` block.
* :mod:`.inert`: escape sequences and control characters stripped from what a child wrote.

Nothing is imported here until a name is asked for (the bubblewrap names below, lazily), so
``-m cifar10s.leaderboard.sandbox.worker`` starts without the scorer.
"""

from __future__ import annotations

from ...lazy import lazy_exports

#: the sandbox's own names, imported on first use (bwrap imports neither torch nor the worker)
_LAZY = {name: ".bwrap" for name in ("Limits", "Sandbox", "SandboxUnavailable", "detect", "resolve_sandbox")}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
