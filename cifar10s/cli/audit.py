"""``audit``: does a training set carry a shortcut? Verdict, evidence, JSON and a picture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import add_command

__all__ = ["register"]


def _training_set(args: argparse.Namespace) -> Any:
    from ..auditing.training_set import clean_test_of_root, from_cifar10, from_npy, from_variant

    given = [name for name, ok in (("--root/--variant", args.root is not None), ("--images/--labels", args.images
             is not None or args.labels is not None), ("--cifar10", args.cifar10 is not None)) if ok]
    if len(given) != 1:
        raise ValueError("give exactly one training set: --root R --variant V, --images X.npy --labels Y.npy, "
                         f"or --cifar10 ARCHIVE_OR_FOLDER (got {', '.join(given) or 'none'})")
    if args.root is not None:
        if args.variant is None:
            raise ValueError("--root needs --variant (e.g. --variant cifar10s)")
        data = from_variant(args.root, args.variant)
        return data, clean_test_of_root(args.root)
    if args.images is not None or args.labels is not None:
        if args.images is None or args.labels is None:
            raise ValueError("--images and --labels go together")
        return from_npy(args.images, args.labels), None
    data = from_cifar10(args.cifar10)
    return data, data.test


def _reference(args: argparse.Namespace) -> Any:
    from ..auditing.training_set import from_cifar10, from_npy, from_variant

    if args.reference is not None and args.reference_variant is not None:
        raise ValueError("give one of --reference and --reference-variant")
    if args.reference is not None:
        path = Path(args.reference)
        if path.suffix == ".npy":
            raise ValueError("--reference takes a CIFAR-10 archive or folder; for .npy files use "
                             "--reference-images X.npy --reference-labels Y.npy")
        return from_cifar10(path)
    if args.reference_variant is not None:
        if args.root is None:
            raise ValueError("--reference-variant reads from --root; give --root too")
        return from_variant(args.root, args.reference_variant)
    if args.reference_images is not None or args.reference_labels is not None:
        if args.reference_images is None or args.reference_labels is None:
            raise ValueError("--reference-images and --reference-labels go together")
        return from_npy(args.reference_images, args.reference_labels)
    return None


def cmd_audit(args: argparse.Namespace) -> int:
    import os

    if args.scores is not None and Path(args.scores).suffix != ".npy":
        raise ValueError(f"--scores writes a .npy file; give a path ending in .npy (got {args.scores})")

    from ..auditing.verdict import audit
    from ..store import atomic_write_json

    data, test = _training_set(args)
    ref = _reference(args)
    if ref is not None and ref.test is not None:
        test = ref.test  # the reference's own clean test split goes with it
    report = audit(
        data.images, data.labels, classes=data.classes if data.classes and len(data.classes) == int(data.labels.max()) + 1
        else None, reference=(ref.images, ref.labels) if ref is not None else None,
        test=(test.images, test.labels) if (test is not None and ref is not None) else None,
        learnability=not args.fast, seed=args.seed, progress=not args.quiet and sys.stderr.isatty(),
        network=args.network,
    )
    print(f"audited {data.origin}" + (f" against {ref.origin}" if ref is not None else ""))
    print(report.summary())
    if args.scores is not None:
        import io

        import numpy as np

        from ..atomic import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, np.asarray(report.scores, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(args.scores, buf.getvalue())
        print(f"wrote {args.scores} ({len(report.scores)} per-image scores from "
              f"{', '.join(report.score_kinds) or 'no detector'})")
    if args.json is not None:
        payload = report.to_dict()
        payload["source"] = data.origin
        payload["reference"] = ref.origin if ref is not None else None
        atomic_write_json(args.json, payload)
        print(f"wrote {args.json}")
    if args.out is not None:
        from ..auditing.picture import draw_report
        from ..show import save_png

        title = f"cifar10s audit: {os.path.basename(str(data.origin))[:80]}"
        image = draw_report(report, title=title)
        save_png(image, args.out)
        print(f"wrote {args.out} ({image.width}x{image.height})")
    return 0


def add_audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=None, help="data folder holding a built variant (with --variant)")
    p.add_argument("--variant", default=None, help="the variant under --root to audit: clean, ops, ops-kK, em, cifar10s")
    p.add_argument("--images", type=Path, default=None, help="uint8 N x 32 x 32 x 3 images (.npy, no pickle)")
    p.add_argument("--labels", type=Path, default=None, help="N integer labels (.npy, no pickle)")
    p.add_argument("--cifar10", type=Path, default=None,
                   help="a CIFAR-10 archive or cifar-10-batches-py folder: audit its training split")
    p.add_argument("--reference", type=Path, default=None,
                   help="a clean CIFAR-10 archive or folder of the same classes (its test split scores the "
                        "learnability gap); the same images in the same order also give the perturbation")
    p.add_argument("--reference-variant", default=None, help="a variant under --root as the reference, e.g. clean")
    p.add_argument("--reference-images", type=Path, default=None, help="reference images (.npy)")
    p.add_argument("--reference-labels", type=Path, default=None, help="reference labels (.npy)")
    p.add_argument("--json", type=Path, default=None, help="write the verdict and all measurements here")
    p.add_argument("--out", type=Path, default=None, help="write the evidence picture (PNG) here")
    p.add_argument("--scores", type=Path, default=None,
                   help="write one float32 suspicion score per image here (.npy, the input's order; higher = more "
                        "likely to carry a shortcut, 1 = as strong as the weakest claimed; from the detectors that "
                        "found something, named in the JSON under scores.kinds)")
    p.add_argument("--fast", action="store_true",
                   help="pixel, pattern and recurring-window detectors only (no second-order scan, no linear probes)")
    p.add_argument("--network", action="store_true",
                   help="also train a small network on the set and report its training accuracy beside the verdict "
                        "(UDP's 0.7 criterion; needs torch; slower: tens of seconds per 10,000 images on a CPU)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probes' splits, initialization and batches")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub: Any) -> None:
    p = add_command(sub, "audit", "find the shortcut in a training set (pixel, patch, moving patch, class-wise, second-order, sample-wise)",
                    "Check a training set for shortcuts that let a model learn nothing useful: pixels fixed per "
                    "class (OPS, also on a share of each class), patches and class-wise patterns, patches pasted "
                    "at random places (recurring windows), class-wise autoregressive noise (second-order), and "
                    "sample-wise noise that a linear model separates (error-minimizing noise). Prints the verdict "
                    "with its evidence; --scores writes a suspicion score per image; exit code 0 whatever the "
                    "verdict, 1 on an error.",
                    "cifar10s audit --root data --variant cifar10s --reference-variant clean --json audit.json "
                    "--out audit.png --scores scores.npy")
    add_audit_args(p)
    p.set_defaults(func=cmd_audit)

