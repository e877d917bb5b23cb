"""The paper's Tables 1-5 (Wu et al., *One-Pixel Shortcut*, ICLR 2023) as data, and lookups against them.

* :mod:`.tables`: ``baselines.json`` read and validated into tables of printed numbers, each with
  its place in the paper; the tables printed as grids.
* :mod:`.lookup`: the accuracies keyed the way results are (model, method, training set), found
  and compared with a result's accuracies.

Both the leaderboard's scorer and board and the Table 1 experiment read the paper from here.
Neither module imports torch.
"""

from __future__ import annotations

from .lookup import BaselineRow, Comparison, compare, format_comparison, lookup, rows, train_set_name
from .tables import (
    CLEAN_TEST,
    CellSource,
    PaperCell,
    PaperTable,
    canonical_model,
    format_tables,
    load_baselines,
    table_names,
    tables,
    validate_baselines,
)

__all__ = [
    "CLEAN_TEST",
    "BaselineRow",
    "CellSource",
    "Comparison",
    "PaperCell",
    "PaperTable",
    "canonical_model",
    "compare",
    "format_comparison",
    "format_tables",
    "load_baselines",
    "lookup",
    "rows",
    "table_names",
    "tables",
    "train_set_name",
    "validate_baselines",
]
