"""What every command shares: running a handler, the error-to-exit-code policy, common flags.

Exit codes: 0 success, 1 a runtime error (bad data, a failed check, a missing build: one line
on stderr that says what to do), 2 a usage error (argparse's own), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "HelpFormatter",
    "add_command",
    "add_em_guard_args",
    "add_variant_args",
    "cli_words",
    "parse_sets",
    "run",
    "run_standalone",
    "spec_from_args",
]

#: Errors with remedies (cifar10s.errors.ActionableError) print their command-line words themselves;
#: these few phrases translate the plain messages of the modules that do not carry remedies yet
#: (the scorer's time refusal, the CIFAR-10 source hints); the repair calls of a damaged folder
#: become their commands (cifar10s.repair.calls_to_commands).
_API_TO_CLI = (
    ("download=True", "--download"),
    ("pass allow_slow=True", "add --allow-slow"),
    ("(device='cuda')", "(--device cuda)"),
    ("cifar10=PATH", "--cifar10 PATH"),
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples printed as written; a flag's default shown unless its help gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS)
                or action.option_strings == [] or isinstance(action, argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


def cli_words(message: str | BaseException) -> str:
    """A library message in command-line words, on one line: an error's remedies in flags, or a
    plain message with its few API phrases translated."""
    from ..errors import ActionableError
    from ..repair import calls_to_commands

    if isinstance(message, ActionableError):
        message = message.explain("cli", one_line=True)
    else:
        message = calls_to_commands(str(message))
        for api, cli in _API_TO_CLI:
            message = message.replace(api, cli)
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen handler and map errors to exit codes (see module docstring)."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError, KeyError) as exc:
        print(f"error: {cli_words(exc) or type(exc).__name__}", file=sys.stderr)
        return 1


def run_standalone(module: str, description: str, add_args: Callable[[argparse.ArgumentParser], None],
                   argv: Sequence[str] | None = None) -> int:
    """One command run as ``torchrun -m cifar10s.cli.<module>``: its own parser, the same flags and errors."""
    parser = argparse.ArgumentParser(prog=f"torchrun -m cifar10s.cli.{module}", description=description,
                                     formatter_class=HelpFormatter)
    add_args(parser)
    return run(parser, argv)


def add_command(subparsers: Any, name: str, summary: str, description: str, example: str,
                **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand with a one-line summary, a description, an example and defaults in its help."""
    return subparsers.add_parser(
        name, help=summary, description=textwrap.fill(description, 88), epilog=f"example:\n  {example}",
        formatter_class=HelpFormatter, **kwargs,
    )


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set FIELD=JSON`` (repeatable) -> {field: value}; a bare word is taken as a string."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def add_variant_args(p: argparse.ArgumentParser, default: str = "ops") -> None:
    from ..onepixel import OBJECTIVES

    p.add_argument("--variant", default=default,
                   help="clean, ops (OPS only), ops-kK (K shortcut pixels), em (EM noise only) or cifar10s (EM + OPS)")
    p.add_argument("--pixels", type=int, default=None, help="shortcut pixels per class (the paper's Table 5); "
                   "default: from --variant (1)")
    p.add_argument("--objective", choices=OBJECTIVES, default=None,
                   help="OPS search objective: the authors' code (mean-std) or the paper's eq. 3; default mean-std")


def add_em_guard_args(p: argparse.ArgumentParser) -> None:
    """The opt-ins of builds that may compute EM noise."""
    p.add_argument("--allow-slow", action="store_true",
                   help="compute EM noise even if a short probe expects it to take over an hour on this device")
    p.add_argument("--allow-unconverged", action="store_true",
                   help="publish EM noise that reached max_rounds without meeting its stop criterion "
                        "(marked release_grade=false)")


def spec_from_args(args: argparse.Namespace) -> Any:
    from ..variants import parse_variant

    return parse_variant(args.variant, pixels=args.pixels, objective=args.objective)
