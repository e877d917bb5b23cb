"""Deprecated: the seeds' runs moved to :mod:`cifar10s.leaderboard.scoring.seedruns`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.leaderboard.scoring.seedruns import *  # noqa: F403
from cifar10s.leaderboard.scoring.seedruns import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.sandbox.seedruns moved to cifar10s.leaderboard.scoring.seedruns; import from there", DeprecationWarning, stacklevel=2)
