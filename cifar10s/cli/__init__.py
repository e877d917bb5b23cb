"""The ``cifar10s`` command line; the only place that parses arguments."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
