"""The submission format: a folder with a ``submission.json`` and its files, read and checked without running its code.

* :mod:`.record`: the checked submission (:class:`Submission`), its error, the hook names.
* :mod:`.loader`: reading ``submission.json``, hashing the folder's files, refusing what the hash
  cannot describe; :func:`inspect_submission` hands the entry to a sandboxed child to import.

The folder format is documented in docs/leaderboard.md and leaderboard/README.md.
"""

from __future__ import annotations

from .loader import SUBMISSION_FILE, inspect_submission, load_submission, validate_submission
from .record import HOOK_NAMES, Submission, SubmissionError

__all__ = [
    "HOOK_NAMES",
    "SUBMISSION_FILE",
    "Submission",
    "SubmissionError",
    "inspect_submission",
    "load_submission",
    "validate_submission",
]
