"""The ``cifar10s shuffle`` command: Table 1's shuffle experiment, or the export of a shuffled evaluation set.

``cifar10s.cli.main`` adds it with :func:`register`; the work is done by
:mod:`cifar10s.table1.shuffle` (the sets) and :mod:`cifar10s.table1.run`
(training, evaluation, the table).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import HelpFormatter, parse_sets

__all__ = ["cmd_shuffle", "register"]

DEFAULT_OUT = Path("leaderboard/shuffle")
DEFAULT_VARIANTS = ["em", "ops"]

DESCRIPTION = """\
Table 1 of the paper: one model is trained on the clean training set and one on each --variant
(with --model, --preset and --method, once per seed). Each model is evaluated on the clean
training set, on every variant's training set and on every variant's shuffled set, and the
grid is printed beside the paper's numbers. A shuffled set moves every image's perturbation,
with its label, to another image: image j becomes clean_j + (perturbed_pi(j) - clean_pi(j))
(the OPS pixel written as its colour) with label y_pi(j), for one random permutation pi of the
images (--shuffle-seed). A model that reads the images scores about 10% on it; one that
follows the perturbation scores far higher.

With --export DIR nothing is trained: the shuffled evaluation set of each --variant is written
to DIR/<variant folder>/ (images.npy, labels.npy, permutation.npy, manifest.json)."""

EPILOG = """\
examples:
  cifar10s shuffle --root data --preset gpu-quick --device cuda
  cifar10s shuffle --root data --variant ops --model lenet5 --preset cpu-smoke --set epochs=5
  cifar10s shuffle --root data --variant em ops cifar10s --seeds 0 1 2 --out results/table1
  cifar10s shuffle --root data --variant ops --checkpoint clean=clean.pt --checkpoint ops-k1=ops.pt
  cifar10s shuffle --root data --variant ops cifar10s --export shuffled --shuffle-seed 1"""


def _parse_checkpoints(items: list[str] | None) -> dict[str, Path]:
    """``--checkpoint TRAINSET=PATH`` (repeatable) -> {training set: path}."""
    out: dict[str, Path] = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise ValueError(f"--checkpoint expects TRAINSET=PATH (e.g. clean=model.pt), got {item!r}")
        out[key.strip()] = Path(path.strip())
    return out


def cmd_shuffle(args: argparse.Namespace) -> int:
    if args.export is not None:
        from ..table1.shuffle import export_shuffled, shuffle_spec

        for variant in args.variant:
            spec = shuffle_spec(variant)
            folder = export_shuffled(args.root, spec, args.export / spec.folder_name, seed=args.shuffle_seed)
            print(f"wrote the shuffled {spec.folder_name} evaluation set (seed {args.shuffle_seed}) to {folder}")
        return 0

    from ..table1.run import run_table1

    run_table1(
        args.root, variants=args.variant, model=args.model, method=args.method, preset=args.preset,
        seeds=args.seeds, shuffle_seed=args.shuffle_seed, device=args.device, workdir=args.workdir, out=args.out,
        overrides=parse_sets(args.set), checkpoints=_parse_checkpoints(args.checkpoint), progress=not args.quiet,
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the ``shuffle`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "shuffle", help="Table 1: models trained on clean/EM/OPS data evaluated on shuffled sets; or --export",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="data folder with clean and each --variant built")
    p.add_argument("--variant", nargs="+", default=DEFAULT_VARIANTS, metavar="VARIANT",
                   help="perturbed sets to train on, evaluate and shuffle: em, ops, ops-kK, cifar10s "
                        f"(default: {' '.join(DEFAULT_VARIANTS)}, Table 1's columns)")
    p.add_argument("--model", default="resnet18", help="registered model (default: resnet18, as in Table 1)")
    p.add_argument("--method", default="standard", help="training method, e.g. randaugment or at (default: standard)")
    p.add_argument("--preset", default="paper", help="training preset: paper, gpu-quick, cpu-smoke (default: paper)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                   help="one model per training set and seed, e.g. --seeds 0 1 2 (default: 0)")
    p.add_argument("--shuffle-seed", type=int, default=0,
                   help="seed of the permutation of the images (default: 0)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="per-run checkpoints; finished runs found there are loaded, interrupted ones resume "
                        "(default: <out>/.work)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for table1--<model>--<method>--<preset>.json (default: {DEFAULT_OUT})")
    p.add_argument("--set", action="append", metavar="FIELD=JSON",
                   help="override a training setting, repeatable, e.g. --set epochs=50 (recorded in preset_diff; "
                        "default: none)")
    p.add_argument("--checkpoint", action="append", metavar="TRAINSET=PATH",
                   help="evaluate these trained weights instead of training on TRAINSET (clean or a --variant "
                        "folder name such as ops-k1), repeatable, single seed only (default: train every model)")
    p.add_argument("--export", type=Path, default=None, metavar="DIR",
                   help="write each --variant's shuffled evaluation set to DIR/<variant folder>/ and train "
                        "nothing (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: shown)")
    p.set_defaults(func=cmd_shuffle)
