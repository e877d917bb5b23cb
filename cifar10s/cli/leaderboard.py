"""Leaderboard commands: ``score``/``submit``, ``validate``, ``leaderboard``, ``keys``, ``verify-result``,
``baselines``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import add_command, parse_sets

__all__ = ["add_training_args", "register"]

DEFAULT_RESULTS = Path("leaderboard/results")
DEFAULT_SITE = Path("leaderboard/site")


def _sandbox(args: argparse.Namespace) -> Any:
    """The sandbox the command's children run in: detected (or refused) once, or none with --no-sandbox."""
    from ..leaderboard.sandbox.bwrap import Limits, detect

    if args.no_sandbox:
        print("warning: --no-sandbox: submission code runs without the operating-system sandbox; "
              "the result records \"sandbox\": \"none\"", file=sys.stderr)
        return False
    return detect(limits=Limits.parse(args.limit))


def cmd_validate(args: argparse.Namespace) -> int:
    from ..leaderboard.scoring.validate import validate_submission

    box = _sandbox(args)
    for folder in args.submissions:
        sub = validate_submission(folder, check_model=not args.no_model_check, time_limit_s=args.time_limit,
                                  sandbox=box)
        what = f"model {sub.model}" if sub.model else f"entry {sub.entry}"
        hooks = ", ".join(h for h in ("preprocess", "make_optimizer", "train_step") if h in (sub.hooks or ()))
        print(f"ok: {folder}: {sub.name!r} by {', '.join(sub.authors)}; {what}, method {sub.method}"
              + (f", defense {sub.defense}" if sub.defense else "") + (f", hooks: {hooks}" if hooks else ""))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ..leaderboard.scoring.score import ScoringRequest, score

    score(ScoringRequest(
        submission=args.submission, root=args.root, sandbox=_sandbox(args), variant=args.variant, preset=args.preset,
        seeds=tuple(args.seeds), device=args.device, out=args.out, workdir=args.workdir,
        overrides=parse_sets(args.set), progress=not args.quiet, time_limit_s=args.time_limit,
        allow_slow=args.allow_slow,
    ))
    return 0


def _trusted(folder: Path | None) -> Any:
    """The keys of ``--trusted-keys``, else of the project's folder (:func:`default_trusted_keys`)."""
    from ..leaderboard.board.signing import default_trusted_keys, load_trusted_keys

    folder = folder if folder is not None else default_trusted_keys()
    keys = load_trusted_keys(folder if folder is not None and folder.is_dir() else None)
    if folder is None:
        print("no trusted keys (not run from a cifar10s checkout, so there is no leaderboard/trusted-keys/ to "
              "use; pass --trusted-keys DIR): every result is listed as unverified")
    elif not folder.is_dir():
        print(f"no trusted keys ({folder} does not exist): every result is listed as unverified")
    else:
        print(f"trusted keys: {len(keys.keys)} from {folder}")
    return keys


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ..leaderboard.board.render import write_leaderboard

    keys = _trusted(args.trusted_keys)
    md, page, n, skipped = write_leaderboard(args.results, args.out, trusted_keys=keys)
    print(f"rendered {n} verified result(s) from {args.results}: {md}, {page}")
    for s in skipped:
        print(f"  skipped {s}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ..leaderboard.board.signing import default_key_path, load_signing_key

    path = args.key if args.key is not None else default_key_path()
    existed = path.exists()
    key = load_signing_key(path)
    print(key.public_line())
    print(f"# key id {key.key_id}; private key {'in' if existed else 'created in'} {key.path} (keep it secret)",
          file=sys.stderr)
    print("# to trust results signed by it, save the line above as leaderboard/trusted-keys/<your-name>.pub",
          file=sys.stderr)
    return 0


def cmd_verify_result(args: argparse.Namespace) -> int:
    from ..leaderboard.board.result_file import MalformedResult, read_result, sandbox_label
    from ..leaderboard.board.results import clean_text, parse_result
    from ..leaderboard.board.signing import verify_record

    keys = _trusted(args.trusted_keys)
    failed = 0
    for path in args.files:
        try:
            data = read_result(path)
            entry = parse_result(data, path.name)
        except (MalformedResult, OSError) as exc:
            print(f"NOT verified: {path}: {clean_text(str(exc))}")
            failed += 1
            continue
        check = verify_record(data, keys)
        if not check.ok:
            print(f"NOT verified: {path}: {check.reason}")
            failed += 1
            continue
        final = "?" if entry.final is None else f"{100 * entry.final:.2f}%"
        print(f"verified: {path}: {check.reason}; {entry.name!r}: {final} on {entry.variant}, preset {entry.preset}, "
              f"sandbox {sandbox_label(data) or 'none (not ranked)'}")
    return 1 if failed else 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from ..paper import format_tables, load_baselines

    if args.json:
        print(json.dumps(load_baselines(), indent=2))
    else:
        print(format_tables(args.table))
    return 0


def add_training_args(p: argparse.ArgumentParser, *, default_variant: str) -> None:
    """The flags of every command that trains: data, preset, seeds, device, resume folder, overrides."""
    p.add_argument("--root", type=Path, required=True, help="data folder with the built variants")
    p.add_argument("--variant", default=default_variant, help="training set: cifar10s, clean, em, ops, ops-kK")
    p.add_argument("--preset", default="paper", help="paper (the paper's settings), gpu-quick or cpu-smoke")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed, e.g. --seeds 0 1 2")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="checkpoint folder (default: <out>/.work/...); rerun with the same one to resume")
    p.add_argument("--set", action="append", metavar="FIELD=JSON",
                   help="override a training setting, e.g. --set epochs=50 (recorded as a difference from the paper)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_sandbox_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-sandbox", action="store_true",
                   help="run submission code without the bubblewrap sandbox (results record \"sandbox\": \"none\")")
    p.add_argument("--limit", action="append", metavar="NAME=VALUE",
                   help="a resource limit of each sandboxed child, e.g. --limit address_space=16G, --limit "
                        "processes=none (names: address_space, cpu_per_wall_second, file_size, open_files, processes)")


def register(sub: Any) -> None:
    for name, summary in (("score", "validate, train and score a submission folder"), ("submit", "same as score")):
        p = add_command(sub, name, summary,
                        "Train a submission on a training set (CIFAR-10-S by default), once per seed, and score it "
                        "on the clean CIFAR-10 test set; writes <out>/<slug>--<variant>--<preset>.json and prints "
                        "the result beside the paper's matching row.",
                        "cifar10s score leaderboard/submissions/resnet18-randaugment --root data --preset paper "
                        "--seeds 0 1 2 --device cuda")
        p.add_argument("submission", type=Path, help="submission folder (with submission.json)")
        add_training_args(p, default_variant="cifar10s")
        p.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="results folder")
        p.add_argument("--allow-slow", action="store_true",
                       help="train on a CPU even if the timed probe estimates more than an hour")
        p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                       help="the most seconds any one child process (inspect, train a seed, evaluate) may run; "
                            "default 10 minutes, 72 hours and 2 hours")
        add_sandbox_args(p)
        p.set_defaults(func=cmd_score)

    p = add_command(sub, "validate", "check submission folders without training",
                    "Check submission.json and the files of each folder, then import the entry point in a child "
                    "process; build the model and run one dummy batch there unless --no-model-check.",
                    "cifar10s validate leaderboard/submissions/resnet18-randaugment")
    p.add_argument("submissions", type=Path, nargs="+", help="submission folders")
    p.add_argument("--no-model-check", action="store_true", help="do not build the model and run a dummy batch")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="the most seconds the child process that imports the entry may run; default 600")
    add_sandbox_args(p)
    p.set_defaults(func=cmd_validate)

    p = add_command(sub, "leaderboard", "render results as Markdown and a static HTML page",
                    "Render every result JSON in --results into leaderboard.md and index.html in --out. Only "
                    "results signed by a trusted key are ranked; unsigned, edited, untrusted and malformed files "
                    "are listed as unverified with the reason, and results scored without a sandbox apart.",
                    "cifar10s leaderboard --results leaderboard/results --out leaderboard/site")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results folder")
    p.add_argument("--out", type=Path, default=DEFAULT_SITE, help="output folder")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="DIR",
                   help="folder of trusted public keys (*.pub); only results signed by one of them are ranked "
                        "(default: leaderboard/trusted-keys/ of the cifar10s checkout the package runs from, "
                        "else of the current folder; keys inside a results folder are never trusted by default)")
    p.set_defaults(func=cmd_leaderboard)

    p = add_command(sub, "keys", "print this installation's public key (the one that signs results)",
                    "Print the public key that signs the results this installation scores, as the line a "
                    "maintainer saves in the leaderboard's trusted-keys folder. The private key is created on "
                    "first use in the user's config folder ($XDG_CONFIG_HOME/cifar10s/signing-key.pem, or "
                    "~/.config/cifar10s/; $CIFAR10S_SIGNING_KEY names another file), readable by its owner only.",
                    "cifar10s keys > leaderboard/trusted-keys/my-gpu-box.pub")
    p.add_argument("--key", type=Path, default=None, metavar="FILE",
                   help="private key file (default: $CIFAR10S_SIGNING_KEY, else the config folder)")
    p.set_defaults(func=cmd_keys)

    p = add_command(sub, "verify-result", "check that result files were signed by a trusted scorer",
                    "Read each result file strictly (duplicate keys, NaN and huge numbers refused), check its "
                    "fields, and verify its signature against the trusted public keys; print one line per file. "
                    "Exit code 1 if any file is not verified.",
                    "cifar10s verify-result received/resnet18-at--cifar10s--paper.json --trusted-keys "
                    "leaderboard/trusted-keys")
    p.add_argument("files", type=Path, nargs="+", help="result JSON files")
    p.add_argument("--trusted-keys", type=Path, default=None, metavar="DIR",
                   help="folder of trusted public keys (*.pub); default: the project's leaderboard/trusted-keys/, "
                        "as for leaderboard")
    p.set_defaults(func=cmd_verify_result)

    p = add_command(sub, "baselines", "print the paper's tables stored in the package",
                    "Print the paper's Tables 1-5 (Wu et al., ICLR 2023) as stored in the package, with the "
                    "source of every number.",
                    "cifar10s baselines --table table4")
    p.add_argument("--table", default=None, help="only this table, e.g. table4 (default: all)")
    p.add_argument("--json", action="store_true", help="print the stored JSON")
    p.set_defaults(func=cmd_baselines)
