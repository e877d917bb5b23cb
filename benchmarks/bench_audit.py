"""Timings of the shortcut audit on the CIFAR-10 subset.

1. The full audit (pixel, pattern and patch detectors plus the linear probe) of the 10,000
   training images, without and with a paired clean reference and clean test images.
2. The pixel and pattern detectors alone on 50,000 images (the subset tiled five times).

Threads follow the usual BLAS environment variables (``OMP_NUM_THREADS`` ...); the machine's load
matters, so note it with the figures.

    python benchmarks/bench_audit.py [--cifar10 PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from cifar10s.auditing import audit
from cifar10s.auditing.pattern import scan_patterns
from cifar10s.auditing.pixel import scan_pixels
from cifar10s.auditing.training_set import from_cifar10

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-mini-python.tar.gz"


def best_of(repeats: int, fn) -> float:  # noqa: ANN001 - any callable
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar10", type=Path, default=DEFAULT_ARCHIVE)
    p.add_argument("--repeats", type=int, default=3, help="runs per timing; the best is reported")
    args = p.parse_args()
    src = from_cifar10(args.cifar10)
    assert src.test is not None
    x, y = src.images, src.labels
    print(f"{len(y)} images; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    full = best_of(args.repeats, lambda: audit(x, y))
    print(f"full audit, {len(y)} images: {full:.1f} s")
    with_ref = best_of(args.repeats, lambda: audit(x, y, reference=(x, y), test=(src.test.images, src.test.labels)))
    print(f"full audit with a paired reference and {len(src.test.labels)} test images: {with_ref:.1f} s")
    reps = -(-50_000 // len(y))
    big_x = np.ascontiguousarray(np.tile(x, (reps, 1, 1, 1))[:50_000])
    big_y = np.tile(y, reps)[:50_000]
    px = best_of(args.repeats, lambda: scan_pixels(big_x, big_y, 10))
    pt = best_of(args.repeats, lambda: scan_patterns(big_x, big_y, 10))
    fast = best_of(args.repeats, lambda: audit(big_x, big_y, learnability=False))
    print(f"50,000 images: pixel detector {px:.1f} s, pattern/patch detector {pt:.1f} s, "
          f"both with the verdict (audit learnability=False) {fast:.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
