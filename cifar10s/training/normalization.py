"""Per-channel input normalisation, an explicit training option (``TrainConfig.normalize``).

The paper's pipeline, like the authors' code, feeds images scaled to [0, 1] and nothing else;
``normalize=True`` subtracts CIFAR-10's per-channel training-set mean and divides by its standard
deviation (fixed constants below, never computed from the data at hand, so the test set cannot
leak in and every training set, clean or poisoned, is normalised the same way).

It is applied *inside the model*: :func:`attach_input_normalization` adds a small submodule with
the constants as buffers and a forward pre-hook that normalises whatever the model is called on.
So every path that calls the model sees the same inputs without knowing about the option: the
training step, PGD (which keeps attacking in [0, 1] pixel space, where its epsilon is defined),
per-epoch evaluation, and a submission's ``train_step``. The buffers are saved with the weights,
so trained weights say that they expect normalised inputs: :func:`load_weights` re-attaches the
normalisation when a weights file carries it, and a strict load without it fails loudly instead
of predicting on unnormalised inputs.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "NORMALIZATION_KEY",
    "InputNormalization",
    "attach_if_saved_with_it",
    "attach_input_normalization",
    "has_input_normalization",
    "load_weights",
]

#: per-channel (R, G, B) mean and standard deviation of the 50,000 official CIFAR-10 training
#: images scaled to [0, 1] (population statistics over all pixels)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

#: the submodule's name in the model (and so the prefix of its buffers in a state dict)
NORMALIZATION_KEY = "cifar10s_input_normalization"


class InputNormalization(nn.Module):
    """``(x - mean) / std`` per channel, for NCHW float inputs in [0, 1]."""

    def __init__(self, mean: tuple[float, ...] = CIFAR10_MEAN, std: tuple[float, ...] = CIFAR10_STD) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError("mean and std need one value per channel, std > 0")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _pre_hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    norm = getattr(module, NORMALIZATION_KEY)
    return (norm(args[0]), *args[1:])


def has_input_normalization(model: nn.Module) -> bool:
    return isinstance(getattr(model, NORMALIZATION_KEY, None), InputNormalization)


def attach_input_normalization(model: nn.Module) -> nn.Module:
    """Make ``model`` normalise its first input on every call (in place; idempotent); returns it."""
    if has_input_normalization(model):
        return model
    if hasattr(model, NORMALIZATION_KEY):
        raise ValueError(f"the model already has an attribute {NORMALIZATION_KEY!r} that is not an input normalisation")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    model.add_module(NORMALIZATION_KEY, InputNormalization().to(device))
    model.register_forward_pre_hook(_pre_hook)
    return model


def attach_if_saved_with_it(model: nn.Module, state: dict[str, Any]) -> nn.Module:
    """Attach the input normalisation if a state dict was saved from a model that had it."""
    if any(isinstance(k, str) and k.startswith(NORMALIZATION_KEY + ".") for k in state):
        attach_input_normalization(model)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a safetensors weights file strictly, first attaching the input normalisation if the
    file carries it (weights trained with ``normalize=True``). No pickle is involved."""
    from safetensors import safe_open
    from safetensors.torch import load_model

    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    if f"{NORMALIZATION_KEY}.mean" in keys or f"{NORMALIZATION_KEY}.std" in keys:
        attach_input_normalization(model)
    load_model(model, str(path), strict=True)
    return model
