"""Running submission code: child processes in a bubblewrap sandbox, and what the host reads of what they leave.

Isolation only; what a score is made of (held-out labels, accuracies, the flip gap) is
:mod:`cifar10s.leaderboard.scoring`'s.

* :mod:`.bwrap`: the sandbox every child starts in (detection, the command line, the result's record),
  with :mod:`.binds` (which host folders a child sees; never one holding a secret), :mod:`.limits`
  (rlimits, cgroup caps, folder quota), :mod:`.cgroup` (a cgroup per child) and :mod:`.hostuser`
  (a root scorer's children as host uid 65534).
* :mod:`.namespace`: a started sandbox's processes, found by their PID namespace, ended, waited for.
* :mod:`.runner`: starting a child, its time limit, reading back only a well-formed report;
  :mod:`.staging` the copy of the submission it imports.
* :mod:`.childfiles`: what a child leaves, read by descriptor without following links and audited;
  :mod:`.reports`: the fixed schema of what it reports.
* :mod:`.worker`: the child's entry point (``inspect``, ``train``, ``predict``), the only place
  submission code runs; :mod:`.entry` imports the submission's entry file there.
* :mod:`.inert`: escape sequences and control characters stripped from what a child wrote.

Nothing is imported here until a name is asked for (the bubblewrap names below, lazily), so
``-m cifar10s.leaderboard.sandbox.worker`` starts without the scorer.
"""

from __future__ import annotations

from ...lazy import lazy_exports

#: the sandbox's own names, imported on first use (bwrap imports neither torch nor the worker)
_LAZY = {name: ".bwrap" for name in ("Limits", "Sandbox", "SandboxUnavailable", "SecretExposed", "detect",
                                     "resolve_sandbox")}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
