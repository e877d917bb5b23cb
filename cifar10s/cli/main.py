"""The ``cifar10s`` command line: a thin layer over the library functions."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..onepixel import OBJECTIVES
from ..variants import KINDS, VariantSpec, parse_variant


def _variant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="ops", help=f"one of {', '.join(KINDS)} (or e.g. ops-k3)")
    p.add_argument("--pixels", type=int, default=None, help="shortcut pixels per class (paper Table 5)")
    p.add_argument("--objective", choices=OBJECTIVES, default=None, help="OPS search objective")


def _spec(args: argparse.Namespace) -> VariantSpec:
    return parse_variant(args.variant, pixels=args.pixels, objective=args.objective)


def cmd_build(args: argparse.Namespace) -> int:
    from ..release.builders import build_variant, variant_folder
    from ..store import MANIFEST, read_manifest

    spec = _spec(args)
    previous = variant_folder(args.root, spec) / MANIFEST
    before = previous.read_bytes() if previous.is_file() else None
    folder = build_variant(
        args.root, spec, cifar10=args.cifar10, download=args.download, force=args.force,
        progress=not args.quiet, recipe=args.recipe, device=args.device,
    )
    manifest = read_manifest(folder)
    src = manifest["source"]
    # every build writes a new manifest (timestamps, timings), so unchanged bytes mean it was cached
    print(f"{'up to date' if before == (folder / MANIFEST).read_bytes() else 'built'}: {folder}")
    if not src["official"]:
        print(f"note: source is NOT the official CIFAR-10 ({src['num_train']} train images, "
              f"fingerprint {src['fingerprint'][:12]}); not comparable with the paper's numbers")
    for s in manifest.get("shortcut", {}).get("shortcuts", []):
        print(f"  class {s['label']}: pixel (row {s['row']}, col {s['col']}) colour {tuple(s['colour'])} "
              f"score {s['score']:.4f}" if isinstance(s["score"], float) else f"  {s}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..release.builders import built_variants
    from ..store import data_dir

    variants = built_variants(args.root)
    if args.json:
        print(json.dumps(variants, indent=2))
        return 0
    print(f"cifar10s {__version__}; data folder {data_dir(args.root)}")
    if not variants:
        print("nothing built yet: run `cifar10s build --variant ops --cifar10 PATH --root "
              f"{args.root}`")
        return 0
    for name, m in variants.items():
        src = m["source"]
        n = m["files"].get("train_images.npy", {}).get("shape", ["?"])[0]
        official = "official" if src["official"] else "NOT official"
        line = (f"- {name}: {n} train images, source {official} CIFAR-10 ({src['fingerprint'][:12]}), "
                f"built with cifar10s {m['environment']['cifar10s']}")
        if m.get("recipe"):
            line += f", recipe {m['recipe'].get('version')}"
        em = m.get("em")
        if em:
            state = "converged" if em.get("converged") else "NOT converged"
            line += (f" (EM {state}: generator accuracy {em.get('final_accuracy')} after {em.get('rounds')} rounds "
                     f"on {em.get('device')})")
        print(line)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import numpy as np

    from ..release.builders import TRAIN_IMAGES, TRAIN_LABELS, clean_folder, load_shortcut, variant_folder
    from ..show import contact_sheet, save_png
    from ..store import load_array, verify_folder

    spec = _spec(args)
    folder = variant_folder(args.root, spec)
    try:
        manifest = verify_folder(folder, check_hashes=False)
    except FileNotFoundError:
        print(f"error: {spec.folder_name} is not built under {args.root}; run `cifar10s build "
              f"--variant {args.variant} --root {args.root} --cifar10 PATH` first", file=sys.stderr)
        return 2
    clean = verify_folder(clean_folder(args.root), check_hashes=False)
    labels = np.asarray(load_array(folder, TRAIN_LABELS, manifest))
    shortcuts = load_shortcut(folder).shortcuts if spec.uses_ops else ()
    sheet = contact_sheet(
        load_array(clean_folder(args.root), TRAIN_IMAGES, clean),
        load_array(folder, TRAIN_IMAGES, manifest),
        labels, manifest["classes"], shortcuts, per_class=args.per_class, scale=args.scale,
        amplify=args.amplify,
    )
    out = save_png(sheet, args.out)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from ..release.pipeline import rebuild

    report = rebuild(args.root, recipe=args.recipe, cifar10=args.cifar10, download=args.download,
                     device=args.device, force=args.force, progress=not args.quiet)
    print(report.to_text())
    if args.report:
        from ..store import atomic_write_json

        atomic_write_json(args.report, report.to_dict())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import tempfile

    from ..release.verify import EMTolerance, verify_build

    with contextlib.ExitStack() as stack:
        release = args.release
        if release is None:
            from ..hub.client import DEFAULT_REPO_ID, DEFAULT_REVISION, fetch_variant

            release = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cifar10s-release-")))
            for variant in ("clean", "ops", "em", "cifar10s"):
                fetch_variant(release, variant, repo_id=args.repo_id or DEFAULT_REPO_ID,
                              revision=args.revision or DEFAULT_REVISION, endpoint=args.endpoint)
        if args.rebuild:
            from ..release.pipeline import rebuild

            print(rebuild(args.root, recipe=args.recipe, cifar10=args.cifar10, device=args.device,
                          progress=not args.quiet).to_text())
        report = verify_build(
            args.root, release,
            em_tolerance=EMTolerance(args.em_min_identical, args.em_max_diff),
            effect=not args.no_effect, effect_epochs=args.effect_epochs, device=args.device,
        )
    print(report.to_text())
    if args.json:
        from ..store import atomic_write_json

        atomic_write_json(args.json, report.to_dict())
    return 0 if report.passed else 1


def cmd_publish(args: argparse.Namespace) -> int:
    from ..hub.client import publish_release

    sha = publish_release(args.root, args.variants, args.repo_id, tag=args.tag, endpoint=args.endpoint,
                          private=args.private)
    print(f"published {', '.join(args.variants)} to {args.repo_id} at commit {sha}"
          + (f" (tag {args.tag})" if args.tag else ""))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ..hub.client import DEFAULT_REPO_ID, DEFAULT_REVISION, fetch_variant

    folder = fetch_variant(args.root, args.variant, repo_id=args.repo_id or DEFAULT_REPO_ID,
                           revision=args.revision or DEFAULT_REVISION, endpoint=args.endpoint,
                           progress=not args.quiet)
    print(f"fetched {folder}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from ..sources.download import download_cifar10

    path = download_cifar10(args.root, progress=not args.quiet)
    print(f"CIFAR-10 archive ready: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifar10s", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cifar10s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build a variant (clean, ops, ...) from CIFAR-10")
    _variant_args(p)
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--cifar10", type=Path, default=None, help="CIFAR-10 archive or cifar-10-batches-py folder")
    p.add_argument("--download", action="store_true", help="download official CIFAR-10 if no copy is found")
    p.add_argument("--force", action="store_true", help="rebuild even if an up-to-date build exists")
    p.add_argument("--recipe", default=None, help="EM recipe (JSON file or packaged version; default v1)")
    p.add_argument("--device", default=None, help="where EM runs (default: cuda if available)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("info", help="list what is built under a root")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--json", action="store_true", help="print the manifests as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("show", help="write a PNG of clean vs perturbed images per class")
    _variant_args(p)
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("cifar10s-show.png"))
    p.add_argument("--per-class", type=int, default=4)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--amplify", type=float, default=0.0, help="also show |diff| x this factor")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("rebuild", help="rebuild every stage of a release (clean, OPS, EM, CIFAR-10-S)")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--recipe", default=None, help="recipe JSON file or packaged version (default v1)")
    p.add_argument("--cifar10", type=Path, default=None)
    p.add_argument("--download", action="store_true")
    p.add_argument("--device", default=None, help="where EM runs (default: cuda if available)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--report", type=Path, default=None, help="also write the stage report as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("verify", help="compare a build with a release; exit 1 on mismatch")
    p.add_argument("--root", type=Path, required=True, help="the build to check")
    p.add_argument("--release", type=Path, default=None, help="release data root (default: fetch from the Hub)")
    p.add_argument("--repo-id", default=None)
    p.add_argument("--revision", default=None)
    p.add_argument("--endpoint", default=None)
    p.add_argument("--rebuild", action="store_true", help="rebuild --root from --cifar10 first")
    p.add_argument("--recipe", default=None)
    p.add_argument("--cifar10", type=Path, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--em-min-identical", type=float, default=0.0,
                   help="required share of identical EM noise values (fresh GPU runs differ)")
    p.add_argument("--em-max-diff", type=int, default=16, help="allowed max |EM noise difference| (1/255)")
    p.add_argument("--no-effect", action="store_true", help="skip the short training run")
    p.add_argument("--effect-epochs", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("publish", help="publish built variants to a Hugging Face dataset repo")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--repo-id", required=True)
    p.add_argument("--variants", nargs="+", default=["clean", "ops-k1", "em", "cifar10s"])
    p.add_argument("--tag", default=None)
    p.add_argument("--endpoint", default=None)
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("fetch", help="fetch a released variant from the Hub (sha256-checked)")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--variant", default="cifar10s")
    p.add_argument("--repo-id", default=None)
    p.add_argument("--revision", default=None)
    p.add_argument("--endpoint", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("download", help="download the official CIFAR-10 archive (md5-checked)")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_download)

    from .leaderboard import register

    register(sub)  # score/submit, validate, leaderboard, baselines
    from .shuffle import register as register_shuffle

    register_shuffle(sub)  # shuffle (Table 1)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen handler; expected errors become ``error: ...`` + exit 2."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
