"""The GPU fast path's switches, decided once per run: fused optimisers, compile mode, CUDA graphs.

On a GPU a ResNet-18 step on 128 CIFAR images is short enough that launching its kernels, not
computing them, sets the pace; these are the levers against that. Each is a pure decision from
the device and the run's settings, with the reason when a lever is refused, so the caller can
record what actually ran:

* :func:`fuse_optimizer`: SGD/AdamW with ``fused=True`` (one kernel per step for all parameters
  instead of one per tensor); the same update rule, so a CPU run asked to stay unchanged keeps its
  optimizer as it is;
* :func:`cuda_graphs_support`: whether CUDA graphs (``torch.compile(mode="reduce-overhead")``)
  may be used here: a CUDA device of compute capability 7.0 or more, one process;
* :func:`compile_module`: ``torch.compile`` with that mode when graphs are allowed, else the
  default mode;
* :func:`mark_step`: tells CUDA-graph trees a new step begins (outputs of the last one are dead);
* :func:`training_fast_path`: the trainer's use of all of the above, in one decision.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["MIN_CUDA_GRAPH_CAPABILITY", "compile_module", "cuda_graphs_support", "fuse_optimizer", "mark_step",
           "training_fast_path"]

#: CUDA graphs through torch.compile need Volta or newer (cudagraph trees' own requirement).
MIN_CUDA_GRAPH_CAPABILITY = (7, 0)


def cuda_graphs_support(device: torch.device | str, *, distributed: bool = False) -> tuple[bool, str]:
    """``(allowed, reason)``: CUDA graphs only on a CUDA device of capability >= 7.0, one process."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return False, f"CUDA graphs need a CUDA device (this run is on {dev.type})"
    if not torch.cuda.is_available():
        return False, "CUDA graphs need CUDA, which torch cannot use here"
    if distributed:
        return False, "CUDA graphs are not used under torchrun (DDP's gradient hooks run on the host)"
    cap = torch.cuda.get_device_capability(dev)
    if tuple(cap) < MIN_CUDA_GRAPH_CAPABILITY:
        return False, f"CUDA graphs need compute capability >= 7.0 (this GPU: {cap[0]}.{cap[1]})"
    return True, f"CUDA graphs on compute capability {cap[0]}.{cap[1]}"


def compile_module(module: nn.Module, device: torch.device | str, *, cuda_graphs: bool,
                   distributed: bool = False) -> tuple[Any, dict[str, Any]]:
    """``torch.compile(module)``, with CUDA graphs (``reduce-overhead``) when asked and allowed.

    Returns the compiled callable and what was decided: ``{"mode": ..., "cuda_graphs": bool,
    "reason": ...}`` (the reason says why graphs were refused, if they were)."""
    use_graphs, reason = cuda_graphs_support(device, distributed=distributed) if cuda_graphs else (False, "not asked")
    mode = "reduce-overhead" if use_graphs else None
    compiled = torch.compile(module, mode=mode) if mode else torch.compile(module)
    return compiled, {"mode": mode or "default", "cuda_graphs": use_graphs, "reason": reason}


def mark_step(active: bool) -> None:
    """Start a new CUDA-graph-trees step (a no-op unless graphs are in use)."""
    if active:
        torch.compiler.cudagraph_mark_step_begin()


def fuse_optimizer(optimizer: torch.optim.Optimizer) -> tuple[torch.optim.Optimizer, bool]:
    """The same SGD or AdamW with ``fused=True`` (same hyper-parameters, param groups and state).

    Returns ``(optimizer, fused)``; anything else (another class, a submission's own optimizer,
    parameters on a device without fused kernels) comes back unchanged with ``False``."""
    cls = type(optimizer)
    if cls not in (torch.optim.SGD, torch.optim.AdamW):
        return optimizer, False
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if not params or any(not p.is_floating_point() for p in params):
        return optimizer, False
    devices = {p.device.type for p in params}
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    if len(devices) != 1 or not devices <= set(_get_fused_kernels_supported_devices()):
        return optimizer, False
    groups = [{k: v for k, v in g.items() if k not in ("fused", "foreach")} for g in optimizer.param_groups]
    try:
        fused = cls(groups, fused=True)
    except (RuntimeError, ValueError, TypeError):  # e.g. a dtype the fused kernels do not take
        return optimizer, False
    if optimizer.state:
        state = optimizer.state_dict()
        for g in state["param_groups"]:
            g["fused"], g["foreach"] = True, None
        fused.load_state_dict(state)
    return fused, True


def training_fast_path(raw: nn.Module, fwd: nn.Module, optimizer: torch.optim.Optimizer,
                       device: torch.device, *, compile: bool, deterministic: bool, distributed: bool,
                       own_optimizer: bool, own_step: bool) -> tuple[Any, Any, torch.optim.Optimizer, dict[str, Any]]:
    """The trainer's forwards and optimizer: ``(fwd, attack_fwd, optimizer, record)``.

    On a CPU, or with ``deterministic`` (the paper preset), this is exactly the plain path:
    ``torch.compile`` of the forward when ``compile``, the optimizer as built. On CUDA without
    ``deterministic``: the built-in optimizer fused, and with ``compile`` the training forward in
    CUDA graphs where :func:`cuda_graphs_support` allows (not for a submission's ``train_step``,
    which may call the forward any number of times); PGD then gets its own default-mode compile,
    so its many forwards per step never share the training step's graphs. ``record`` says what ran.
    """
    fast = device.type == "cuda" and not deterministic
    record: dict[str, Any] = {"fused_optimizer": False, "compile_mode": None, "cuda_graphs": False,
                              "cuda_graphs_reason": "not asked"}
    if fast and not own_optimizer:
        optimizer, record["fused_optimizer"] = fuse_optimizer(optimizer)
    attack_fwd: Any = raw
    if compile:
        compiled, info = compile_module(fwd, device, cuda_graphs=fast and not own_step, distributed=distributed)
        attack_fwd = torch.compile(raw) if (distributed or info["cuda_graphs"]) else compiled
        fwd = compiled
        record.update(compile_mode=info["mode"], cuda_graphs=info["cuda_graphs"], cuda_graphs_reason=info["reason"])
    return fwd, attack_fwd, optimizer, record
