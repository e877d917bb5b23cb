"""Deprecated: Table 1's runs moved to :mod:`cifar10s.table1.run`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.table1.run import *  # noqa: F403
from cifar10s.table1.run import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.table1.run moved to cifar10s.table1.run; import from there", DeprecationWarning, stacklevel=2)
