"""Training throughput: the on-device loop of ``cifar10s.training.train`` vs a plain DataLoader loop.

Both sides train the same model (same initial weights, SGD lr 0.1 / momentum 0.9 / wd 5e-4,
batch 128, cross-entropy) on the same uint8 images with the paper's "standard" augmentation:

* ``on-device``: :func:`cifar10s.training.trainer.train` -- the uint8 set lives on the device,
  batches are gathered by index and augmented there (random crop 4 + flip, per image);
* ``dataloader``: ``torch.utils.data.DataLoader`` over a Dataset that turns each uint8 array into
  a PIL image and applies ``RandomCrop(32, padding=4) + RandomHorizontalFlip() + ToTensor()``
  per sample (the authors' pipeline), ``shuffle=True``, then ``.to(device)``.

Two numbers per side: the data pipeline alone (augmented batches per second delivered on the
device) and full training steps (forward + backward + SGD). Numerics are the same on both sides
(on CUDA both use bf16 autocast + channels-last when ``--amp``), so the ratio isolates the input
pipeline and loop overhead. Warm-up steps are excluded.

    python benchmarks/bench_training.py                       # CPU, resnet18 width 16
    python benchmarks/bench_training.py --device cuda --width 64 --images 10000
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cifar10s.models.resnet import resnet18  # noqa: E402
from cifar10s.training.adversarial import pgd_linf  # noqa: E402
from cifar10s.training.augment import build_augmentation  # noqa: E402
from cifar10s.training.config import TrainConfig  # noqa: E402
from cifar10s.training.trainer import train  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar-10-mini-python.tar.gz"


def load_images(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    if path.exists():
        from cifar10s.sources.cifar10 import load_cifar10  # the package's checked reader (no raw pickle)

        src = load_cifar10(path)
        x, y = src.train_images, src.train_labels.astype(np.int64)
        reps = -(-n // len(x))
        return np.ascontiguousarray(np.tile(x, (reps, 1, 1, 1))[:n]), np.tile(y, reps)[:n], str(path)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n), "synthetic"


class PILDataset(torch.utils.data.Dataset):
    """uint8 HWC arrays -> PIL -> per-sample torchvision transform (the authors' pipeline)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        from torchvision import transforms

        self.images, self.labels = images, labels
        self.transform = transforms.Compose(
            [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_dataloader(model, images, labels, device, batch, workers, steps, warmup, amp, train_model=True,
                     adversarial=False):
    """img/s of a plain loop: DataLoader + per-sample PIL crop/flip/ToTensor (+ PGD-10 if ``adversarial``)."""
    ds = PILDataset(images, labels)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
        pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )
    cuda = device.type == "cuda"
    if train_model:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        model.train()
    done, t0, n = 0, None, 0
    while done < steps + warmup:
        for x, y in loader:
            if done == warmup:
                _sync(device)
                t0, n = time.perf_counter(), 0
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cuda and amp:
                x = x.contiguous(memory_format=torch.channels_last)
            if adversarial:
                x = pgd_linf(model, x, y, steps=10, autocast_dtype=torch.bfloat16 if cuda and amp else None)
            if train_model:
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and amp):
                    out = model(x)
                loss = F.cross_entropy(out.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            n += x.shape[0]
            done += 1
            if done >= steps + warmup:
                break
    _sync(device)
    return n / (time.perf_counter() - t0)


def bench_ondevice_pipeline(images, labels, device, batch, steps, warmup):
    data = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).contiguous()
    y_all = torch.from_numpy(labels).to(device)
    aug = build_augmentation("standard")
    gen = torch.Generator(device=device).manual_seed(0)
    perm = torch.randperm(len(labels), device=device, generator=gen)
    nb = len(labels) // batch
    t0, n = None, 0
    for s in range(steps + warmup):
        if s == warmup:
            _sync(device)
            t0, n = time.perf_counter(), 0
        idx = perm[(s % nb) * batch : (s % nb + 1) * batch]
        x, t = aug(data[idx].float().div_(255), y_all[idx], gen)
        n += x.shape[0]
    _sync(device)
    return n / (time.perf_counter() - t0)


def bench_ondevice_train(model, images, labels, device, batch, amp, epochs):
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch, augmentation="standard", amp=amp, channels_last=amp,
        schedule="constant", drop_last=True, deterministic=False,
    )
    res = train(model, images, labels, config=cfg, device=device, progress=False)
    # first epoch = warm-up (allocator, cudnn autotune); report the rest
    recs = res.records[1:] or res.records
    return sum(r.images_per_sec for r in recs) / len(recs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--width", type=int, default=16, help="ResNet-18 width (64 = the paper's network)")
    p.add_argument("--images", type=int, default=2048, help="training images per epoch")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2, help="on-device epochs (the first is warm-up)")
    p.add_argument("--workers", default="0,2", help="DataLoader worker counts to try, comma separated")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="CUDA: no bf16 autocast / channels-last")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, labels, source = load_images(args.data, args.images)
    steps = max(1, args.images // args.batch)
    warmup = min(3, steps)
    torch.manual_seed(0)
    base = resnet18(width=args.width)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} cpus={os.cpu_count()} "
          f"model=resnet18(width={args.width}) images={len(labels)} ({source}) batch={args.batch} amp={args.amp}")

    print("\n[data pipeline only: augmented batches on the device]")
    ours_pipe = bench_ondevice_pipeline(images, labels, device, args.batch, steps, warmup)
    print(f"  on-device (index + float + crop/flip)    {ours_pipe:10.0f} img/s")
    for w in [int(v) for v in args.workers.split(",")]:
        dl_pipe = bench_dataloader(None, images, labels, device, args.batch, w, steps, warmup, args.amp, train_model=False)
        print(f"  DataLoader+PIL, workers={w:<2}            {dl_pipe:10.0f} img/s   ratio on-device/DataLoader = {ours_pipe / dl_pipe:.2f}x")

    print("\n[full training step: forward + backward + SGD]")
    model_a = copy.deepcopy(base).to(device)
    if device.type == "cuda" and args.amp:
        model_a = model_a.to(memory_format=torch.channels_last)
    ours = bench_ondevice_train(model_a, images, labels, device, args.batch, args.amp, args.epochs)
    print(f"  on-device train() loop                   {ours:10.0f} img/s")
    for w in [int(v) for v in args.workers.split(",")]:
        model_b = copy.deepcopy(base).to(device)
        if device.type == "cuda" and args.amp:
            model_b = model_b.to(memory_format=torch.channels_last)
        dl = bench_dataloader(model_b, images, labels, device, args.batch, w, steps, warmup, args.amp)
        print(f"  DataLoader+PIL loop, workers={w:<2}       {dl:10.0f} img/s   ratio on-device/DataLoader = {ours / dl:.2f}x")


if __name__ == "__main__":
    main()
