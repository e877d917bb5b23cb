"""Deprecated: the held-out test split moved to :mod:`cifar10s.leaderboard.scoring.heldout`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.leaderboard.scoring.heldout import *  # noqa: F403
from cifar10s.leaderboard.scoring.heldout import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.sandbox.heldout moved to cifar10s.leaderboard.scoring.heldout; import from there", DeprecationWarning, stacklevel=2)
