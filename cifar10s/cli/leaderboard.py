"""Leaderboard subcommands: ``score``/``submit``, ``validate``, ``leaderboard``, ``baselines``.

``cifar10s.cli.main`` adds them with :func:`register`::

    from cifar10s.cli.leaderboard import register
    register(sub)   # sub = parser.add_subparsers(...)

Each handler returns an exit code. Errors are raised as ``ValueError`` (``SubmissionError``),
``FileNotFoundError`` or ``RuntimeError``, which the top-level ``main`` reports as
``error: ...`` with exit code 2. ``python -m cifar10s.cli.leaderboard`` runs the same commands
on their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["build_parser", "cmd_baselines", "cmd_leaderboard", "cmd_score", "cmd_validate",
           "main", "register"]

DEFAULT_RESULTS = Path("leaderboard/results")
DEFAULT_SITE = Path("leaderboard/site")


def _parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set FIELD=JSON`` (repeatable) -> {field: value}; bare words are taken as strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    from ..leaderboard.submission import load_submission

    for folder in args.submissions:
        sub = load_submission(folder, check_model=not args.no_model_check)
        what = f"model {sub.model}" if sub.model else f"entry {sub.entry}"
        hooks = ", ".join(h for h in ("preprocess", "make_optimizer", "train_step")
                          if sub.hooks is not None and getattr(sub.hooks, h) is not None)
        print(f"ok: {folder}: {sub.name!r} by {', '.join(sub.authors)}; {what}, method {sub.method}"
              + (f", defense {sub.defense}" if sub.defense else "") + (f", hooks: {hooks}" if hooks else ""))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ..leaderboard.scoring import score_submission

    score_submission(
        args.submission, args.root, variant=args.variant, preset=args.preset, seeds=args.seeds, device=args.device,
        out=args.out, workdir=args.workdir, overrides=_parse_sets(args.set), progress=not args.quiet,
    )
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ..leaderboard.render import write_leaderboard

    md, page, n, skipped = write_leaderboard(args.results, args.out)
    print(f"rendered {n} result(s) from {args.results}: {md}, {page}")
    for s in skipped:
        print(f"  skipped {s}")
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from ..leaderboard.baselines import format_tables, load_baselines

    if args.json:
        print(json.dumps(load_baselines(), indent=2))
    else:
        print(format_tables(args.table))
    return 0


def _training_args(p: argparse.ArgumentParser, *, default_variant: str) -> None:
    p.add_argument("--root", type=Path, required=True, help="data folder with the built variants")
    p.add_argument("--variant", default=default_variant,
                   help=f"training set: cifar10s, clean, em, ops, ops-kK (default {default_variant})")
    p.add_argument("--preset", default="paper", help="paper, gpu-quick or cpu-smoke (default paper)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed, e.g. --seeds 0 1 2")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="checkpoint folder (default <out>/.work/...); rerun with the same one to resume")
    p.add_argument("--set", action="append", metavar="FIELD=JSON",
                   help="override a training setting, e.g. --set epochs=50 (recorded in preset_diff)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers: Any) -> None:
    """Add the leaderboard subcommands to an ``argparse`` subparsers object."""
    for name, help_text in (("score", "validate, train and score a submission folder"),
                            ("submit", "same as score")):
        p = subparsers.add_parser(name, help=help_text, description=(
            "Train a submission on a training set (CIFAR-10-S by default), once per seed, and score it on the "
            "clean CIFAR-10 test set; writes <out>/<slug>--<variant>--<preset>.json."))
        p.add_argument("submission", type=Path, help="submission folder (with submission.json)")
        _training_args(p, default_variant="cifar10s")
        p.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help=f"results folder (default {DEFAULT_RESULTS})")
        p.set_defaults(func=cmd_score)

    p = subparsers.add_parser("validate", help="check submission folders without training")
    p.add_argument("submissions", type=Path, nargs="+")
    p.add_argument("--no-model-check", action="store_true", help="do not build the model and run a dummy batch")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("leaderboard", help="render results as Markdown and a static HTML page")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help=f"results folder (default {DEFAULT_RESULTS})")
    p.add_argument("--out", type=Path, default=DEFAULT_SITE, help=f"output folder (default {DEFAULT_SITE})")
    p.set_defaults(func=cmd_leaderboard)

    p = subparsers.add_parser("baselines", help="print the paper's tables stored in the package, with sources")
    p.add_argument("--table", default=None, help="only this table, e.g. table4")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_baselines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifar10s-leaderboard", description=__doc__.split("\n")[0])
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .main import run

    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
