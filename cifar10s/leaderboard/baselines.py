"""Deprecated: the paper's tables moved to :mod:`cifar10s.paper`; this name re-exports them.

Import from ``cifar10s.paper`` (or use ``cifar10s.leaderboard.compare`` / ``lookup`` /
``load_baselines`` / ``format_comparison``).
"""

from __future__ import annotations

import warnings

from ..paper import *  # noqa: F403
from ..paper import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.baselines moved to cifar10s.paper; import from there",
              DeprecationWarning, stacklevel=2)
