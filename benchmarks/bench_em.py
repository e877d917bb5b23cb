"""Throughput of EM noise generation (images x PGD steps per second).

CPU (default, small config):      python benchmarks/bench_em.py
GPU, full ResNet-18 recipe:       python benchmarks/bench_em.py --device cuda --full [--data cifar-10-python.tar.gz]

Prints, for the same generator, data and batch size, run side by side in this process:

* ``batched``: this package's noise search (device-resident tensors, batched PGD, no host syncs
  inside the loop) - one search pass of the engine behind :func:`cifar10s.em.generate_em_noise`;
* ``naive``: an authors-style loop (``HanxunH/Unlearnable-Examples`` ``perturbation.py``): a
  ``DataLoader`` over float CPU tensors, the noise assembled per sample on the host and copied to
  the device per batch, a fresh leaf tensor per PGD step with a ``loss.item()`` sync, and the
  result written back per sample to a host tensor;
* with ``--amp`` also the batched search under bf16 autocast.

The three are timed interleaved (median of ``--reps``) on the same generator, after one generator
window. Then a few full rounds of ``generate_em_noise`` give seconds per round.

With ``--full`` it also prints seconds per round (generator window + search + eval) and the
projected total for a range of round counts (the stop criterion decides the real number).

``--recipes v1,v2`` instead times ``--rounds`` rounds of each recipe's EM settings (v1 float32;
v2 bf16 + TF32 + channels-last + fused SGD + search batches of 5,000) on the same images, side by
side in this process, and prints the ratio; ``--width`` / ``--pgd-steps`` / ``--batch`` shrink
both alike for a CPU (``--batch`` sets the generator batch, and v2's search batch stays as large
as the images allow)::

    python benchmarks/bench_em.py --device cuda --recipes v1,v2 --n 10000 --data gpu-data/cifar-10-mini-python.tar.gz
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from cifar10s.em import EMConfig, generate_em_noise
from cifar10s.em.run import _EMRun, em_kernel_settings
from cifar10s.runtime import DistContext


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_images(data: str | None, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Real CIFAR-10 if given (first n, tiled if the archive is smaller), else random images."""
    if data:
        from cifar10s.sources.cifar10 import load_cifar10

        d = load_cifar10(data)
        reps = -(-n // len(d.train_images))
        x = np.concatenate([d.train_images] * reps)[:n]
        y = np.concatenate([d.train_labels] * reps)[:n]
        return x, y.astype(np.int64), f"{data} ({len(d.train_images)} images, tiled to {n})" if reps > 1 else data
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64), "random uint8 images")


def naive_search(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, cfg: EMConfig,
                 device: torch.device) -> float:
    """One authors-style sample-wise search pass; returns seconds."""
    eps, step = cfg.epsilon / 255, cfg.step_size / 255
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    ds = TensorDataset(x_all, torch.from_numpy(labels))
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, drop_last=False)
    noise = torch.zeros(len(images), 3, 32, 32)  # host-resident, like the authors' random_noise
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _sync(device)
    t0 = time.perf_counter()
    idx = 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        per_sample = []
        for i in range(len(yb)):  # per-sample host assembly + copy
            mask = np.zeros((3, 32, 32), np.float32)
            mask[:] = noise[idx + i].numpy()
            per_sample.append(torch.from_numpy(mask).to(device))
        batch_noise = torch.stack(per_sample)
        p = torch.clamp(xb + batch_noise, 0, 1).requires_grad_(True)
        eta = batch_noise
        for _ in range(int(cfg.pgd_steps)):
            loss = F.cross_entropy(model(p), yb)
            loss.backward()
            _ = loss.item()  # per-step host sync, as a logging loop does
            eta = torch.clamp(p.data - step * p.grad.data.sign() - xb, -eps, eps)
            p = torch.clamp(xb + eta, 0, 1).detach().requires_grad_(True)
        for i in range(len(yb)):  # per-sample write-back to the host
            noise[idx + i] = (p.data[i] - xb[i]).cpu()
        idx += len(yb)
    _sync(device)
    return time.perf_counter() - t0


def batched_rounds(images: np.ndarray, labels: np.ndarray, cfg: EMConfig, device: torch.device,
                   rounds: int) -> list[dict]:
    cfg = EMConfig.from_dict({**cfg.to_dict(), "max_rounds": rounds, "stop_error": 0.0})
    return generate_em_noise(images, labels, cfg, device=device, progress=False, allow_slow=True).log


def search_pass_rates(images: np.ndarray, labels: np.ndarray, cfg: EMConfig, device: torch.device,
                      reps: int, naive_n: int, amp: bool, skip_naive: bool) -> dict[str, float]:
    """Median images x PGD steps / s of one noise-search pass, batched vs naive (and bf16),
    interleaved on the same generator (trained for one window) so machine noise hits both."""
    cfg = cfg.resolved()
    steps = int(cfg.pgd_steps)
    rates: dict[str, list[float]] = {"batched": [], "batched_amp": [], "naive": []}
    with em_kernel_settings(cfg, device):
        run = _EMRun(images, labels, cfg, device, DistContext())
        run._setup_forwards()
        run.train_window()
        amp_cfg = dataclasses.replace(cfg, amp=True)
        for _ in range(reps):
            for kind in ("batched", "batched_amp", "naive"):
                if kind == "batched_amp" and not amp or kind == "naive" and skip_naive:
                    continue
                run.cfg = amp_cfg if kind == "batched_amp" else cfg
                _sync(device)
                t0 = time.perf_counter()
                if kind == "naive":
                    secs = naive_search(run.model, images[:naive_n], labels[:naive_n], cfg, device)
                    rates[kind].append(naive_n * steps / secs)
                else:
                    done = run.search(progress=False)
                    _sync(device)
                    rates[kind].append(done * steps / (time.perf_counter() - t0))
        run.cfg = cfg
    return {k: float(np.median(v)) for k, v in rates.items() if v}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full", action="store_true", help="ResNet-18 width 64, 50,000 images, batch 512")
    ap.add_argument("--data", default=None, help="CIFAR-10 python archive (default: random images)")
    ap.add_argument("--n", type=int, default=None, help="images (default 512 CPU / 50000 --full)")
    ap.add_argument("--width", type=int, default=None, help="generator width (8 CPU / 64 --full)")
    ap.add_argument("--batch", type=int, default=None, help="batch (128 CPU / 512 --full)")
    ap.add_argument("--pgd-steps", type=int, default=None, help="(5 CPU / 20 --full)")
    ap.add_argument("--rounds", type=int, default=2, help="timed EM rounds (the first one warms up)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved search-pass repetitions")
    ap.add_argument("--amp", action="store_true", help="also time bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the generator")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--recipes", default=None, help="e.g. v1,v2: time each recipe's EM rounds side by side")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    full = args.full
    n = args.n or (50_000 if full else 512)
    width = args.width or (64 if full else 8)
    batch = args.batch or (512 if full else 128)
    steps = args.pgd_steps or (20 if full else 5)
    cfg = EMConfig(generator_width=width, batch_size=batch, eval_batch_size=batch, pgd_steps=steps,
                   compile=args.compile)
    images, labels, origin = load_images(args.data, n)
    out: dict = {"device": str(device), "n": n, "width": width, "batch": batch, "pgd_steps": steps,
                 "data": origin, "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    print(json.dumps(out))
    if args.recipes:
        compare_recipes(args, images, labels, device, out)
        return

    naive_n = min(n, 4 * batch) if full else n  # the naive loop is slow on GPU: time a slice
    rates = search_pass_rates(images, labels, cfg, device, args.reps, naive_n, args.amp,
                              args.skip_naive)
    out["search_img_steps_per_s"] = rates
    print(f"search pass, median of {args.reps} interleaved repetitions (images x PGD steps / s):")
    print(f"  batched (fp32) : {rates['batched']:12.1f}")
    if "batched_amp" in rates:
        out["amp_speedup"] = rates["batched_amp"] / rates["batched"]
        print(f"  batched (bf16) : {rates['batched_amp']:12.1f}   x{out['amp_speedup']:.2f} vs fp32")
    if "naive" in rates:
        out["speedup_vs_naive"] = rates["batched"] / rates["naive"]
        print(f"  naive loop     : {rates['naive']:12.1f}   ({naive_n} images)")
        print(f"  ratio batched / naive: {out['speedup_vs_naive']:.2f}x")

    log = batched_rounds(images, labels, cfg, device, args.rounds)
    last = log[-1]
    out["round_seconds"] = {k: last[k] for k in ("seconds", "seconds_train", "seconds_search",
                                                 "seconds_eval")}
    print(f"full round {last['round']} of generate_em_noise: {last['seconds']:.2f} s = generator "
          f"{last['seconds_train']:.2f} + search {last['seconds_search']:.2f} + eval "
          f"{last['seconds_eval']:.2f} ({last['images_x_pgd_steps_per_s']:.1f} images x PGD steps / s)")
    per_round = last["seconds"]
    out["projected_seconds"] = {r: per_round * r for r in (10, 20, 40)}
    print("projected total (s) for 10 / 20 / 40 rounds: "
          + " / ".join(f"{per_round * r:.0f}" for r in (10, 20, 40)))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def compare_recipes(args: argparse.Namespace, images: np.ndarray, labels: np.ndarray, device: torch.device,
                    out: dict) -> None:
    """Seconds per round of each named recipe's EM settings on the same images, in this process."""
    from cifar10s.release.recipe import load_recipe

    seconds = {}
    for version in [v.strip() for v in args.recipes.split(",") if v.strip()]:
        raw = load_recipe(version).em.to_dict()
        for key, value in (("generator_width", args.width), ("pgd_steps", args.pgd_steps),
                           ("batch_size", args.batch)):
            if value is not None:
                raw[key] = value
        if raw.get("search_batch_size"):
            raw["search_batch_size"] = min(raw["search_batch_size"], len(images))
        log = batched_rounds(images, labels, EMConfig.from_dict(raw), device, args.rounds)
        seconds[version] = log[-1]["seconds"]
        print(f"recipe {version}: round {log[-1]['round']} {log[-1]['seconds']:.2f} s "
              f"({log[-1]['images_x_pgd_steps_per_s']:.1f} images x PGD steps / s; rounds: "
              f"{[round(r['seconds'], 2) for r in log]})")
    out["recipe_round_seconds"] = seconds
    names = list(seconds)
    if len(names) >= 2:
        out["ratio"] = seconds[names[0]] / seconds[names[1]]
        print(f"ratio {names[0]} / {names[1]}: {out['ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
