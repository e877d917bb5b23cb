"""Deprecated: Table 1's shuffled sets moved to :mod:`cifar10s.table1.shuffle`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.table1.shuffle import *  # noqa: F403
from cifar10s.table1.shuffle import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.table1.shuffle moved to cifar10s.table1.shuffle; import from there", DeprecationWarning, stacklevel=2)
