"""Command-line EM generation, single process or under ``torchrun``.

    python -m cifar10s.em --data cifar-10-python.tar.gz --out em.npz --workdir out/em
    torchrun --nproc_per_node=8 -m cifar10s.em --data cifar-10-python.tar.gz --out em.npz --workdir out/em

Writes (rank 0) an ``.npz`` with ``noise`` (int8), ``perturbed`` (uint8), ``labels`` and the JSON
round log; re-running with the same ``--workdir`` resumes an interrupted run. Exit status: 0
converged, 2 ``--max-rounds`` reached first, 3 refused because the probe estimates more than an
hour on this device (``--allow-slow`` runs it anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from cifar10s.em.config import EMConfig
from cifar10s.em.errors import SlowBuildError
from cifar10s.em.generate import generate_em_noise


def _init_distributed(device: str | None) -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return False
    use_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cifar10s.em", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="CIFAR-10 python archive or extracted folder")
    p.add_argument("--out", required=True, type=Path, help="output .npz")
    p.add_argument("--workdir", type=Path, default=None, help="checkpoint/log folder (resumable)")
    p.add_argument("--mode", choices=["samplewise", "classwise"], default="samplewise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=64, help="generator width (64 = ResNet-18)")
    p.add_argument("--max-rounds", type=int, default=EMConfig.max_rounds)
    p.add_argument("--limit", type=int, default=None, help="use the first N training images")
    p.add_argument("--device", default=None)
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format on the CPU too (always used on CUDA)")
    p.add_argument("--allow-slow", action="store_true",
                   help="run even if the probe estimates more than an hour on this device")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from cifar10s.sources.cifar10 import load_cifar10

    dist = _init_distributed(args.device)
    try:
        data = load_cifar10(args.data)
        images, labels = data.train_images, data.train_labels
        if args.limit is not None:
            images, labels = images[: args.limit], labels[: args.limit]
        cfg = EMConfig(mode=args.mode, seed=args.seed, generator_width=args.width,
                       max_rounds=args.max_rounds, amp=args.amp, compile=args.compile,
                       channels_last=True if args.channels_last else None)
        try:
            result = generate_em_noise(images, labels, cfg, device=args.device, workdir=args.workdir,
                                       progress=not args.no_progress, allow_slow=args.allow_slow)
        except SlowBuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        if not dist or torch.distributed.get_rank() == 0:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            np.savez(args.out, noise=result.noise, perturbed=result.perturbed, labels=labels,
                     log=np.array(json.dumps(result.log)), config=np.array(json.dumps(cfg.to_dict())))
            print(json.dumps({"rounds": result.rounds, "converged": result.converged,
                              "final": result.log[-1] if result.log else None}))
        return 0 if result.converged else 2
    finally:
        if dist:
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
