"""The error every problem with a CIFAR-10 source derives from, so callers catch one class."""

from __future__ import annotations
from ..errors import Cifar10sError


class SourceError(Cifar10sError, ValueError):
    """The given CIFAR-10 source is missing, unreadable, unsafe or not in the expected layout."""
