"""Numeric settings are pinned per run and given back: a run computes the same whatever ran before.

PyTorch keeps TF32, cuDNN autotuning and deterministic-algorithm switches process-wide. Training
used to set them and leave them set, so an EM build after a float32 training run computed in
float32 while one in a fresh process used cuDNN's TF32 default (4x apart in speed on an H100, and
different noise). The flags are plain Python switches, so the CUDA branch is checked on CPU too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cifar10s.em import generate_em_noise
from cifar10s.em.config import EMConfig
from cifar10s.runtime import kernel_settings
from cifar10s.training.config import TrainConfig
from cifar10s.training.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")


def flags() -> tuple:
    cudnn = torch.backends.cudnn
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


@pytest.fixture
def odd_flags():
    """Flags no run would choose, so a run that leaves any of them changed is caught; restored after."""
    before = flags()
    cudnn = torch.backends.cudnn
    cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = True, False, True
    torch.backends.cuda.matmul.allow_tf32 = True
    yield flags()
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before[2:]


@pytest.mark.parametrize("tf32", [False, True])
def test_cuda_settings_are_set_inside_and_restored_after(odd_flags, tf32):
    with kernel_settings(torch.device("cuda"), deterministic=True, tf32=tf32, deterministic_algorithms=True):
        det, warn, bench, cudnn_det, cudnn_tf32, mm_tf32 = flags()
        assert det and warn and not bench and cudnn_det
        assert cudnn_tf32 is tf32 and mm_tf32 is tf32  # both libraries: no cuDNN-TF32-by-default mix
    assert flags() == odd_flags


def test_settings_are_restored_when_the_run_raises(odd_flags):
    with pytest.raises(RuntimeError), kernel_settings(torch.device("cuda"), deterministic=False, tf32=False):
        assert flags()[4:] == (False, False)
        raise RuntimeError("a run that fails")
    assert flags() == odd_flags


def test_a_cpu_run_leaves_the_gpu_flags_alone(odd_flags):
    with kernel_settings(torch.device("cpu"), deterministic=True, tf32=False):
        assert flags() == odd_flags
    assert flags() == odd_flags


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10


def test_training_gives_the_process_its_flags_back(odd_flags):
    images, labels = _data()
    torch.manual_seed(0)
    train(Tiny(), images, labels, config=TrainConfig(epochs=1, batch_size=32, deterministic=True),
          device="cpu", progress=False)
    assert flags() == odd_flags


def test_an_em_run_gives_the_process_its_flags_back(odd_flags):
    images, labels = _data()
    cfg = EMConfig(generator_width=2, batch_size=32, eval_batch_size=32, pgd_steps=1, train_steps=1, max_rounds=1,
                   seed=0, deterministic=True)
    generate_em_noise(images, labels, cfg, device="cpu", progress=False)
    assert flags() == odd_flags


@pytest.mark.parametrize("amp", [False, True])
def test_training_and_em_ask_for_float32_unless_amp(monkeypatch, amp):
    import contextlib

    from cifar10s.em import run as em_run
    from cifar10s.training import trainer

    asked = []

    @contextlib.contextmanager
    def recorder(device, **kw):
        asked.append(kw)
        yield

    monkeypatch.setattr(trainer, "kernel_settings", recorder)
    monkeypatch.setattr(em_run, "kernel_settings", recorder)
    images, labels = _data()
    train(Tiny(), images, labels, config=TrainConfig(epochs=1, batch_size=32, amp=amp, deterministic=True),
          device="cpu", progress=False)
    generate_em_noise(images, labels, EMConfig(generator_width=2, batch_size=32, eval_batch_size=32, pgd_steps=1,
                                               train_steps=1, max_rounds=1, seed=0, amp=amp), device="cpu",
                      progress=False)
    assert [kw["tf32"] for kw in asked] == [amp, amp]
    assert asked[0]["deterministic"] and asked[1]["deterministic_algorithms"]
