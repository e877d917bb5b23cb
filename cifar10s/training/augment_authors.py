"""Deprecated: the authors' RandAugment moved to :mod:`cifar10s.training.augment.authors`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.training.augment.authors import *  # noqa: F403
from cifar10s.training.augment.authors import __all__  # noqa: F401

warnings.warn("cifar10s.training.augment_authors moved to cifar10s.training.augment.authors; import from there", DeprecationWarning, stacklevel=2)
