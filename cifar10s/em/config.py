"""Hyper-parameters of error-minimizing (EM) noise generation.

Every default is the value the Unlearnable Examples authors (Huang et al., ICLR 2021,
``HanxunH/Unlearnable-Examples``) used for CIFAR-10; ``docs/em.md`` lists each one with the file
it comes from. Values that differ between the sample-wise and the class-wise recipe default to
``None`` and are resolved per mode by :meth:`EMConfig.resolved`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["samplewise", "classwise"]

_MODES = ("samplewise", "classwise")

# Per-mode values of the authors' CIFAR-10 scripts (scripts/cifar10/min-min-noise/*/exp_setting.sh
# for the PGD steps; perturbation.py for the loader flags).
_MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "samplewise": {"pgd_steps": 20, "shuffle": False, "drop_last": False},
    "classwise": {"pgd_steps": 1, "shuffle": True, "drop_last": True},
}

# Fields that may change between a run and its resumption without changing the result.
RESUME_FREE_FIELDS = frozenset({"max_rounds"})

# Fields added after recipe v1 was frozen: left out of ``to_dict`` while at their "unset" value, so
# the recipe hashes (the EM stage's cache key) and the recipes recorded in built manifests stay
# the same for every config that does not use them.
_OMIT_WHEN_NONE = ("channels_last", "tf32", "search_batch_size", "fused_optimizer", "cuda_graphs")


@dataclass(frozen=True)
class EMConfig:
    """All knobs of :func:`cifar10s.em.generate_em_noise`.

    Units: ``epsilon`` and ``step_size`` are in units of 1/255 of the [0, 1] pixel range (the
    authors' command-line convention: ``--epsilon 8 --step_size 0.8``).
    """

    mode: Mode = "samplewise"
    """``"samplewise"`` (one noise per image) or ``"classwise"`` (one pattern per class)."""
    epsilon: float = 8.0
    """L-inf radius of the noise, in 1/255 units."""
    step_size: float = 0.8
    """Signed-gradient step of the noise search, in 1/255 units."""
    pgd_steps: int | None = None
    """Signed-gradient steps per batch and round; ``None``: 20 sample-wise, 1 class-wise."""
    train_steps: int = 10
    """Generator SGD steps (batches) per round."""
    batch_size: int = 512
    """Batch of the generator steps and of the noise search (the authors use one loader for both)."""
    eval_batch_size: int = 512
    """Batch of the stop-condition evaluation."""
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    """Max global L2 norm of the generator gradient (``clip_grad_norm_``)."""
    stop_error: float = 0.01
    """Stop once the generator's error on the perturbed training set is <= this."""
    max_rounds: int = 500
    """Safety cap on rounds; reaching it without meeting ``stop_error`` gives ``converged=False``."""
    shuffle: bool | None = None
    """Shuffle the generator loader each epoch; ``None``: no (sample-wise), yes (class-wise)."""
    drop_last: bool | None = None
    """Drop the last partial batch; ``None``: no (sample-wise), yes (class-wise)."""
    generator_width: int = 64
    """Width of the ResNet-18 generator (64 = the standard network; smaller for CPU tests)."""
    num_classes: int = 10
    seed: int = 0
    """Seeds the generator's initial weights and every data permutation."""
    amp: bool = False
    """bf16 autocast for the generator's forward passes (off by default; see docs/em.md)."""
    compile: bool = False
    """Wrap the generator in ``torch.compile`` (inductor; on the CPU it needs a C compiler)."""
    channels_last: bool | None = None
    """Channels-last memory format for the generator and its batches. ``None``: on CUDA only (so
    the default CPU run stays contiguous NCHW and its results do not change); ``True``: on every
    device, the CPU included; ``False``: never."""
    deterministic: bool = True
    """Turn on ``torch.use_deterministic_algorithms`` (warn-only) for the run."""
    tf32: bool | None = None
    """TF32 matrix products and convolutions on CUDA. ``None``: on exactly when ``amp`` is (v1's
    rule); recipe v2 states it."""
    search_batch_size: int | None = None
    """Images per batch of the noise search (sample-wise only). ``None``: ``batch_size``. In eval
    mode every image's gradient is its own and the step uses only its sign, so a larger batch
    changes the maths only by the kernels' rounding; it keeps a GPU busy."""
    fused_optimizer: bool | None = None
    """The generator's SGD with ``fused=True`` (one kernel for every parameter). ``None``: off."""
    cuda_graphs: bool | None = None
    """With ``compile``: ``torch.compile(mode="reduce-overhead")`` (CUDA graphs) where the device
    allows it (CUDA, compute capability >= 7.0, one process); elsewhere the default mode, and the
    result's ``extra["numerics"]`` says which ran. ``None``: off."""
    sync_bn: bool = True
    """Under torchrun on CUDA: SyncBatchNorm, so BN sees the whole 512 batch as in one process."""

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        for name in ("epsilon", "step_size", "lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("train_steps", "batch_size", "eval_batch_size", "generator_width",
                     "num_classes", "max_rounds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.pgd_steps is not None and (not isinstance(self.pgd_steps, int) or self.pgd_steps < 1):
            raise ValueError("pgd_steps must be a positive int or None")
        if not 0.0 <= self.stop_error < 1.0:
            raise ValueError("stop_error must be in [0, 1)")
        if self.epsilon >= 255:
            raise ValueError("epsilon is in 1/255 units and must be < 255")
        for name in ("amp", "compile", "deterministic", "sync_bn"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("channels_last", "tf32", "fused_optimizer", "cuda_graphs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"{name} must be true, false or null, got {value!r}")
        sb = self.search_batch_size
        if sb is not None:
            if not isinstance(sb, int) or isinstance(sb, bool) or sb < 1:
                raise ValueError(f"search_batch_size must be a positive int or null, got {sb!r}")
            if self.mode != "samplewise" or self.drop_last:
                raise ValueError("search_batch_size applies to sample-wise runs without drop_last only "
                                 "(class-wise noise and dropped batches depend on the batch)")

    def resolved(self) -> EMConfig:
        """A copy with the per-mode ``None`` defaults filled in."""
        fills = {k: v for k, v in _MODE_DEFAULTS[self.mode].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **fills)

    @property
    def epsilon_int(self) -> int:
        """The L-inf bound of the quantized noise in integer 1/255 units (floor of ``epsilon``)."""
        return int(self.epsilon + 1e-9)

    def uses_channels_last(self, device_type: str) -> bool:
        """Channels-last memory format: on CUDA by default, or as asked; never on the CPU in float32,
        where torch 2.14's backward of this generator in channels-last aborted the whole process
        (reproduced on the 2-core CI machine; docs/em.md). In bf16 (``amp``) it runs on the CPU too.
        The manifest's ``em.numerics`` records what ran."""
        wanted = device_type == "cuda" if self.channels_last is None else self.channels_last
        return bool(wanted) and not (device_type == "cpu" and not self.amp)

    def uses_tf32(self) -> bool:
        """Whether CUDA matrix products and convolutions run in TF32 (``tf32``, else ``amp``)."""
        return self.amp if self.tf32 is None else self.tf32

    def search_batch(self) -> int:
        """The noise search's batch: ``search_batch_size`` or ``batch_size``."""
        return self.search_batch_size or self.batch_size

    def numerics(self, device_type: str) -> dict[str, Any]:
        """The numerics a run of this config uses on a device of this type (recorded with its result)."""
        cuda = device_type == "cuda"
        return {"autocast": "bfloat16" if self.amp else None, "tf32": bool(self.uses_tf32() and cuda),
                "channels_last": self.uses_channels_last(device_type),
                "cudnn_deterministic": bool(self.deterministic), "fused_optimizer": bool(self.fused_optimizer),
                "search_batch_size": self.search_batch(), "compile": self.compile,
                "cuda_graphs_asked": bool(self.cuda_graphs)}

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in _OMIT_WHEN_NONE:
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown EMConfig fields: {sorted(unknown)}")
        return cls(**data)
