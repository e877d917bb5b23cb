"""Data commands: ``download``, ``build``, ``info``, ``show``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_command, add_em_guard_args, add_variant_args, spec_from_args

__all__ = ["register"]


def cmd_download(args: argparse.Namespace) -> int:
    from ..sources.download import download_cifar10

    path = download_cifar10(args.root, progress=not args.quiet)
    print(f"CIFAR-10 archive ready: {path}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from ..folder import open_folder
    from ..release.builders import build_variant

    outcome = build_variant(
        args.root, spec_from_args(args), cifar10=args.cifar10, download=args.download, force=args.force,
        progress=not args.quiet, recipe=args.recipe, device=args.device,
        allow_slow=args.allow_slow, allow_unconverged=args.allow_unconverged,
    )
    folder = open_folder(outcome.path, check_hashes=False)
    src = folder.source
    print(f"{'built' if outcome.built else 'up to date'}: {outcome.path}")
    if not src.official:
        comparable = ("the same scale as the paper's; results say which copy it was" if src.kind != "subset"
                      else "not comparable with the paper's numbers")
        print(f"note: source is {src.short()}, {src.num_train} train / {src.num_test} test images; {comparable}")
    for s in folder.shortcuts:
        print(f"  class {s['label']}: pixel (row {s['row']}, col {s['col']}) colour {tuple(s['colour'])} "
              f"score {s['score']:.4f}" if isinstance(s["score"], float) else f"  {s}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import sys

    from ..release.health import check_root
    from ..store import data_dir
    from ..version import __version__

    if not Path(args.root).is_dir():
        raise FileNotFoundError(f"{args.root} does not exist; build into it with `cifar10s build --variant ops "
                                f"--root {args.root} --cifar10 PATH`")
    folders = check_root(args.root, fast=args.fast)
    damaged = [f for f in folders if not f.ok]
    if args.json:
        print(json.dumps({f.name: f.manifest for f in folders if f.manifest is not None}, indent=2))
    else:
        checked = "--fast: sizes, .npy headers and label ranges checked" if args.fast else "every file checked against its sha256"
        print(f"cifar10s {__version__}; data folder {data_dir(args.root)} ({checked})")
        if not folders:
            print(f"nothing built yet: run `cifar10s build --variant ops --cifar10 PATH --root {args.root}`")
        for f in folders:
            print(_describe(f.name, f.manifest) if f.manifest is not None else f"- {f.name}: manifest unreadable")
            for fname, problem in f.problems.items():
                print(f"    DAMAGED {fname}: {problem}")
            if f.problems:
                print(f"    repair: {f.repair_command()}")
    for f in damaged:
        print(f"error: {f.path} is damaged ({', '.join(f.problems)}); repair it with `{f.repair_command()}`",
              file=sys.stderr)
    return 1 if damaged else 0


def _describe(name: str, m: dict[str, Any]) -> str:
    from ..folder import files_of, source_of
    from ..store import TRAIN_IMAGES

    src = source_of(m)
    train = files_of(m).get(TRAIN_IMAGES)
    n = train.shape[0] if train is not None and train.shape else "?"
    line = f"- {name}: {n} train images, source {src.short()}, built with cifar10s {m['environment']['cifar10s']}"
    if m.get("recipe"):
        line += f", recipe {m['recipe'].get('version')}"
    em = m.get("em")
    if em:
        state = "converged" if em.get("converged") else "NOT converged"
        line += (f" (EM {state}: generator accuracy {em.get('final_accuracy')} after {em.get('rounds')} rounds "
                 f"on {em.get('device')})")
    if m.get("release_grade") is False:
        line += "; NOT release grade (built with --allow-unconverged)"
    return line


def cmd_show(args: argparse.Namespace) -> int:
    import numpy as np

    from ..folder import open_variant
    from ..release.builders import load_shortcut
    from ..show import contact_sheet, save_png
    from ..store import TRAIN_IMAGES, TRAIN_LABELS
    from ..variants import VariantSpec

    spec = spec_from_args(args)
    variant = open_variant(args.root, spec, check_hashes=False)
    clean = open_variant(args.root, VariantSpec("clean"), check_hashes=False)
    shortcuts = load_shortcut(variant.path).shortcuts if spec.uses_ops else ()
    sheet = contact_sheet(
        clean.load(TRAIN_IMAGES), variant.load(TRAIN_IMAGES), np.asarray(variant.load(TRAIN_LABELS)),
        variant.classes, shortcuts, per_class=args.per_class, scale=args.scale, amplify=args.amplify,
        title=f"{spec.folder_name}: clean | perturbed" + (" | |diff|" if args.amplify else ""),
    )
    out = save_png(sheet, args.out)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "download", "download the official CIFAR-10 archive (md5-checked, resumable)",
                    "Download cifar-10-python.tar.gz from its authors' site into ROOT; an interrupted download "
                    "resumes from its .part file, and the file is renamed into place only after its md5 matches.",
                    "cifar10s download --root data")
    p.add_argument("--root", type=Path, required=True, help="folder to download into")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)

    p = add_command(sub, "build", "build a variant (clean, ops, em, cifar10s) from CIFAR-10",
                    "Build one dataset variant and the stages it needs under ROOT/cifar10s-v1/. Stages are "
                    "cached: an up-to-date variant built from the same source is not rebuilt.",
                    "cifar10s build --variant ops --root data --cifar10 cifar-10-python.tar.gz")
    add_variant_args(p)
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--cifar10", type=Path, default=None,
                   help="CIFAR-10 archive or cifar-10-batches-py folder (default: a copy under --root)")
    p.add_argument("--download", action="store_true", help="download the official CIFAR-10 if no copy is found")
    p.add_argument("--force", action="store_true", help="rebuild even if an up-to-date build exists")
    p.add_argument("--recipe", default=None, help="EM recipe: a JSON file or a packaged version (default: v1)")
    p.add_argument("--device", default=None, help="where EM runs, e.g. cuda or cpu (default: cuda if available)")
    add_em_guard_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_build)

    p = add_command(sub, "info", "list what is built under a root, each file checked",
                    "List every built variant under ROOT with its source, recipe and EM outcome, after checking "
                    "every file against its manifest (sha256; --fast: sizes, .npy headers and label ranges). "
                    "Exit code 1 when a file is damaged: each one is named, with the command that repairs "
                    "its folder.",
                    "cifar10s info --root data")
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--fast", action="store_true",
                   help="check sizes, .npy headers and label ranges only, not the sha256 of every file")
    p.add_argument("--json", action="store_true", help="print the readable manifests as JSON")
    p.set_defaults(func=cmd_info)

    p = add_command(sub, "show", "write a PNG of clean vs perturbed images per class",
                    "Draw a contact sheet: per class, clean images beside the variant's images (and the "
                    "amplified difference), with the shortcut pixel of OPS variants marked.",
                    "cifar10s show --variant ops --root data --out ops.png --amplify 8")
    add_variant_args(p)
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--out", type=Path, default=Path("cifar10s-show.png"), help="PNG to write")
    p.add_argument("--per-class", type=int, default=4, help="images per class")
    p.add_argument("--scale", type=int, default=4, help="pixel magnification")
    p.add_argument("--amplify", type=float, default=0.0, help="also show |diff| x this factor (0: no diff column)")
    p.set_defaults(func=cmd_show)
