"""Throughput of the batched augmentations vs torchvision's per-sample PIL pipeline.

Both run in this one process on the same synthetic CIFAR-sized uint8 images:

* baseline: ``transforms.Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(),
  ToTensor()])`` applied image by image to PIL images, then ``torch.stack``;
* batched: ``cifar10s.training.build_augmentation(name)`` on ``(B, 3, 32, 32)`` batches
  (the uint8 -> float conversion is timed too, as ToTensor is in the baseline).

"standard" is the like-for-like comparison; the other names are listed against the
same baseline, and "randaugment-tv" (torchvision-style RandAugment, batched) also against a
per-sample PIL pipeline with torchvision's RandAugment.  Usage::

    python benchmarks/bench_augment.py [--n 10000] [--batch 512] [--device cpu|cuda]
                                       [--threads T] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from cifar10s.training import AUGMENTATIONS, build_augmentation


def _synthetic_images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 32, 32, 3) uint8: upsampled coarse noise, roughly image-like."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 256, (n, 3, 8, 8), generator=g).float()
    x = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _best_time(fn: Callable[[], None], repeats: int, sync: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="number of images")
    ap.add_argument("--batch", type=int, default=512, help="batch size of the batched path")
    ap.add_argument("--device", default="cpu", help="device of the batched path (cpu or cuda)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is reported")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    data = _synthetic_images(args.n)
    pil_images = [Image.fromarray(a) for a in data]
    x_u8 = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous().to(device)  # stays uint8 until timed
    labels = torch.randint(0, 10, (args.n,), generator=torch.Generator().manual_seed(1)).to(device)

    baseline = transforms.Compose(
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
    )
    pil_randaugment = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.RandAugment(num_ops=2, magnitude=9),
            transforms.ToTensor(),
        ]
    )

    def run_pil(t: transforms.Compose) -> Callable[[], None]:
        def go() -> None:
            torch.stack([t(im) for im in pil_images])

        return go

    def run_batched(name: str) -> Callable[[], None]:
        aug = build_augmentation(name)
        gen = torch.Generator(device=device).manual_seed(0)

        def go() -> None:
            for s in range(0, args.n, args.batch):
                x = x_u8[s : s + args.batch].float().div_(255.0)
                aug(x, labels[s : s + args.batch], gen)

        return go

    # warm-up (first calls allocate, load kernels)
    run_pil(baseline)
    for name in AUGMENTATIONS:
        aug = build_augmentation(name)
        aug(x_u8[: args.batch].float() / 255, labels[: args.batch], torch.Generator(device=device).manual_seed(0))
    sync()

    print(
        f"torch {torch.__version__}, device={device}, threads={torch.get_num_threads()}, "
        f"n={args.n}, batch={args.batch}, best of {args.repeats}"
    )
    t_base = _best_time(run_pil(baseline), args.repeats, lambda: None)
    rate_base = args.n / t_base
    print(f"{'pipeline':52s} {'img/s':>12s} {'vs PIL crop+flip':>17s}")
    print(f"{'PIL per-sample RandomCrop+Flip+ToTensor (baseline)':52s} {rate_base:12,.0f} {1.0:16.2f}x")
    rates: dict[str, float] = {}
    for name in AUGMENTATIONS:
        rates[name] = args.n / _best_time(run_batched(name), args.repeats, sync)
        label = f"batched {name!r} on {device}"
        print(f"{label:52s} {rates[name]:12,.0f} {rates[name] / rate_base:16.2f}x")
    rate_ra = args.n / _best_time(run_pil(pil_randaugment), max(1, args.repeats - 1), lambda: None)
    print(f"{'PIL per-sample crop+flip+RandAugment(2, 9)+ToTensor':52s} {rate_ra:12,.0f} {rate_ra / rate_base:16.2f}x")
    print(f"ratio batched/PIL, crop+flip (like for like):  {rates['standard'] / rate_base:.2f}x")
    print(f"ratio batched/PIL, crop+flip+RandAugment(2, 9): {rates['randaugment-tv'] / rate_ra:.2f}x")

if __name__ == "__main__":
    main()
