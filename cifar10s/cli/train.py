"""``cifar10s train``: train one model; the same command runs multi-GPU DDP under ``torchrun``.

    torchrun --standalone --nproc_per_node 4 -m cifar10s.cli.train \\
        --data /path/to/train.pt --model resnet18 --preset paper --workdir runs/rn18
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import add_command, parse_sets, run_standalone

__all__ = ["main", "register"]

DESCRIPTION = ("Train one model on a CIFAR-10 copy (archive or folder) or a .pt dict of uint8 tensors; under "
               "torchrun the same command trains with DDP, one process per GPU. Rerunning with the same "
               "--workdir resumes.")


def _import_object(spec: str) -> Any:
    import importlib

    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"expected 'package.module:function', got {spec!r}")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _load_data(path: str) -> dict[str, Any]:
    """A ``.pt`` file (dict with ``train_images``/``train_labels`` and optionally the test pair),
    or anything :func:`cifar10s.sources.cifar10.load_cifar10` reads (archive or extracted folder)."""
    import torch

    if path.endswith(".pt"):
        d = torch.load(path, weights_only=True)
        return {k: d.get(k) for k in ("train_images", "train_labels", "test_images", "test_labels")}
    from ..sources.cifar10 import load_cifar10

    ds = load_cifar10(path)
    return {
        "train_images": torch.from_numpy(ds.train_images),
        "train_labels": torch.from_numpy(ds.train_labels),
        "test_images": torch.from_numpy(ds.test_images),
        "test_labels": torch.from_numpy(ds.test_labels),
    }


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help=".pt dict of uint8 tensors, or a CIFAR-10 archive/folder")
    p.add_argument("--model", default="resnet18", help="registry name (cifar10s.models) or module:function")
    p.add_argument("--model-kwargs", default="{}", help="JSON keyword arguments for the model constructor")
    p.add_argument("--preset", default="paper", help="paper, gpu-quick or cpu-smoke")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="override a TrainConfig field, e.g. --set epochs=2 --set augmentation='\"none\"'")
    p.add_argument("--workdir", default=None, help="checkpoint folder; rerun with the same one to resume")
    p.add_argument("--no-eval", action="store_true", help="do not evaluate on the test pair during training")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--backend", default=None, choices=[None, "gloo", "nccl"],
                   help="process-group backend under torchrun (default: nccl with CUDA, else gloo)")
    p.add_argument("--result-json", default=None, help="also write the result here (rank 0)")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..runtime import cleanup_distributed, init_distributed
    from ..training.presets import resolve_preset
    from ..training.trainer import train

    ctx = init_distributed(args.backend)
    try:
        overrides = parse_sets(args.set)
        kwargs = json.loads(args.model_kwargs)
        if ":" in args.model:
            model_name = args.model.split(":")[-1]
            factory = _import_object(args.model)
        else:
            from ..models import build_model

            model_name = args.model
            factory = lambda **kw: build_model(args.model, **kw)  # noqa: E731
        config = resolve_preset(args.preset, model_name, **overrides)
        # identical initial weights on every rank (DDP would also broadcast rank 0's)
        torch.manual_seed(config.seed)
        model = factory(**kwargs)
        data = _load_data(args.data)
        device = None
        if args.backend == "gloo" or (ctx.backend == "gloo"):
            device = torch.device("cpu")
        result = train(
            model,
            data["train_images"],
            data["train_labels"],
            None if args.no_eval else data.get("test_images"),
            None if args.no_eval else data.get("test_labels"),
            config,
            device=device,
            workdir=args.workdir,
            progress=not args.no_progress,
        )
        if ctx.is_main:
            if args.result_json:
                from ..store import atomic_write_json

                atomic_write_json(args.result_json, result.to_dict())
            print(json.dumps({"final_test_acc": result.final_test_acc, "world_size": ctx.world_size}))
    finally:
        cleanup_distributed()
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "train", "train one model on a CIFAR-10 copy or a .pt file (DDP under torchrun)",
                    DESCRIPTION, "cifar10s train --data cifar-10-python.tar.gz --model resnet18 --preset cpu-smoke")
    add_train_args(p)


def main(argv: list[str] | None = None) -> int:
    """``python -m cifar10s.cli.train`` / ``torchrun -m cifar10s.cli.train``: the same as ``cifar10s train``."""
    return run_standalone("train", DESCRIPTION, add_train_args, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
