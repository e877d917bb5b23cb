"""The ``cifar10s`` command line; the only place that parses arguments.

``main`` imports the command modules on call, so ``python -m cifar10s.cli.train`` (and
``torchrun -m cifar10s.cli.em``) run their module without it having been imported already.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from .main import main as run_main

    return run_main(argv)
