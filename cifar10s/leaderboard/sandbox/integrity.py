"""Deprecated: the flip-gap rule moved to :mod:`cifar10s.leaderboard.scoring.integrity`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.leaderboard.scoring.integrity import *  # noqa: F403
from cifar10s.leaderboard.scoring.integrity import __all__  # noqa: F401

warnings.warn("cifar10s.leaderboard.sandbox.integrity moved to cifar10s.leaderboard.scoring.integrity; import from there", DeprecationWarning, stacklevel=2)
