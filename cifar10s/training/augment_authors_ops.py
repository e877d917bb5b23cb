"""Deprecated: the authors' RandAugment ops moved to :mod:`cifar10s.training.augment.authors_ops`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.training.augment.authors_ops import *  # noqa: F403
from cifar10s.training.augment.authors_ops import __all__  # noqa: F401

warnings.warn("cifar10s.training.augment_authors_ops moved to cifar10s.training.augment.authors_ops; import from there", DeprecationWarning, stacklevel=2)
