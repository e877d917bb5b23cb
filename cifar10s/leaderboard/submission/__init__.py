"""The submission format: a folder with a ``submission.json`` and its files, read and checked without running its code.

* :mod:`.record`: the checked submission (:class:`Submission`), its error, the hook names.
* :mod:`.loader`: reading ``submission.json``, hashing the folder's files, refusing what the hash
  cannot describe. Importing the entry in a sandboxed child is the next step,
  :mod:`cifar10s.leaderboard.scoring.validate`; nothing here runs submission code or imports the
  sandbox.

The folder format is documented in docs/leaderboard.md and leaderboard/README.md.
"""

from __future__ import annotations

from .loader import SUBMISSION_FILE, load_submission
from .record import HOOK_NAMES, Submission, SubmissionError

__all__ = [
    "HOOK_NAMES",
    "SUBMISSION_FILE",
    "Submission",
    "SubmissionError",
    "load_submission",
]


def __getattr__(name: str):  # noqa: ANN202 - the moved names, for one version
    if name in ("inspect_submission", "validate_submission"):
        import importlib
        import warnings

        warnings.warn(f"cifar10s.leaderboard.submission.{name} moved to cifar10s.leaderboard.scoring.validate "
                      f"(or cifar10s.leaderboard.{name}); import from there", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("cifar10s.leaderboard.scoring.validate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
