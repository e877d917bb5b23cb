"""One EM run as a state machine: the generator window, the noise search, evaluation, checkpoint state.

:func:`cifar10s.em.generate.generate_em_noise` drives it round by round; the time probe of
:mod:`cifar10s.em.budget` runs a small one to measure a round's cost on the actual device.
"""

from __future__ import annotations

__all__ = ["build_generator", "pgd_min", "pgd_update"]

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cifar10s.em.config import EMConfig
from cifar10s.models.resnet import resnet18
from cifar10s.runtime import DistContext, all_reduce_sum, derive_seed, kernel_settings
from cifar10s.training.accel import compile_module, fuse_optimizer, mark_step


def _derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from ``seed`` and a label: independent, stateless streams per epoch/round."""
    return derive_seed(int(seed), *parts)


def _order(n: int, seed: int, shuffle: bool, *stream: object) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator()
    g.manual_seed(_derive_seed(seed, *stream))
    return torch.randperm(n, generator=g)


def _batches(order: torch.Tensor, batch_size: int, drop_last: bool) -> list[torch.Tensor]:
    out = list(order.split(batch_size))
    if drop_last and out and len(out[-1]) < batch_size:
        out.pop()
    return out


def em_kernel_settings(cfg: EMConfig, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """An EM run's numerics, pinned for its duration: float32 unless ``cfg.amp`` (then bf16 with
    TF32, or as ``cfg.tf32`` says), deterministic kernels when ``cfg.deterministic``; the process's flags come back after."""
    return kernel_settings(device, deterministic=cfg.deterministic, tf32=cfg.uses_tf32(),
                           deterministic_algorithms=cfg.deterministic)


def build_generator(config: EMConfig) -> nn.Module:
    """The ResNet-18 generator with weights drawn from ``config.seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_derive_seed(config.seed, "generator-init"))
        return resnet18(num_classes=config.num_classes, width=config.generator_width)


def pgd_update(p: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, step_size: float,
               epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One signed step down the gradient, projected: ``(eta, p)`` with ``p = clip(x + eta, 0, 1)``."""
    eta = (p - step_size * grad.sign() - x).clamp_(-epsilon, epsilon)
    return eta, (x + eta).clamp_(0.0, 1.0)


def pgd_min(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    eta: torch.Tensor,
    *,
    epsilon: float,
    step_size: float,
    steps: int,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    update: Callable[..., tuple[torch.Tensor, torch.Tensor]] = pgd_update,
    before_forward: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Error-minimizing signed-gradient descent on a batch (``toolbox.min_min_attack``).

    Starting from ``p = clip(x + eta, 0, 1)``, each step sets
    ``eta = clamp(p - step_size * sign(grad CE), -eps, eps)`` and ``p = clip(x + eta, 0, 1)``.
    Returns ``(eta, p - x)``: the eps-projected noise (what the authors return) and the noise
    that also keeps ``x + noise`` in [0, 1] (what sample-wise runs store). ``autocast`` makes the
    context the forward pass runs in (bf16 autocast when ``EMConfig.amp``); ``update`` is
    :func:`pgd_update` or a compiled copy of it; ``before_forward`` runs before each forward pass
    (it marks a CUDA-graph step).
    """
    with torch.no_grad():
        p = (x + eta).clamp_(0.0, 1.0)
    for _ in range(steps):
        p.requires_grad_(True)
        if before_forward is not None:
            before_forward()
        with autocast():
            logits = forward(p)
        loss = F.cross_entropy(logits.float(), y)
        (grad,) = torch.autograd.grad(loss, p)
        with torch.no_grad():
            eta, p = update(p.detach(), grad, x, step_size, epsilon)
    return eta.detach(), (p - x).detach()


# --------------------------------------------------------------------------------------------
# the engine


class _EMRun:
    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        config: EMConfig,
        device: torch.device,
        dd: DistContext,
    ) -> None:
        self.cfg = config
        self.dev = device
        self.dd = dd
        self.n = int(images.shape[0])
        self.eps = config.epsilon / 255.0
        self.step = config.step_size / 255.0
        self.channels_last = config.uses_channels_last(device.type)

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        self.x_u8 = x.to(device)
        self.y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
        if config.mode == "samplewise":
            self.delta = torch.zeros(self.n, 3, 32, 32, device=device)
        else:
            self.delta = torch.zeros(config.num_classes, 3, 32, 32, device=device)

        model = build_generator(config)
        if dd.distributed and device.type == "cuda" and config.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt: torch.optim.Optimizer = torch.optim.SGD(
            self.model.parameters(), lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        fused = False
        if config.fused_optimizer:
            self.opt, fused = fuse_optimizer(self.opt)
        #: what the run actually used beyond the config (fused kernels, compile mode, CUDA graphs)
        self.accel: dict[str, Any] = {"fused_optimizer_used": fused, "compile_mode": None,
                                      "cuda_graphs_used": False, "cuda_graphs_reason": "not asked"}
        self._graphs = False
        self._update: Callable[..., tuple[torch.Tensor, torch.Tensor]] = pgd_update
        self.epoch = 0
        self.cursor = 0  # next batch of the current generator epoch
        self.round = 0
        self.converged = False
        self.log: list[dict[str, Any]] = []
        self._train_forward: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._eval_forward: Callable[[torch.Tensor], torch.Tensor] | None = None

    # --- forwards (built lazily so a checkpoint can be loaded into the raw module first)
    def _setup_forwards(self) -> None:
        train_module: nn.Module = self.model
        if self.dd.distributed:
            # BN buffers are not broadcast before each forward: they are reconciled after each
            # window instead (SyncBatchNorm keeps them equal; plain BN gets them averaged).
            import inspect

            from torch.nn.parallel import DistributedDataParallel as DDP

            params = inspect.signature(DDP.__init__).parameters
            no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
                       else {"broadcast_buffers": False})
            train_module = DDP(
                self.model,
                device_ids=[self.dev.index] if self.dev.type == "cuda" else None,
                **no_sync,
            )
        self._ddp_module = train_module
        if self.cfg.compile:
            graphs = bool(self.cfg.cuda_graphs)
            self._train_forward, info = compile_module(train_module, self.dev, cuda_graphs=graphs,
                                                       distributed=self.dd.distributed)
            self._eval_forward, _ = compile_module(self.model, self.dev, cuda_graphs=graphs,
                                                   distributed=self.dd.distributed)
            self._update = torch.compile(pgd_update)
            self._graphs = bool(info["cuda_graphs"])
            self.accel.update(compile_mode=info["mode"], cuda_graphs_used=self._graphs,
                              cuda_graphs_reason=info["reason"])
        else:
            self._train_forward = train_module
            self._eval_forward = self.model

    def _amp(self) -> contextlib.AbstractContextManager[Any]:
        if self.cfg.amp:
            return torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _images(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.x_u8[idx].float().div_(255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _noise_for(self, idx: torch.Tensor) -> torch.Tensor:
        noise = self.delta[idx] if self.cfg.mode == "samplewise" else self.delta[self.y[idx]]
        return noise.contiguous(memory_format=torch.channels_last) if self.channels_last else noise

    def _step_begins(self) -> None:
        mark_step(self._graphs)

    def _set_requires_grad(self, flag: bool) -> None:
        for p in self.model.parameters():
            p.requires_grad_(flag)

    # --- state
    def state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "round": self.round,
            "converged": self.converged,
            "epoch": self.epoch,
            "cursor": self.cursor,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "delta": self.delta.detach().cpu(),
            "log": list(self.log),
            "world_size": self.dd.world_size,
            "torch_version": str(torch.__version__),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt.load_state_dict(state["optimizer"])
        delta = state["delta"]
        if tuple(delta.shape) != tuple(self.delta.shape):
            raise ValueError(f"checkpoint noise shape {tuple(delta.shape)} != {tuple(self.delta.shape)}")
        self.delta = delta.to(self.dev, dtype=torch.float32).clone()
        self.round = int(state["round"])
        self.converged = bool(state["converged"])
        self.epoch = int(state["epoch"])
        self.cursor = int(state["cursor"])
        self.log = [dict(r) for r in state["log"]]

    # --- the three phases of a round
    def _epoch_batches(self) -> list[torch.Tensor]:
        order = _order(self.n, self.cfg.seed, bool(self.cfg.shuffle), "train", self.epoch)
        return _batches(order, self.cfg.batch_size, bool(self.cfg.drop_last))

    def train_window(self, progress: bool = False) -> dict[str, float]:
        from tqdm.auto import tqdm

        cfg = self.cfg
        assert self._train_forward is not None
        self.model.train()
        self._set_requires_grad(True)
        batches = self._epoch_batches()
        loss_sum = torch.zeros((), device=self.dev, dtype=torch.float64)
        correct = torch.zeros((), device=self.dev, dtype=torch.float64)
        count = 0
        steps = tqdm(range(cfg.train_steps), desc=f"round {self.round + 1} generator", leave=False,
                     disable=not progress, unit="step")
        for _ in steps:
            if self.cursor >= len(batches):  # epoch exhausted: the authors re-create the iterator
                self.epoch += 1
                self.cursor = 0
                batches = self._epoch_batches()
                if not batches:
                    raise ValueError("batch_size larger than the data set with drop_last=True")
            idx = batches[self.cursor]
            self.cursor += 1
            if self.dd.world_size > 1:
                idx = torch.tensor_split(idx, self.dd.world_size)[self.dd.rank]
            idx = idx.to(self.dev)
            y = self.y[idx]
            xb = (self._images(idx) + self._noise_for(idx)).clamp_(0.0, 1.0)
            self._step_begins()
            with self._amp():
                logits = self._train_forward(xb)
            loss = F.cross_entropy(logits.float(), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.opt.step()
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(idx)
                correct += (logits.argmax(1) == y).sum().double()
            count += len(idx)
        stats = torch.stack([loss_sum, correct, torch.tensor(float(count), device=self.dev,
                                                              dtype=torch.float64)])
        all_reduce_sum(stats, self.dd)
        if self.dd.world_size > 1 and not (self.dev.type == "cuda" and cfg.sync_bn):
            # Plain BN under DDP saw only this rank's shard: average the running statistics so every
            # rank searches the noise with the same frozen generator.
            for buf in self.model.buffers():
                if buf.is_floating_point():
                    all_reduce_sum(buf.data, self.dd)
                    buf.data.div_(self.dd.world_size)
        loss_v, correct_v, count_v = stats.tolist()
        return {"train_loss": loss_v / count_v, "train_acc": correct_v / count_v}

    def search(self, progress: bool) -> int:
        """One pass of the noise search; returns the number of images it processed (all ranks)."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        assert self._eval_forward is not None
        self.model.eval()
        self._set_requires_grad(False)
        order = _order(self.n, cfg.seed, bool(cfg.shuffle), "search", self.round)
        batches = _batches(order, cfg.search_batch(), bool(cfg.drop_last))
        processed = sum(len(b) for b in batches)
        sharded = cfg.mode == "samplewise" and self.dd.world_size > 1
        new = torch.zeros_like(self.delta) if sharded else self.delta
        bar = tqdm(total=len(batches), desc=f"round {self.round + 1} noise search", leave=False,
                   disable=not progress, unit="batch")
        kw = dict(epsilon=self.eps, step_size=self.step, steps=int(cfg.pgd_steps), autocast=self._amp,
                  update=self._update, before_forward=self._step_begins if self._graphs else None)
        try:
            for b, idx in enumerate(batches):
                if sharded and b % self.dd.world_size != self.dd.rank:
                    bar.update(1)
                    continue
                idx = idx.to(self.dev)
                x, y = self._images(idx), self.y[idx]
                if cfg.mode == "samplewise":
                    _, eff = pgd_min(self._eval_forward, x, y, self._noise_for(idx), **kw)
                    new[idx] = eff
                else:
                    eta, _ = pgd_min(self._eval_forward, x, y, self.delta[y], **kw)
                    onehot = F.one_hot(y, cfg.num_classes).to(eta.dtype)  # (B, C)
                    sums = onehot.t() @ eta.reshape(len(idx), -1)  # (C, 3*32*32)
                    counts = onehot.sum(0)
                    mean = (sums / counts.clamp_min(1.0)[:, None]).view_as(self.delta)
                    present = (counts > 0).view(-1, 1, 1, 1)
                    self.delta = torch.where(present, mean, self.delta).clamp_(-self.eps, self.eps)
                bar.update(1)
        finally:
            bar.close()
        if sharded:
            # each sample was updated by exactly one rank; the others contribute exact zeros
            self.delta = all_reduce_sum(new, self.dd)
        return processed

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        cfg = self.cfg
        assert self._eval_forward is not None
        self.model.eval()
        loss_sum = torch.zeros((), device=self.dev, dtype=torch.float64)
        correct = torch.zeros((), device=self.dev, dtype=torch.float64)
        for b, idx in enumerate(torch.arange(self.n).split(cfg.eval_batch_size)):
            if b % self.dd.world_size != self.dd.rank:
                continue
            idx = idx.to(self.dev)
            y = self.y[idx]
            xb = (self._images(idx) + self._noise_for(idx)).clamp_(0.0, 1.0)
            self._step_begins()
            with self._amp():
                logits = self._eval_forward(xb)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum().double()
        stats = all_reduce_sum(torch.stack([loss_sum, correct]), self.dd)
        loss_v, correct_v = stats.tolist()
        acc = correct_v / self.n
        return {"eval_loss": loss_v / self.n, "eval_acc": acc, "eval_error": 1.0 - acc}

    def noise_stats(self) -> dict[str, float]:
        d = self.delta
        return {
            "noise_linf_255": float(d.abs().max()) * 255.0,
            "noise_mean_abs_255": float(d.abs().mean()) * 255.0,
        }

    def float_noise_nhwc(self) -> np.ndarray:
        return self.delta.detach().permute(0, 2, 3, 1).contiguous().cpu().numpy()


# --------------------------------------------------------------------------------------------
# public entry point
