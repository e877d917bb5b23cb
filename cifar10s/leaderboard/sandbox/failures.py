"""The one error of a child run that went wrong (kept apart so that every sandbox module can raise it)."""

from __future__ import annotations
from ...errors import Cifar10sError

__all__ = ["WorkerFailed"]


class WorkerFailed(Cifar10sError, RuntimeError):
    """A child process died, hung, exited without its report, or returned or left malformed output."""
