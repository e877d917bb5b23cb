"""Checking a submission by running it: its entry imported (and its model built) in a sandboxed child.

:mod:`..submission` reads a folder without running any of it; this is the next step, the one that
runs submission code, so it sits above both the submission format and the sandbox.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..sandbox.bwrap import resolve_sandbox
from ..sandbox.reports import ENVELOPE, check_keys
from ..sandbox.runner import DEFAULT_INSPECT_LIMIT_S, WorkerFailed, WorkerRun
from ..submission.loader import load_submission, resolve_method
from ..submission.record import HOOK_NAMES, Submission, SubmissionError

__all__ = ["inspect_submission", "validate_submission"]


def inspect_submission(sub: Submission, *, sandbox: Any, check_model: bool = True, time_limit_s: float | None = None,
                       forbidden: list[str] | None = None) -> Submission:
    """Import the entry (or look up the registered model) in a child process and check its report.

    With ``check_model`` the child also builds the model and runs a dummy batch. Returns ``sub``
    with ``hooks`` (the names found) and the resolved ``method``; raises :class:`SubmissionError`
    listing the problems, or :class:`~cifar10s.leaderboard.sandbox.runner.WorkerFailed` when the
    child fails or its report is malformed. ``time_limit_s`` defaults to
    :data:`~cifar10s.leaderboard.sandbox.runner.DEFAULT_INSPECT_LIMIT_S`. ``sandbox``: a
    :class:`~cifar10s.leaderboard.sandbox.bwrap.Sandbox` the child runs in, or None for a plain child
    process; required, so that no caller runs submission code unsandboxed by omission.
    """

    limit = DEFAULT_INSPECT_LIMIT_S if time_limit_s is None else time_limit_s
    with WorkerRun(sub, label=f"inspecting {sub.folder}", forbidden=forbidden, threads=1, sandbox=sandbox) as run:
        report = run.run("inspect", {"check_model": bool(check_model)}, time_limit_s=limit, device="cpu")
    check_keys(report, ENVELOPE | {"hooks", "training_method", "param_count"}, f"inspecting {sub.folder}", "")
    hooks, method = report.get("hooks"), report.get("training_method")
    if (not isinstance(hooks, list) or not set(hooks) <= set(HOOK_NAMES)
            or (sub.entry is not None and "build_model" not in hooks)
            or not isinstance(method, (str, type(None)))):
        raise WorkerFailed(f"inspecting {sub.folder}: malformed report from the child process")
    inspected = dataclasses.replace(sub, hooks=tuple(sorted(set(hooks))))
    resolved, problems = resolve_method(inspected, method)
    if problems:
        raise SubmissionError(sub.folder, problems)
    return dataclasses.replace(inspected, method=resolved)


def validate_submission(folder: str | Path | Submission, *, check_model: bool = True,
                        time_limit_s: float | None = None, sandbox: Any = True) -> Submission:
    """:func:`load_submission`, then :func:`inspect_submission`: everything short of training.

    ``sandbox``: True (default) runs the child in the sandbox and raises
    :class:`~cifar10s.leaderboard.sandbox.bwrap.SandboxUnavailable` where it cannot start; False runs it without; a
    :class:`~cifar10s.leaderboard.sandbox.bwrap.Sandbox` is used as given.
    """

    box = resolve_sandbox(sandbox)
    sub = folder if isinstance(folder, Submission) else load_submission(folder)
    return inspect_submission(sub, check_model=check_model, time_limit_s=time_limit_s, sandbox=box)
