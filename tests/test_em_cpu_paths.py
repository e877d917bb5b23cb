"""EM's CUDA code paths, asked for on a CPU: bf16 autocast, channels-last and ``torch.compile``.

Each runs the EM engine on a few dozen real images with a width-4 generator; the default CPU
configuration (fp32, contiguous NCHW, eager) and the recipe's cache key are checked unchanged.
``torch.compile`` (inductor, which compiles C++ with the system compiler) is tested on a smaller
generator than the ResNet-18, whose three graphs take over a minute to compile on two cores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cifar10s.em import EMConfig, generate_em_noise
from cifar10s.em import run as em_run
from cifar10s.em.run import _EMRun
from cifar10s.release.recipe import load_recipe
from cifar10s.runtime import DistContext, derive_seed

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
SMALL = {"generator_width": 4, "batch_size": 16, "eval_batch_size": 16, "pgd_steps": 2,
         "step_size": 2.0, "train_steps": 2, "stop_error": 0.0}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(shared_arrays) -> tuple[np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(shared_arrays.train_images[:48]),
            np.asarray(shared_arrays.train_labels[:48], np.int64))


def config(**kw: object) -> EMConfig:
    return EMConfig(seed=0, max_rounds=2, **{**SMALL, **kw})


def run_em(x, y, cfg: EMConfig, workdir: Path | None = None):
    return generate_em_noise(x, y, cfg, device="cpu", progress=False, allow_slow=True, workdir=workdir)


def assert_valid(result, x: np.ndarray) -> None:
    noise = result.noise.astype(np.int16)
    assert result.noise.dtype == np.int8 and int(np.abs(noise).max()) <= 8
    assert np.array_equal(result.perturbed.astype(np.int16), x.astype(np.int16) + noise)
    assert (noise != 0).mean() > 0.5 and (noise < 0).any() and (noise > 0).any()
    assert result.rounds == 2 and all(np.isfinite(r["train_loss"]) for r in result.log)


def engine(x, y, cfg: EMConfig) -> _EMRun:
    run = _EMRun(x, y, cfg.resolved(), CPU, DistContext())
    run._setup_forwards()
    return run


def test_default_cpu_config_is_unchanged(data):
    x, y = data
    # the new field stays out of the recipe's dict while unset: cache keys and manifests unchanged
    assert "channels_last" not in EMConfig().to_dict()
    frozen = json.loads((REPO / "build" / "recipe-v1.json").read_text())["em"]
    assert load_recipe("v1").em_key == hashlib.sha256(json.dumps(frozen, sort_keys=True).encode()).hexdigest()
    assert EMConfig.from_dict(config(channels_last=True).to_dict()).channels_last is True
    with pytest.raises(TypeError, match="channels_last"):
        EMConfig(channels_last="yes")  # type: ignore[arg-type]

    run = engine(x, y, config())
    assert not run.channels_last and not run.cfg.amp and not run.cfg.compile
    assert run.model.conv1.weight.is_contiguous()
    assert run._images(torch.arange(4)).is_contiguous()
    # on the CPU the default (None) is contiguous NCHW: the same bytes as channels_last=False
    assert run_em(x, y, config()).noise.tobytes() == run_em(x, y, config(channels_last=False)).noise.tobytes()


def test_channels_last_on_cpu(data, tmp_path):
    x, y = data
    # float32 channels-last on the CPU aborted the process in torch 2.14's backward: it is not used
    assert not engine(x, y, config(channels_last=True)).channels_last
    cfg = config(channels_last=True, amp=True)  # in bf16 it runs on the CPU, end to end
    run = engine(x, y, cfg)
    assert run.channels_last
    assert run.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert run._images(torch.arange(4)).is_contiguous(memory_format=torch.channels_last)
    assert not run._images(torch.arange(4)).is_contiguous()

    full = run_em(x, y, cfg)
    assert_valid(full, x)
    assert run_em(x, y, cfg).noise.tobytes() == full.noise.tobytes()  # deterministic
    # a checkpoint reloads into the channels-last generator and resumes bit for bit
    one = EMConfig.from_dict({**cfg.to_dict(), "max_rounds": 1})
    assert run_em(x, y, one, workdir=tmp_path).rounds == 1
    resumed = run_em(x, y, cfg, workdir=tmp_path)
    assert resumed.noise.tobytes() == full.noise.tobytes()


def test_bf16_autocast_on_cpu(data):
    x, y = data
    cfg = config(amp=True)
    run = engine(x, y, cfg)
    with torch.no_grad(), run._amp():
        assert run._eval_forward(run._images(torch.arange(4))).dtype == torch.bfloat16
    with torch.no_grad():
        assert engine(x, y, config())._eval_forward(run._images(torch.arange(4))).dtype == torch.float32

    result = run_em(x, y, cfg)
    assert_valid(result, x)
    assert run_em(x, y, cfg).noise.tobytes() == result.noise.tobytes()  # deterministic
    assert result.noise.tobytes() != run_em(x, y, config()).noise.tobytes()  # bf16 did change it


def _small_generator(cfg: EMConfig) -> nn.Module:
    """Two conv blocks: compiles in seconds, where the ResNet-18's graphs take over a minute."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "small-generator"))
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, cfg.num_classes),
        )


def test_compile_on_cpu(data, monkeypatch):
    from torch._dynamo.utils import counters

    x, y = data
    monkeypatch.setattr(em_run, "build_generator", _small_generator)
    try:
        run = engine(x, y, config(compile=True))
        assert isinstance(run._eval_forward, torch._dynamo.eval_frame.OptimizedModule)
        assert isinstance(run._train_forward, torch._dynamo.eval_frame.OptimizedModule)
        graphs = counters["stats"]["unique_graphs"]
        compiled = run_em(x, y, config(compile=True))
        # generator step (train mode), PGD step (gradient to the input), evaluation (no grad)
        assert counters["stats"]["unique_graphs"] - graphs >= 3
        assert_valid(compiled, x)
        eager = run_em(x, y, config())
        same = (compiled.noise == eager.noise).mean()
        # inductor reorders float sums, so a few near-zero gradient signs may flip, no more
        assert same > 0.95, same
        assert [round(r["eval_acc"], 2) for r in compiled.log] == [round(r["eval_acc"], 2) for r in eager.log]
    finally:
        torch._dynamo.reset()
