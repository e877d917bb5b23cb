"""Release commands: ``rebuild``, ``verify``, ``publish``, ``export``, ``fetch``."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import Any

from .common import add_command, add_em_guard_args

__all__ = ["register"]


def _release_folders(recipe: str | None = None) -> list[str]:
    """The variant folders of a release, in build order, from the pipeline (not a literal list)."""
    from ..release.pipeline import release_stages
    from ..release.recipe import load_recipe

    return [spec.folder_name for spec in release_stages(load_recipe(recipe))]


def cmd_rebuild(args: argparse.Namespace) -> int:
    from ..release.pipeline import rebuild

    report = rebuild(args.root, recipe=args.recipe, cifar10=args.cifar10, download=args.download,
                     device=args.device, force=args.force, progress=not args.quiet,
                     allow_slow=args.allow_slow, allow_unconverged=args.allow_unconverged)
    print(report.to_text())
    if args.report:
        from ..store import atomic_write_json

        atomic_write_json(args.report, report.to_dict())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..release.verify import EMTolerance, verify_build

    with contextlib.ExitStack() as stack:
        release = args.release
        if release is None:
            from ..hub.client import DEFAULT_REPO_ID, DEFAULT_REVISION, fetch_variant

            release = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cifar10s-release-")))
            for variant in _release_folders(args.recipe):
                fetch_variant(release, variant, repo_id=args.repo_id or DEFAULT_REPO_ID,
                              revision=args.revision or DEFAULT_REVISION, endpoint=args.endpoint)
        if args.rebuild:
            from ..release.pipeline import rebuild

            print(rebuild(args.root, recipe=args.recipe, cifar10=args.cifar10, device=args.device,
                          progress=not args.quiet, allow_slow=args.allow_slow,
                          allow_unconverged=args.allow_unconverged).to_text())
        report = verify_build(
            args.root, release,
            em_tolerance=None if args.em_min_identical is None and args.em_max_diff is None else EMTolerance(
                0.0 if args.em_min_identical is None else args.em_min_identical,
                16 if args.em_max_diff is None else args.em_max_diff),
            effect=not args.no_effect, effect_epochs=args.effect_epochs, device=args.device,
        )
    print(report.to_text())
    if args.json:
        from ..store import atomic_write_json

        atomic_write_json(args.json, report.to_dict())
    return 0 if report.passed else 1


def cmd_publish(args: argparse.Namespace) -> int:
    from ..hub.client import pinning_hint, publish_release

    variants = args.variants or _release_folders()
    sha = publish_release(args.root, variants, args.repo_id, tag=args.tag, endpoint=args.endpoint,
                          private=args.private, parquet=not args.no_parquet)
    print(f"published {', '.join(variants)} to {args.repo_id} at commit {sha}"
          + (f" (tag {args.tag})" if args.tag else ""))
    print(pinning_hint(args.repo_id, sha))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..hub.client import write_release
    from ..hub.croissant import CROISSANT

    variants = args.variants or _release_folders()
    dest = write_release(args.root, variants, args.out, repo_id=args.repo_id, url=args.url)
    files = [p for p in dest.rglob("*") if p.is_file()]
    print(f"exported {', '.join(sorted(p.parent.name for p in dest.glob('*/manifest.json')))} to {dest}: {len(files)} files, "
          f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB, metadata in {dest / CROISSANT}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ..hub.client import DEFAULT_REPO_ID, DEFAULT_REVISION, fetch_variant

    folder = fetch_variant(args.root, args.variant, repo_id=args.repo_id or DEFAULT_REPO_ID,
                           revision=args.revision or DEFAULT_REVISION, endpoint=args.endpoint,
                           progress=not args.quiet)
    print(f"fetched {folder}")
    return 0


def _hub_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo-id", default=None, help="Hub dataset repository (default: the package's pinned release)")
    p.add_argument("--revision", default=None, help="commit sha or tag (default: the package's pinned revision)")
    p.add_argument("--endpoint", default=None, help="Hub endpoint (default: $HF_ENDPOINT or huggingface.co)")


def register(sub: Any) -> None:
    p = add_command(sub, "rebuild", "rebuild every stage of a release (clean, OPS, EM, CIFAR-10-S)",
                    "Rebuild the release's stages in order from CIFAR-10 with a frozen recipe. Each stage is "
                    "cached by the hash of its inputs; EM checkpoints every round and resumes after an "
                    "interruption.",
                    "cifar10s rebuild --root data --cifar10 cifar-10-python.tar.gz --device cuda")
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--recipe", default=None, help="recipe JSON file or packaged version (default: v1)")
    p.add_argument("--cifar10", type=Path, default=None, help="CIFAR-10 archive or cifar-10-batches-py folder")
    p.add_argument("--download", action="store_true", help="download the official CIFAR-10 if no copy is found")
    p.add_argument("--device", default=None, help="where EM runs (default: cuda if available)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    add_em_guard_args(p)
    p.add_argument("--report", type=Path, default=None, help="also write the stage report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_rebuild)

    p = add_command(sub, "verify", "compare a build with a release; exit 1 on mismatch",
                    "Check a local build against a release: bit for bit where the pipeline is deterministic, "
                    "within a tolerance for fresh EM noise, and by effect (a short training run on the build's "
                    "CIFAR-10-S must stay well below the same run on clean data).",
                    "cifar10s verify --root data --release release-root")
    p.add_argument("--root", type=Path, required=True, help="the build to check")
    p.add_argument("--release", type=Path, default=None, help="release data root (default: fetch it from the Hub)")
    _hub_args(p)
    p.add_argument("--rebuild", action="store_true", help="rebuild --root from --cifar10 first")
    p.add_argument("--recipe", default=None, help="recipe for --rebuild (default: v1)")
    p.add_argument("--cifar10", type=Path, default=None, help="CIFAR-10 source for --rebuild")
    p.add_argument("--device", default=None, help="where EM and the effect run (default: cuda if available)")
    add_em_guard_args(p)
    p.add_argument("--em-min-identical", type=float, default=None,
                   help="required share of identical EM noise values (fresh GPU runs differ); default: "
                        "the release recipe's stated tolerance, else 0")
    p.add_argument("--em-max-diff", type=int, default=None, help="allowed max |EM noise difference| in 1/255; "
                   "default: the release recipe's stated tolerance, else 16")
    p.add_argument("--no-effect", action="store_true", help="skip the short training run")
    p.add_argument("--effect-epochs", type=int, default=3, help="epochs of the effect check")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_verify)

    p = add_command(sub, "publish", "publish built variants to a Hugging Face dataset repository",
                    "Upload verified variant folders (and the dataset card) in one commit; prints the commit "
                    "sha to pin. An existing tag is never moved.",
                    "cifar10s publish --root data --repo-id your-org/CIFAR-10-S --tag v1")
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--repo-id", required=True, help="Hub dataset repository to publish to")
    p.add_argument("--variants", nargs="+", default=None,
                   help="variant folders to publish (default: the release's stages: clean ops-k1 em cifar10s)")
    p.add_argument("--tag", default=None, help="also create this tag (never moved once it exists)")
    p.add_argument("--endpoint", default=None, help="Hub endpoint (default: $HF_ENDPOINT or huggingface.co)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--no-parquet", action="store_true",
                   help="upload only the .npy arrays and manifests, not the Parquet copy for datasets.load_dataset")
    p.set_defaults(func=cmd_publish)

    p = add_command(sub, "export", "write a release folder (arrays, Parquet, card, croissant.json) for any host",
                    "Write into OUT exactly the files `cifar10s publish` uploads: each variant's .npy arrays and "
                    "manifest, the Parquet copy, the dataset card, and croissant.json (Croissant 1.1 metadata "
                    "with its Responsible-AI fields: every file with its sha256, one record set per variant and "
                    "split). Every variant is verified first; a variant that is not built or fails its check is "
                    "refused and nothing is left at OUT.",
                    "cifar10s export --root data --out release --variants clean ops-k1")
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--out", type=Path, required=True, help="folder to write (new, or empty)")
    p.add_argument("--variants", nargs="+", default=None,
                   help="variant folders to export, clean among them (default: the release's stages: clean "
                        "ops-k1 em cifar10s)")
    p.add_argument("--repo-id", default="cifar10s/CIFAR-10-S",
                   help="Hub repository named in the card's loading examples")
    p.add_argument("--url", default=None, help="where the copy will be published, recorded in croissant.json")
    p.set_defaults(func=cmd_export)

    p = add_command(sub, "fetch", "fetch a released variant from the Hub (sha256-checked)",
                    "Download one variant folder of a release through the Hugging Face cache, check every "
                    "file against the manifest's sha256 and install it atomically (clean/ comes along: it "
                    "holds the test split).",
                    "cifar10s fetch --variant cifar10s --root data")
    p.add_argument("--root", type=Path, required=True, help="data folder")
    p.add_argument("--variant", default="cifar10s", help="variant or folder name, e.g. cifar10s, ops-k1, clean")
    _hub_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_fetch)
