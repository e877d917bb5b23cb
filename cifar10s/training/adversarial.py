"""L-inf PGD adversarial training (Madry et al., 2018) as used in the paper's Table 4.

Paper / authors' settings: 10 steps, step size 2/255, radius eps 8/255 in [0, 1] pixel space
(``main.py``: ``--at_pgd_step``, ``--eps 8/255``, ``--alpha 2/255``, ``--at_norm linf``).

What the authors' released code shows, and what it leaves open (see docs/training.md):

* ``training.step`` calls ``model.train()`` and then ``perturb.pgd_adv(model, X, y, True, steps,
  eps, alpha, norm)``. ``pgd_adv`` itself is *not* in the public repository, so the mode the
  model is in while the attack runs cannot be checked; nothing visible switches it to eval, so the
  default here is ``bn_mode="train"`` (batch statistics, as in Madry-style PyTorch AT). Use
  ``bn_mode="eval"`` for the other common convention.
* The fourth positional argument ``True`` is read as "random start", so ``random_start=True``:
  delta ~ U(-eps, eps), then clipped so that x + delta stays in [0, 1].
* The attack is applied after the DataLoader's augmentation (crop/flip/Cutout/RandAugment), i.e.
  to the augmented batch; with Mixup the attack runs on the un-mixed batch and the adversarial
  images are then mixed (``augmentation/Mixup.py``). The trainer follows the same order.

Only the perturbation gets gradients: parameters are frozen (``requires_grad_(False)``) for the
duration of the attack and ``torch.autograd.grad`` is taken w.r.t. delta alone, so no parameter
gradient is computed or accumulated by the attack.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdversarialConfig", "frozen_parameters", "pgd_linf"]


@dataclass
class AdversarialConfig:
    """PGD adversarial-training settings (defaults: the paper's Table 4 AT)."""

    eps: float = 8 / 255
    step_size: float = 2 / 255
    steps: int = 10
    random_start: bool = True
    norm: str = "linf"
    #: model mode while the attack runs: "train" (batch-stat BN, the authors' visible call site) or "eval"
    bn_mode: str = "train"

    def __post_init__(self) -> None:
        if self.norm != "linf":
            raise ValueError(f"only the L-inf threat model is implemented, got norm={self.norm!r}")
        if self.bn_mode not in ("train", "eval"):
            raise ValueError(f"bn_mode must be 'train' or 'eval', got {self.bn_mode!r}")
        if self.steps < 0 or self.eps < 0 or self.step_size < 0:
            raise ValueError("eps, step_size and steps must be non-negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AdversarialConfig | None:
        if d is None:
            return None
        return cls(**d)


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on every parameter that had it, then restore."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[None]:
    was = model.training
    model.train(training)
    try:
        yield
    finally:
        model.train(was)


def pgd_linf(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    bn_mode: str | None = None,
    autocast_dtype: torch.dtype | None = None,
    forward: nn.Module | None = None,
) -> torch.Tensor:
    """Return adversarial images ``x_adv`` with ``|x_adv - x|_inf <= eps`` and ``x_adv in [0, 1]``.

    ``targets``: int64 class indices ``(B,)`` or soft labels ``(B, C)`` (cross-entropy with
    probabilities). ``bn_mode``: ``"train"``/``"eval"`` to force the model's mode during the
    attack, ``None`` to leave it as it is. ``forward`` is the callable used for the forward pass
    (e.g. the ``torch.compile``-d module); defaults to ``model``. The returned tensor is detached.
    """
    x = x.detach()
    fwd = model if forward is None else forward
    lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = torch.max(torch.min(x + (noise * 2 - 1) * eps, upper), lower)
    else:
        x_adv = x.clone()

    mode_ctx = contextlib.nullcontext() if bn_mode is None else _mode(model, bn_mode == "train")
    use_amp = autocast_dtype is not None  # bf16 autocast on CUDA and on the CPU alike
    with mode_ctx, frozen_parameters(model), torch.enable_grad():
        for _ in range(steps):
            # The leaf is x + delta; its gradient equals the gradient w.r.t. delta.
            x_adv.requires_grad_(True)
            with torch.autocast(x.device.type, dtype=autocast_dtype or torch.bfloat16, enabled=use_amp):
                logits = fwd(x_adv)
            loss = F.cross_entropy(logits.float(), targets, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                # projection onto {|x_adv - x| <= eps} intersected with [0, 1]
                x_adv = torch.max(torch.min(x_adv + step_size * grad.sign(), upper), lower)
    return x_adv.detach()
