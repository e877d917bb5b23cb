"""Where and how a job runs: the device, the distributed context and derived seeds.

EM generation, training and scoring all ask this module, so the three agree on which device
"default" means under ``torchrun`` and on how a seed is split into independent streams.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist

#: A job estimated to take longer than this on its device needs an explicit opt-in (EM builds,
#: leaderboard training): one hour.
SLOW_RUN_SECONDS = 3600.0

__all__ = [
    "SLOW_RUN_SECONDS",
    "DistContext",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "current_context",
    "derive_seed",
    "format_duration",
    "init_distributed",
    "kernel_settings",
    "resolve_device",
]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from labelled parts, e.g. ``derive_seed(seed, epoch, "perm")``.

    Stateless: every (seed, epoch, purpose) gets its own stream, so a resumed run draws exactly
    what an uninterrupted one would have drawn.
    """
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@contextlib.contextmanager
def kernel_settings(device: torch.device, *, deterministic: bool, tf32: bool,
                    deterministic_algorithms: bool = False) -> Iterator[None]:
    """The numeric settings of one run, set for its duration and then restored.

    PyTorch keeps them process-wide, and its defaults differ by library (cuDNN convolutions in
    TF32, cuBLAS matrix products in float32), so a run that does not set them computes with
    whatever the process did last: an EM build after a float32 training run was 4x slower on an
    H100 than in a fresh process, and numerically a different build. ``tf32``: TF32 in both
    libraries (the bf16 runs), else float32 throughout. ``deterministic``: cuDNN's deterministic
    kernels without autotuning. ``deterministic_algorithms``: also
    ``torch.use_deterministic_algorithms`` (warn-only) with cuBLAS's fixed workspace.
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32)
    if deterministic_algorithms:
        if device.type == "cuda":
            # cuBLAS needs this to be deterministic; it must be set before the first handle
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda" or deterministic_algorithms:
        cudnn.deterministic = deterministic
        cudnn.benchmark = not deterministic
    if device.type == "cuda":
        cudnn.allow_tf32 = tf32
        matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32 = prev[2:]


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


def resolve_device(device: torch.device | str | None = None, ctx: DistContext | None = None) -> torch.device:
    """The device a job runs on: the one asked for, else CUDA when present, else the CPU.

    A bare ``"cuda"`` (or the default) gets an index: this process's local GPU under ``torchrun``,
    else the current one. A ``gloo`` job defaults to the CPU.
    """
    ctx = ctx if ctx is not None else current_context()
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", ctx.local_rank if ctx.distributed else torch.cuda.current_device())
        return dev
    if torch.cuda.is_available() and ctx.backend != "gloo":
        return torch.device("cuda", ctx.local_rank if ctx.distributed else torch.cuda.current_device())
    return torch.device("cpu")


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
    """Wait for every rank (no-op in a single process)."""
    if ctx.distributed:
        tdist.barrier()


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``, ``2.1 days``: a duration at the precision that matters."""
    s = max(float(seconds), 0.0)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"
