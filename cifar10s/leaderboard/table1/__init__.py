"""Deprecated: Table 1's experiment moved to :mod:`cifar10s.table1`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

warnings.warn("cifar10s.leaderboard.table1 moved to cifar10s.table1; import from there", DeprecationWarning, stacklevel=2)
