"""The GPU code paths (bf16 autocast, channels-last, torch.compile) run on the CPU too.

A typo or a dtype error in them must fail CI here, not the first GPU run. Small models, few steps.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifar10s.training.adversarial import pgd_linf
from cifar10s.training.config import TrainConfig
from cifar10s.training.evaluation import evaluate, predict_logits
from cifar10s.training.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (96, 32, 32, 3), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (96,), generator=g)
    return x, y


@pytest.mark.parametrize("amp,channels_last", [(True, False), (False, True), (True, True)],
                         ids=["bf16", "channels-last", "bf16+channels-last"])
def test_training_takes_the_fast_paths_on_cpu(batch, amp, channels_last):
    x, y = batch
    torch.manual_seed(0)
    model = Small()
    seen = {}

    def spy(module, inputs, output):
        seen["dtype"] = output.dtype
        seen["channels_last"] = inputs[0].is_contiguous(memory_format=torch.channels_last)

    model.body[0].register_forward_hook(spy)
    cfg = TrainConfig(epochs=1, batch_size=32, amp=amp, channels_last=channels_last, augmentation="standard",
                      seed=1)
    res = train(model, x, y, config=cfg, device="cpu", progress=False)
    assert res.completed and torch.isfinite(torch.tensor(res.records[0].train_loss))
    assert seen["dtype"] == (torch.bfloat16 if amp else torch.float32)
    assert seen["channels_last"] is channels_last
    assert res.precision == {"autocast": "bfloat16" if amp else None, "tf32": False,
                             "channels_last": channels_last, "compiled": False}
    assert model.body[0].weight.dtype == torch.float32  # master weights stay float32


def test_paper_precision_is_recorded_as_a_difference(batch):
    from cifar10s.training.presets import diff_from_paper, paper_config

    paper = paper_config("resnet18")
    assert paper.amp is False and paper.channels_last is False
    fast = paper.replace(amp=True)
    assert diff_from_paper(fast, "resnet18")["amp"] == {"paper": False, "used": True}


def test_adversarial_training_with_bf16_on_cpu(batch):
    from cifar10s.training.adversarial import AdversarialConfig

    x, y = batch
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=1, batch_size=32, amp=True, channels_last=True, seed=2,
                      adversarial=AdversarialConfig(steps=2))
    res = train(Small(), x, y, config=cfg, device="cpu", progress=False)
    assert res.completed and res.records[0].train_acc is not None


def test_pgd_runs_under_cpu_autocast_and_stays_in_the_ball(batch):
    x, y = batch
    torch.manual_seed(0)
    model = Small().eval()
    xf = x[:16].permute(0, 3, 1, 2).float().div(255).contiguous(memory_format=torch.channels_last)
    dtypes = []
    model.body[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    adv = pgd_linf(model, xf, y[:16], eps=8 / 255, step_size=2 / 255, steps=3,
                   generator=torch.Generator().manual_seed(0), autocast_dtype=torch.bfloat16)
    assert set(dtypes) == {torch.bfloat16}
    assert adv.dtype == torch.float32
    assert (adv - xf).abs().max() <= 8 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_evaluation_paths_agree_on_cpu(batch):
    x, y = batch
    torch.manual_seed(0)
    model = Small().eval()
    plain = evaluate(model, x, y, device="cpu")
    assert evaluate(model, x, y, device="cpu", channels_last=True) == pytest.approx(plain, abs=1e-9)
    bf16 = evaluate(model, x, y, device="cpu", amp=True)
    assert 0.0 <= bf16 <= 1.0
    logits = predict_logits(model, x, "cpu", amp=True, channels_last=True)
    assert logits.dtype == torch.float32 and logits.shape == (96, 10)


@pytest.mark.slow
def test_compiled_training_on_cpu(batch):
    """``compile=True`` goes through torch.compile (inductor, C++ codegen with the system compiler)."""
    x, y = batch
    torch.manual_seed(0)
    model = Small()
    cfg = TrainConfig(epochs=1, batch_size=48, compile=True, seed=3, augmentation="none")
    res = train(model, x[:96], y[:96], config=cfg, device="cpu", progress=False)
    assert res.completed and res.precision["compiled"] is True
    assert torch.isfinite(torch.tensor(res.records[0].train_loss))
