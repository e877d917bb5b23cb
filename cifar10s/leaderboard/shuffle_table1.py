"""Deprecated: Table 1's runs moved to :mod:`cifar10s.table1.run`; this name re-exports them.

Import from ``cifar10s.table1.run`` (or use ``cifar10s.leaderboard.run_table1``).
"""

from __future__ import annotations

import warnings

from ..table1.run import *  # noqa: F403
from ..table1.run import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.shuffle_table1 moved to cifar10s.table1.run; import from there",
              DeprecationWarning, stacklevel=2)
