"""How much the uint8 rounding rule matters: truncation (as the One-Pixel Shortcut authors' data
loader does) against this package's round-half-to-even, for the same float EM noise.

    python benchmarks/em_quantization.py --data cifar-10-python.tar.gz [--em-images 2000]

For float noise ``delta`` (a fraction of the [0, 1] range) on uint8 images ``x`` it compares

* truncation:  ``uint8(clip(x / 255 + delta, 0, 1) * 255)`` (float64 sum, cast to uint8), and
* this package: ``apply_noise(x, quantize_noise(delta, x))`` = ``x + clip(rint(255 * delta))``,

and prints, for two kinds of noise, the share of pixels where the two differ, the largest
difference, and how far each is from the float image ``255 * clip(x / 255 + delta, 0, 1)``:

1. uniform random noise in [-8/255, 8/255] on every training image (seeded);
2. the float noise of a quick sample-wise EM run (the recipe's eps 8/255 and step 0.8/255 with a
   width-4 generator on the first ``--em-images`` images), read from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from cifar10s.em import EMConfig, apply_noise, generate_em_noise, quantize_noise
from cifar10s.em import checkpoint as em_ckpt


def compare(images: np.ndarray, delta: np.ndarray) -> dict[str, float]:
    """Truncation vs round-half-to-even of ``images / 255 + delta`` (both NHWC)."""
    exact = np.clip(images / 255.0 + delta.astype(np.float64), 0.0, 1.0) * 255.0
    truncated = exact.astype(np.uint8).astype(np.int16)  # what np.uint8(...) does: toward zero
    rounded = apply_noise(images, quantize_noise(delta, images, epsilon=8)).astype(np.int16)
    diff = truncated - rounded
    return {
        "pixels": int(diff.size),
        "share_differ": float((diff != 0).mean()),
        "max_abs_diff": int(np.abs(diff).max()),
        "share_truncated_lower": float((diff < 0).mean()),
        "mean_diff": float(diff.mean()),
        "truncation_mean_abs_error": float(np.abs(truncated - exact).mean()),
        "rounding_mean_abs_error": float(np.abs(rounded - exact).mean()),
        "rounding_max_abs_error": float(np.abs(rounded - exact).max()),
        "truncated_max_abs_change": int(np.abs(truncated - images).max()),
        "share_truncated_beyond_eps": float((np.abs(truncated - images) > 8).mean()),
        "rounded_max_abs_change": int(np.abs(rounded - images).max()),
        "share_float_noise_at_eps": float((np.abs(delta) * 255 > 7.999).mean()),
    }


def em_float_noise(images: np.ndarray, labels: np.ndarray, rounds: int) -> tuple[np.ndarray, float]:
    """Float noise (NHWC) of a quick sample-wise EM run with the recipe's eps and step, and the
    generator's final accuracy on the perturbed images."""
    cfg = EMConfig(generator_width=4, batch_size=256, eval_batch_size=512, pgd_steps=10,
                   max_rounds=rounds, stop_error=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        result = generate_em_noise(images, labels, cfg, device="cpu", workdir=Path(tmp),
                                   progress=False, allow_slow=True)
        delta = em_ckpt.load_state(Path(tmp))["delta"]
    return delta.permute(0, 2, 3, 1).contiguous().numpy(), float(result.log[-1]["eval_acc"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="CIFAR-10 python archive or extracted folder")
    ap.add_argument("--em-images", type=int, default=2000)
    ap.add_argument("--em-rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from cifar10s.sources.cifar10 import load_cifar10

    data = load_cifar10(args.data)
    x = np.ascontiguousarray(data.train_images)
    y = np.asarray(data.train_labels, np.int64)
    rng = np.random.default_rng(0)
    uniform = rng.uniform(-8 / 255, 8 / 255, size=x.shape).astype(np.float32)
    out = {f"uniform noise, all {len(x)} images": compare(x, uniform)}
    n = min(args.em_images, len(x))
    em, accuracy = em_float_noise(x[:n], y[:n], args.em_rounds)
    out[f"EM noise ({args.em_rounds} rounds), first {n} images"] = {
        **compare(x[:n], em), "generator_accuracy": accuracy}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
