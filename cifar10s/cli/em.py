"""``cifar10s em``: error-minimizing noise for a CIFAR-10 copy, in one process or under ``torchrun``.

    cifar10s em --data cifar-10-python.tar.gz --out em.npz --workdir out/em
    torchrun --nproc_per_node=8 -m cifar10s.cli.em --data cifar-10-python.tar.gz --out em.npz --workdir out/em

Writes (rank 0) an ``.npz`` with ``noise`` (int8), ``perturbed`` (uint8), ``labels`` and the JSON
round log; re-running with the same ``--workdir`` resumes an interrupted run. Exit status: 0
converged; 1 when ``--max-rounds`` came first (the result is still written) or on an error, e.g.
the probe estimating more than an hour on this device (``--allow-slow`` runs it anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import add_command, run_standalone

__all__ = ["main", "register"]

DESCRIPTION = ("Generate sample-wise (or class-wise) error-minimizing noise for a CIFAR-10 copy and write it "
               "as an .npz; under torchrun the noise search and the generator train with DDP. Rerunning with the "
               "same --workdir resumes.")
EXAMPLE = "cifar10s em --data cifar-10-python.tar.gz --out em.npz --workdir out/em --device cuda"


def cmd_em(args: argparse.Namespace) -> int:
    import numpy as np

    from ..em.config import EMConfig
    from ..em.generate import generate_em_noise
    from ..runtime import cleanup_distributed, init_distributed
    from ..sources.cifar10 import load_cifar10

    ctx = init_distributed()
    try:
        data = load_cifar10(args.data)
        images, labels = data.train_images, data.train_labels
        if args.limit is not None:
            images, labels = images[: args.limit], labels[: args.limit]
        rounds = {} if args.max_rounds is None else {"max_rounds": args.max_rounds}
        cfg = EMConfig(mode=args.mode, seed=args.seed, generator_width=args.width, amp=args.amp,
                       compile=args.compile, channels_last=True if args.channels_last else None, **rounds)
        result = generate_em_noise(images, labels, cfg, device=args.device, workdir=args.workdir,
                                   progress=not args.no_progress, allow_slow=args.allow_slow)
        if ctx.is_main:
            from ..store import atomic_file

            with atomic_file(args.out) as f:
                np.savez(f, noise=result.noise, perturbed=result.perturbed, labels=labels,
                         log=np.array(json.dumps(result.log)), config=np.array(json.dumps(cfg.to_dict())))
            print(json.dumps({"rounds": result.rounds, "converged": result.converged,
                              "final": result.log[-1] if result.log else None}))
        if not result.converged:
            raise RuntimeError(f"EM stopped after {result.rounds} rounds (--max-rounds) without reaching its stop "
                               f"criterion; the noise was written to {args.out} anyway")
        return 0
    finally:
        cleanup_distributed()


def add_em_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="CIFAR-10 python archive or extracted folder")
    p.add_argument("--out", required=True, type=Path, help="output .npz")
    p.add_argument("--workdir", type=Path, default=None, help="checkpoint/log folder (resumable)")
    p.add_argument("--mode", choices=["samplewise", "classwise"], default="samplewise", help="noise per image or class")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    p.add_argument("--width", type=int, default=64, help="generator width (64 = ResNet-18)")
    p.add_argument("--max-rounds", type=int, default=None,
                   help="stop after this many rounds (default: the EM config's, 500)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training images (default: all)")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format on the CPU too (always used on CUDA)")
    p.add_argument("--allow-slow", action="store_true",
                   help="run even if the probe estimates more than an hour on this device")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_em)


def register(sub: Any) -> None:
    add_em_args(add_command(sub, "em", "generate error-minimizing noise (DDP under torchrun)", DESCRIPTION, EXAMPLE))


def main(argv: list[str] | None = None) -> int:
    """``torchrun -m cifar10s.cli.em``: the same as ``cifar10s em``."""
    return run_standalone("em", DESCRIPTION, add_em_args, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
