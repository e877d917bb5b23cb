"""Deprecated: torchvision's RandAugment moved to :mod:`cifar10s.training.augment.randaugment_tv`; this name re-exports it for one version."""

from __future__ import annotations

import warnings

from cifar10s.training.augment.randaugment_tv import *  # noqa: F403
from cifar10s.training.augment.randaugment_tv import __all__  # noqa: F401

warnings.warn("cifar10s.training.augment_randaugment_tv moved to cifar10s.training.augment.randaugment_tv; import from there", DeprecationWarning, stacklevel=2)
