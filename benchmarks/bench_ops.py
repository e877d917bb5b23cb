"""OPS search on 50,000 images: the vectorized search vs a slow literal reference.

The reference is the authors' per-candidate loop (8,192 candidates x 10 classes, each a numpy
pass over the class's images); by default it runs on ``--reference-classes`` classes and is
scaled to 10 (every class costs the same), so the benchmark stays short. Both run in this process
on the same data: the real shared CIFAR-10 subset tiled to 50,000 images (5,000 per class), or
random images with ``--random``.

    python benchmarks/bench_ops.py [--cifar10 PATH] [--reference-classes 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cifar10s.onepixel import CORNER_COLOURS, search_shortcuts

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-mini-python.tar.gz"


def reference_class_scores(x: np.ndarray) -> np.ndarray:
    """The authors' loop for one class: score every (pixel, colour) one numpy pass at a time."""
    x = x.astype(np.float64) / 255
    _, h, w, _ = x.shape
    scores = np.zeros((h * w, 8))
    for p in range(h * w):
        pix = x[:, p // w, p % w, :]
        for v in range(8):
            d = np.abs(CORNER_COLOURS[v] - pix)
            scores[p, v] = d.mean() / d.std()
    return scores


def load_images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    if args.random:
        rng = np.random.default_rng(0)
        return (rng.integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8), np.repeat(np.arange(10), 5000),
                "random uint8 images")
    from cifar10s.sources.cifar10 import load_cifar10

    src = load_cifar10(args.cifar10)
    reps = -(-50_000 // len(src.train_labels))
    x = np.concatenate([src.train_images] * reps)[:50_000]
    y = np.concatenate([src.train_labels] * reps)[:50_000]
    return x, y, f"{args.cifar10.name} tiled x{reps}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar10", type=Path, default=DEFAULT_ARCHIVE)
    ap.add_argument("--random", action="store_true")
    ap.add_argument("--reference-classes", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    x, y, what = load_images(args)
    print(f"data: {len(y)} images ({what}), {np.bincount(y).min()} per class")

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fast = search_shortcuts(x, y)
        times.append(time.perf_counter() - t0)
    fast_s = min(times)
    print(f"vectorized search, 10 classes: best {fast_s:.3f} s, median {np.median(times):.3f} s "
          f"over {args.repeats} runs")

    t0 = time.perf_counter()
    for label in range(args.reference_classes):
        scores = reference_class_scores(x[y == label])
        p, v = divmod(int(np.argmax(scores)), 8)
        s = fast.for_class(label)[0]
        assert (p // 32, p % 32, tuple(255 * CORNER_COLOURS[v])) == (s.row, s.col, s.colour), "mismatch!"
    ref_s = (time.perf_counter() - t0) * 10 / args.reference_classes
    print(f"reference loop: {ref_s:.1f} s for 10 classes (measured on {args.reference_classes}, scaled)")
    print(f"speed-up: {ref_s / fast_s:.0f}x  (same pixels and colours chosen)")


if __name__ == "__main__":
    main()
