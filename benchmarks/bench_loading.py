"""CIFAR10S vs torchvision.datasets.CIFAR10: construction time and indexing throughput.

Both read the same images (the shared subset, or ``--cifar10``): torchvision from the extracted
pickles, CIFAR10S from the built ``clean`` variant. Runs side by side in one process and prints
ratios (> 1 means CIFAR10S is faster).

    python benchmarks/bench_loading.py [--cifar10 PATH] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-mini-python.tar.gz"


def timed(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar10", type=Path, default=DEFAULT_ARCHIVE)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import torchvision.datasets.cifar as tv_cifar
    from torchvision.datasets import CIFAR10

    from cifar10s import CIFAR10S
    from cifar10s.release.builders import build_variant
    from cifar10s.sources.safe_tar import safe_extract
    from cifar10s.variants import VariantSpec

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        safe_extract(args.cifar10, root)
        build_variant(root, VariantSpec("clean"), cifar10=args.cifar10, progress=False)
        official = tv_cifar.check_integrity(str(root / "cifar-10-batches-py" / "data_batch_1"),
                                            CIFAR10.train_list[0][1])
        if not official:
            # The subset's md5s differ from the official ones: torchvision still computes every md5
            # (same work as on the real data) but we ignore the verdict.
            from torchvision.datasets.utils import calculate_md5

            tv_cifar.check_integrity = lambda fpath, md5=None: bool(calculate_md5(fpath))  # type: ignore
            print("note: not the official archive; torchvision's md5s are computed but not compared")

        def tv() -> CIFAR10:
            return CIFAR10(str(root), train=True)

        tv_ds, ours = tv(), CIFAR10S(root, variant="clean")
        assert np.array_equal(np.asarray(ours.data), tv_ds.data) and ours.targets == tv_ds.targets
        n = len(ours)
        t_tv_build = timed(tv, args.repeats)
        t_ours_build = timed(lambda: CIFAR10S(root, variant="clean"), args.repeats)
        t_ours_nover = timed(lambda: CIFAR10S(root, variant="clean", verify=False), args.repeats)
        t_tv_index = timed(lambda: [tv_ds[i] for i in range(n)], args.repeats)
        t_ours_index = timed(lambda: [ours[i] for i in range(n)], args.repeats)
        ours_mem = CIFAR10S(root, variant="clean", mmap=False, verify=False)
        t_ours_mem = timed(lambda: [ours_mem[i] for i in range(n)], args.repeats)

        print(f"{n} training images, median of {args.repeats} runs")
        print(f"{'':40s} {'torchvision':>12s} {'CIFAR10S':>12s} {'ratio':>8s}")
        print(f"{'construct (with integrity check)':40s} {t_tv_build:11.3f}s {t_ours_build:11.3f}s "
              f"{t_tv_build / t_ours_build:7.2f}x")
        print(f"{'construct (verify=False)':40s} {t_tv_build:11.3f}s {t_ours_nover:11.3f}s "
              f"{t_tv_build / t_ours_nover:7.2f}x")
        print(f"{'index every item (PIL, mmap)':40s} {t_tv_index:11.3f}s {t_ours_index:11.3f}s "
              f"{t_tv_index / t_ours_index:7.2f}x")
        print(f"{'index every item (PIL, in memory)':40s} {t_tv_index:11.3f}s {t_ours_mem:11.3f}s "
              f"{t_tv_index / t_ours_mem:7.2f}x")


if __name__ == "__main__":
    main()
