"""Deprecated: the augmentations' random draws moved to :mod:`cifar10s.training.augment.draws`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.training.augment.draws import *  # noqa: F403
from cifar10s.training.augment.draws import __all__  # noqa: F401

warnings.warn("cifar10s.training.augment_draws moved to cifar10s.training.augment.draws; import from there", DeprecationWarning, stacklevel=2)
