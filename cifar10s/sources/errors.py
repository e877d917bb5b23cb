"""The error every problem with a CIFAR-10 source derives from, so callers catch one class."""

from __future__ import annotations


class SourceError(ValueError):
    """The given CIFAR-10 source is missing, unreadable, unsafe or not in the expected layout."""
