"""Timings of the shortcut audit: 10,000 images (the CIFAR-10 subset) and 50,000 (all of CIFAR-10).

1. The full audit (pixel and isolated-pixel, pattern/patch, recurring-window, second-order
   detectors, the linear probe, per-image scores) of the subset's 10,000 training images, and with
   a paired clean reference and the 2,000 clean test images.
2. The same full audit of 50,000 images (``--full``: the full CIFAR-10 archive; otherwise the subset
   tiled five times), and each detector alone on them.
3. With ``--network``: the optional network baseline on the 10,000 images (slower, reported apart).

Every timing is also printed as a ratio to a baseline measured in the same process (one pass of
the high-pass filter over the same images, the unit of work every detector repeats), so figures
from a loaded machine can be compared. Threads follow the usual BLAS environment variables
(``OMP_NUM_THREADS`` ...); note the load average with the figures.

    python benchmarks/bench_audit.py [--cifar10 PATH] [--full PATH] [--repeats 3] [--network]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from cifar10s.auditing import audit
from cifar10s.auditing.isolated import scan_isolated
from cifar10s.auditing.pattern import high_pass, scan_patterns
from cifar10s.auditing.pixel import scan_pixels
from cifar10s.auditing.secondorder import scan_second_order
from cifar10s.auditing.training_set import from_cifar10
from cifar10s.auditing.windows import scan_windows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_ARCHIVE = DATA / "cifar-10-mini-python.tar.gz"


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
    p.add_argument("--full", type=Path, default=None, help="a 50,000-image CIFAR-10 archive (e.g. "
                   "../shared/data/cifar-10-full-python.tar.gz); default: the subset tiled five times")
    p.add_argument("--repeats", type=int, default=3, help="runs per timing; the best is reported")
    p.add_argument("--network", action="store_true", help="also time the network baseline (10,000 images)")
    args = p.parse_args()
    src = from_cifar10(args.cifar10)
    assert src.test is not None
    x, y = src.images, src.labels
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    unit = best_of(args.repeats, lambda: high_pass(x))
    full = best_of(args.repeats, lambda: audit(x, y))
    print(f"full audit, {len(y)} images: {full:.1f} s ({full / unit:.0f} x one high-pass pass of {unit:.2f} s)")
    with_ref = best_of(args.repeats, lambda: audit(x, y, reference=(x, y), test=(src.test.images, src.test.labels)))
    print(f"full audit with a paired reference and {len(src.test.labels)} test images: {with_ref:.1f} s "
          f"({with_ref / unit:.0f} x)")
    if args.network:
        t = time.perf_counter()
        r = audit(x, y, network=True)
        net = r.measurements["network"]
        print(f"with the network baseline: {time.perf_counter() - t:.1f} s (network alone {net['seconds']} s, "
              f"{net['epochs']} epochs, training accuracy {net['train_accuracy'][-1]:.3f})")

    if args.full is not None:
        big = from_cifar10(args.full)
        big_x, big_y = big.images, big.labels
        what = f"{len(big_y)} images of {args.full.name}"
    else:
        reps = -(-50_000 // len(y))
        big_x = np.ascontiguousarray(np.tile(x, (reps, 1, 1, 1))[:50_000])
        big_y = np.tile(y, reps)[:50_000]
        what = "50,000 images (the subset tiled)"
    big_unit = best_of(args.repeats, lambda: high_pass(big_x))
    big_full = best_of(max(args.repeats - 1, 1), lambda: audit(big_x, big_y))
    print(f"full audit, {what}: {big_full:.1f} s ({big_full / big_unit:.0f} x one high-pass pass of {big_unit:.2f} s)")
    k = int(big_y.max()) + 1
    parts = {"pixel": lambda: scan_pixels(big_x, big_y, k), "isolated pixel": lambda: scan_isolated(big_x, big_y, k),
             "pattern/patch": lambda: scan_patterns(big_x, big_y, k), "recurring window": lambda: scan_windows(big_x, big_y, k),
             "second-order": lambda: scan_second_order(big_x, big_y, k)}
    print("each detector alone: " + ", ".join(f"{name} {best_of(1, fn):.1f} s" for name, fn in parts.items()))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
