"""The learnability baseline: how fast a small network learns the set.

A shortcut is easier to learn than the images: networks trained on unlearnable sets reach high
training accuracy within a few epochs, far faster than on clean data. UDP (AAAI 2024) flags a set
whose training accuracy passes 0.7. Here a small convolutional network is trained for a few epochs
(Adam, batch 64, seeded) on a class-balanced, seeded subsample of at most 4,000 images, and its
per-epoch training accuracy is reported beside the verdict with its own time; it is not one of the
findings (it needs torch and takes minutes on a busy CPU). The network keeps full resolution (two
3x3 convolutions of 16 and 32 channels) and ends in global *max* pooling, so one distinct pixel or
patch anywhere can drive a unit: with average pooling and early downsampling a first version
learned OPS, a moving patch and AR noise no faster than clean images in 4 epochs (40% each).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["NETWORK_EPOCHS", "train_network"]

NETWORK_EPOCHS = 5
#: At most this many images (class-balanced, seeded) are trained on.
NETWORK_IMAGES = 4000


def _subsample(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` indices, the same share of every class, in their original order."""
    if len(labels) <= limit:
        return np.arange(len(labels))
    keep = [rng.choice(idx, max(int(len(idx) * limit / len(labels)), 1), replace=False)
            for idx in (np.flatnonzero(labels == k) for k in np.unique(labels))]
    return np.sort(np.concatenate(keep))


def train_network(images: np.ndarray, labels: np.ndarray, num_classes: int, *, seed: int = 0,
                  epochs: int = NETWORK_EPOCHS, threshold: float = 0.7, batch_size: int = 64,
                  limit: int = NETWORK_IMAGES, progress: bool = False) -> dict[str, Any]:
    """Train the small network on (a subsample of) the set; return the per-epoch training accuracy
    (on the batches as they were seen), whether the last passes ``threshold``, and the seconds taken."""
    import torch
    from torch import nn

    t = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pick = _subsample(np.asarray(labels), limit, rng)
    images, labels = images[pick], np.asarray(labels)[pick]
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    accuracy = []
    it = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="network baseline", unit="epoch", leave=False)
    for _ in it:
        order = torch.from_numpy(rng.permutation(len(y)))
        hits = 0
        for start in range(0, len(order), batch_size):
            b = order[start:start + batch_size]
            xb = x[b].float().div_(255).sub_(0.5).div_(0.25)
            out = model(xb)
            loss = nn.functional.cross_entropy(out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            hits += int((out.argmax(1) == y[b]).sum())
        accuracy.append(round(hits / len(y), 4))
    return {"model": "2 conv (16/32, full resolution) + global max pool + linear", "images": int(len(labels)),
            "epochs": epochs, "train_accuracy": accuracy,
            "threshold": threshold, "flagged": bool(accuracy[-1] >= threshold),
            "seconds": round(time.perf_counter() - t, 1)}
