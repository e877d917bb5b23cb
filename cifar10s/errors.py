"""Errors that say what to do, in the words of whoever reads them.

An :class:`ActionableError` is a problem plus :class:`Remedy` records. Each remedy is data: what to
do in plain words, the keyword arguments that do it in Python, the command-line flags that do it
in a shell (or a whole command, the same in both). ``str(error)`` speaks the API's words (a
caught exception, a traceback); the command line prints ``error.explain("cli")`` instead, so no
message is rewritten by string replacement and the library never guesses which face called it.

:class:`SlowRunError` is the one "too slow here" refusal: an EM build
(:class:`cifar10s.em.SlowBuildError`) and a leaderboard training run
(:class:`cifar10s.training.estimate.SlowRunError`, the same class) both raise it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ActionableError", "Cifar10sError", "Face", "Remedy", "SlowRunError"]

#: Who reads a message: Python code (``"api"``) or a shell user (``"cli"``).
Face = Literal["api", "cli"]


@dataclass(frozen=True)
class Remedy:
    """One way out of an error.

    ``action`` says it in words both faces share ("build it on a GPU"); ``api`` holds the keyword
    arguments that do it (``{"device": "cuda"}``) and ``where`` the functions that take them;
    ``flags`` the command-line flags (``("--device", "cuda")``); ``command`` a whole shell
    command, shown to both faces when the face has no keyword or flag of its own. A remedy with
    only words is shown to both; one with a way for one face only is not shown to the other.
    """

    action: str
    api: Mapping[str, Any] = field(default_factory=dict)
    flags: Sequence[str] = ()
    command: str | None = None
    where: str = ""

    def text(self, face: Face) -> str | None:
        """The remedy in ``face``'s words, or None when it has none for that face."""
        if face == "cli" and self.flags:
            how = "rerun with " + " ".join(self.flags)
        elif face == "api" and self.api:
            how = ", ".join(f"{k}={v!r}" for k, v in self.api.items()) + (f" ({self.where})" if self.where else "")
        elif self.command:
            how = f"`{self.command}`"
        elif not (self.api or self.flags):
            return self.action
        else:
            return None
        return f"{self.action}: {how}"


class Cifar10sError(Exception):
    """The base of every error this package raises on purpose: ``except cifar10s.Cifar10sError``
    catches them all. Each also keeps the builtin base callers caught before (``RuntimeError`` or
    ``ValueError``)."""


class ActionableError(Cifar10sError, RuntimeError):
    """A ``RuntimeError`` with a ``problem`` and the ``remedies`` that get past it.

    ``str()`` is :meth:`explain` in the API's words; a plain message (no remedies) is the
    problem alone, so ``ActionableError("text")`` behaves like ``RuntimeError("text")``.
    """

    def __init__(self, problem: str, remedies: Sequence[Remedy] = ()) -> None:
        self.problem = str(problem)
        self.remedies = tuple(remedies)
        super().__init__(self.explain("api"))

    def explain(self, face: Face = "api", *, one_line: bool = False) -> str:
        """The problem, then one line per remedy that ``face`` can use (``one_line``: all on one
        line, the remedies after "what to do:" separated by semicolons, as a command prints it)."""
        ways = [t for t in (r.text(face) for r in self.remedies) if t]
        if not ways:
            return self.problem
        if one_line:
            return f"{' '.join(self.problem.split()).rstrip('.;')}. What to do: {'; '.join(ways)}"
        return "\n".join([self.problem, "What to do:", *(f"  - {w}" for w in ways)])


class SlowRunError(ActionableError):
    """The job would run longer than the slow-run limit on this device, and the caller did not opt in."""
