"""Multi-process (DDP) training through ``torchrun``.

Launch, e.g. on 4 GPUs::

    torchrun --standalone --nproc_per_node 4 -m cifar10s.cli.train \\
        --data /path/to/train.pt --model resnet18 --preset paper --workdir runs/rn18

``train`` (in :mod:`cifar10s.training.trainer`) is the same function in one process and under
``torchrun``: it asks :func:`cifar10s.runtime.current_context` whether ``torch.distributed`` is
initialised and then

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

import torch

# the collectives live in runtime.py (EM generation uses them too); re-exported for the loop
from ..runtime import all_reduce_sum, barrier, broadcast_object

__all__ = ["all_reduce_sum", "barrier", "broadcast_object", "shard_indices"]


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
