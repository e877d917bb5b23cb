"""The learnability baseline: how fast a small network learns the set.

A shortcut is easier to learn than the images: networks trained on unlearnable sets reach high
training accuracy within a few epochs, far faster than on clean data. UDP (AAAI 2024) flags a set
whose training accuracy passes 0.7. Here a small convolutional network (three 3x3 convolutions of
16/32/64 channels, global average pooling, one linear layer) is trained for a few epochs (Adam,
batch 128, seeded) and its per-epoch training accuracy is reported beside the verdict, with its
own time; it is not one of the findings (it needs torch and takes tens of seconds on a CPU).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["NETWORK_EPOCHS", "train_network"]

NETWORK_EPOCHS = 4


def train_network(images: np.ndarray, labels: np.ndarray, num_classes: int, *, seed: int = 0,
                  epochs: int = NETWORK_EPOCHS, threshold: float = 0.7, batch_size: int = 128,
                  progress: bool = False) -> dict[str, Any]:
    """Train the small network on every image; return the per-epoch training accuracy (on the
    batches as they were seen), whether the last passes ``threshold``, and the seconds taken."""
    import torch
    from torch import nn

    t = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, num_classes))
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
    return {"model": "3 conv (16/32/64) + global pool + linear", "epochs": epochs, "train_accuracy": accuracy,
            "threshold": threshold, "flagged": bool(accuracy[-1] >= threshold),
            "seconds": round(time.perf_counter() - t, 1)}
