"""Multi-process (DDP) training through ``torchrun``.

Launch, e.g. on 4 GPUs::

    torchrun --standalone --nproc_per_node 4 -m cifar10s.training.distributed \\
        --data /path/to/train.pt --model resnet18 --preset paper --workdir runs/rn18

``train`` (in :mod:`cifar10s.training.trainer`) is the same function in one process and under
``torchrun``: it asks :func:`current_context` whether ``torch.distributed`` is initialised and
then

* shards every epoch's on-device index permutation the way ``DistributedSampler`` does (pad the
  permutation to a multiple of the world size with its own first entries, rank ``r`` takes
  positions ``r, r + W, r + 2W, ...``); the permutation is drawn from the same seed on every rank;
* uses ``batch_size // world_size`` images per rank per step, so ``TrainConfig.batch_size`` stays
  the *global* batch (the paper's 128);
* wraps the model in ``DistributedDataParallel`` (gradients all-reduced; the PGD attack uses the
  unwrapped module, because it needs no parameter gradients and must not trigger a reduction);
* all-reduces the training loss/accuracy sums, evaluates on rank 0 and broadcasts the result, so
  every rank returns the same :class:`~cifar10s.training.trainer.TrainResult`;
* writes checkpoints and ``result.json`` from rank 0 only (all ranks read the checkpoint to resume).

BatchNorm statistics are per rank (no SyncBatchNorm), as in the authors' single-process code
each GPU sees a per-GPU batch; rank 0's buffers are the ones saved. Augmentation random draws use
a per-rank generator seeded from (seed, epoch, rank).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist

__all__ = [
    "DistContext",
    "all_reduce_sum",
    "broadcast_object",
    "barrier",
    "cleanup_distributed",
    "current_context",
    "init_distributed",
    "main",
    "shard_indices",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job (rank 0 of 1 outside ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def default_device(self) -> torch.device:
        if torch.cuda.is_available() and self.backend != "gloo":
            return torch.device("cuda", self.local_rank if self.distributed else torch.cuda.current_device())
        return torch.device("cpu")


def current_context() -> DistContext:
    """The running job's context if ``torch.distributed`` is initialised, else a single process."""
    if tdist.is_available() and tdist.is_initialized():
        return DistContext(
            rank=tdist.get_rank(),
            world_size=tdist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=str(tdist.get_backend()),
        )
    return DistContext()


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> DistContext:
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT). Backend: ``nccl`` when CUDA is available, else ``gloo``.

    Without those variables (plain ``python``) this returns a single-process context.
    """
    if tdist.is_available() and tdist.is_initialized():
        return current_context()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistContext()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    tdist.init_process_group(
        backend=backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s)
    )
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend)


def cleanup_distributed() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def shard_indices(perm: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """``DistributedSampler(drop_last=False)``'s split of one epoch's permutation.

    The permutation is padded with its own first entries to a multiple of ``world_size`` (so
    every rank runs the same number of steps) and rank ``r`` keeps every ``world_size``-th entry
    starting at ``r``.
    """
    if world_size <= 1:
        return perm
    n = perm.numel()
    total = -(-n // world_size) * world_size
    if total > n:
        reps = -(-(total - n) // n)
        perm = torch.cat([perm, perm.repeat(reps)[: total - n]])
    return perm[rank:total:world_size]


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over ranks in place (no-op in a single process). Returns ``t``."""
    if ctx.distributed:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        tdist.barrier()


# ----------------------------------------------------------------------------------------------
# torchrun entry point
# ----------------------------------------------------------------------------------------------


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
    if path.endswith(".pt"):
        d = torch.load(path, weights_only=True)
        return {k: d.get(k) for k in ("train_images", "train_labels", "test_images", "test_labels")}
    from cifar10s.sources.cifar10 import load_cifar10  # the package's CIFAR-10 reader

    ds = load_cifar10(path)
    return {
        "train_images": torch.from_numpy(ds.train_images),
        "train_labels": torch.from_numpy(ds.train_labels),
        "test_images": torch.from_numpy(ds.test_images),
        "test_labels": torch.from_numpy(ds.test_labels),
    }


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cifar10s.training.distributed",
        description="Train one model (run under torchrun for DDP; plain python for one process).",
    )
    p.add_argument("--data", required=True, help=".pt dict of uint8 tensors, or a CIFAR-10 archive/folder")
    p.add_argument("--model", default="resnet18", help="registry name (cifar10s.models) or module:function")
    p.add_argument("--model-kwargs", default="{}", help="JSON keyword arguments for the model constructor")
    p.add_argument("--preset", default="paper")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="override a TrainConfig field, e.g. --set epochs=2 --set augmentation='\"none\"'")
    p.add_argument("--workdir", default=None)
    p.add_argument("--no-eval", action="store_true", help="do not evaluate on the test pair during training")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--backend", default=None, choices=[None, "gloo", "nccl"])
    p.add_argument("--result-json", default=None, help="also write the result here (rank 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    from .presets import resolve_preset
    from .trainer import train

    args = build_arg_parser().parse_args(argv)
    ctx = init_distributed(args.backend)
    try:
        overrides: dict[str, Any] = {}
        for item in args.set:
            key, _, val = item.partition("=")
            try:
                overrides[key.replace("-", "_")] = json.loads(val)
            except json.JSONDecodeError:
                overrides[key.replace("-", "_")] = val
        kwargs = json.loads(args.model_kwargs)
        if ":" in args.model:
            model_name = args.model.split(":")[-1]
            factory = _import_object(args.model)
        else:
            from cifar10s.models import build_model

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
                from .trainer import atomic_write_text

                atomic_write_text(args.result_json, json.dumps(result.to_dict(), indent=2))
            print(json.dumps({"final_test_acc": result.final_test_acc, "world_size": ctx.world_size}))
    finally:
        cleanup_distributed()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
