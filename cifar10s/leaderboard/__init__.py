"""The CIFAR-10-S leaderboard: submissions, scoring, the board, and the paper's Table 1 experiment.

* :mod:`.submission`: the submission folder format and its checks (no submission code runs
  here, and it imports neither the sandbox nor the scorer).
* :mod:`.sandbox`: isolation only: child processes (:mod:`.sandbox.runner`, :mod:`.sandbox.worker`)
  in the bubblewrap sandbox (:mod:`.sandbox.bwrap`), and what the host reads of what they leave.
* :mod:`.scoring`: the scoring policy: validating, training and evaluating a submission in
  sandboxed children, the held-out test split whose labels stay in the scoring process
  (:mod:`.scoring.heldout`), the flip gap, and the signed result with its provenance.
* :mod:`.board`: the result format (:mod:`.board.result_file`) and its signatures
  (:mod:`.board.signing`), neither importing torch; result files read as untrusted input, and
  the Markdown and static-HTML leaderboard, which ranks only results signed by a trusted key.

The paper's Table 1 experiment (no submissions involved) is :mod:`cifar10s.table1`.
The paper's Tables 1-5 that results are compared with are :mod:`cifar10s.paper`. The names
below are imported on first use, so rendering the board imports no torch. The command line for
all of it is in :mod:`cifar10s.cli`.

See docs/leaderboard.md and leaderboard/README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

#: public name -> the module that defines it, relative to this package
_LAZY = {
    "ScoringInterrupted": ".scoring.seedruns",
    "ShuffledSet": "..table1.shuffle",
    "Submission": ".submission",
    "SubmissionError": ".submission",
    "compare": "..paper",
    "data_caveats": ".board.result_file",
    "export_shuffled": "..table1.shuffle",
    "format_comparison": "..paper",
    "load_baselines": "..paper",
    "load_results": ".board.render",
    "load_shuffled": "..table1.shuffle",
    "load_submission": ".submission",
    "lookup": "..paper",
    "render_html": ".board.render",
    "render_markdown": ".board.render",
    "run_table1": "..table1.run",
    "score_submission": ".scoring.score",
    "shuffle_perturbations": "..table1.shuffle",
    "shuffled_variant": "..table1.shuffle",
    "validate_submission": ".scoring.validate",
    "write_leaderboard": ".board.render",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from ..paper import compare, format_comparison, load_baselines, lookup
    from .board.render import load_results, render_html, render_markdown, write_leaderboard
    from .board.result_file import data_caveats
    from ..table1.run import run_table1
    from ..table1.shuffle import ShuffledSet, export_shuffled, load_shuffled, shuffle_perturbations, shuffled_variant
    from .scoring.score import score_submission
    from .scoring.seedruns import ScoringInterrupted
    from .scoring.validate import validate_submission
    from .submission import Submission, SubmissionError, load_submission

__getattr__ = lazy_exports(__name__, _LAZY)
