"""Deprecated: what a result records about where it came from moved to :mod:`cifar10s.leaderboard.scoring.provenance`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.leaderboard.scoring.provenance import *  # noqa: F403
from cifar10s.leaderboard.scoring.provenance import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.provenance moved to cifar10s.leaderboard.scoring.provenance; import from there", DeprecationWarning, stacklevel=2)
