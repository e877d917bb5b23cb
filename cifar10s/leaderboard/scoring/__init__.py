"""Scoring policy: how a submission is trained, evaluated and turned into a signed result.

Everything here runs in the scoring process, which holds the test labels and never imports
submission code; the children that run submission code are :mod:`..sandbox`'s.

* :mod:`.score`: prepare -> run the seeds -> assemble the result (:func:`score_submission`).
* :mod:`.validate`: importing a submission's entry in a sandboxed child (``cifar10s validate``).
* :mod:`.seedruns`: what each training and evaluating child is handed, their logits made accuracies.
* :mod:`.heldout`: the clean test split, verified against the package's pins; its labels stay here.
* :mod:`.integrity`: the flip gap and the result's ``integrity`` block.
* :mod:`.provenance`: what a result records about its code, data and environment.
"""

from __future__ import annotations

from ..board.result_file import ResultRecord, write_result
from .score import *  # noqa: F403
from .score import __all__ as _score_all
from .validate import inspect_submission, validate_submission

__all__ = sorted({*_score_all, "ResultRecord", "inspect_submission", "validate_submission", "write_result"})
