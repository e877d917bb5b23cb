"""The ``cifar10s`` command line: a thin layer over the library, one module per command group.

Handlers import the library lazily, so ``cifar10s --version`` and ``--help`` do not import torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..version import __version__
from . import audit, data, em, leaderboard, release, shuffle, train
from .common import HelpFormatter, run

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Distribute, rebuild and score CIFAR-10-S, the unlearnable training set of "One-Pixel Shortcut"
(Wu et al., ICLR 2023): error-minimizing noise with a one-pixel shortcut on top.

exit codes: 0 success, 1 runtime error (one line on stderr saying what to do), 2 usage error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifar10s", description=DESCRIPTION, formatter_class=HelpFormatter,
                                     epilog="example:\n  cifar10s build --variant ops --root data --cifar10 "
                                            "cifar-10-python.tar.gz")
    parser.add_argument("--version", action="version", version=f"cifar10s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data.register(sub)  # download, build, info, show
    release.register(sub)  # rebuild, verify, publish, fetch
    leaderboard.register(sub)  # score/submit, validate, leaderboard, baselines
    shuffle.register(sub)  # Table 1's shuffle experiment and the shuffled evaluation sets
    train.register(sub)  # train (torchrun-ready)
    em.register(sub)  # EM noise on its own (torchrun-ready)
    audit.register(sub)  # find the shortcut in any training set
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
