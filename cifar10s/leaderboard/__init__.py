"""The CIFAR-10-S leaderboard: submissions, scoring, the paper's baselines, shuffle experiment, rendering.

* :mod:`.submission`: the submission folder format and its checks (no submission code runs here).
* :mod:`.scoring`: trains a submission on a training set and scores it on the clean test set,
  writing a result JSON with full provenance; submission code runs only in the child processes
  of :mod:`.runner` / :mod:`.worker`, the test labels stay in :mod:`.heldout`.
* :mod:`.baselines`: the paper's Tables 1-5 as data (``baselines.json``), looked up by
  (model, method, training set).
* :mod:`.shuffle` / :mod:`.shuffle_table1`: the shuffle experiment of Table 1 (the sets; the runs).
* :mod:`.results` / :mod:`.render`: result files read as untrusted input; the Markdown and
  static-HTML leaderboard.

The command line for all of it is in :mod:`cifar10s.cli`.

See docs/leaderboard.md and leaderboard/README.md.
"""

from __future__ import annotations

from .baselines import compare, format_comparison, load_baselines, lookup
from .render import load_results, render_html, render_markdown, write_leaderboard
from .scoring import ScoringInterrupted, data_caveats, score_submission
from .shuffle import ShuffledSet, export_shuffled, load_shuffled, shuffle_perturbations, shuffled_variant
from .shuffle_table1 import run_table1
from .submission import Submission, SubmissionError, load_submission, validate_submission

__all__ = [
    "ScoringInterrupted",
    "ShuffledSet",
    "Submission",
    "SubmissionError",
    "compare",
    "data_caveats",
    "export_shuffled",
    "format_comparison",
    "load_baselines",
    "load_results",
    "load_shuffled",
    "load_submission",
    "lookup",
    "render_html",
    "render_markdown",
    "run_table1",
    "score_submission",
    "shuffle_perturbations",
    "shuffled_variant",
    "validate_submission",
    "write_leaderboard",
]
