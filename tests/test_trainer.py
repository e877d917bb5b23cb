"""Training loop: learning, PGD, resumption, presets/schedules, evaluation and DDP (CPU only).

Everything runs on CPU with one intra-op thread and tiny models on a subset of the real CIFAR-10
subset in ../shared/data, so the whole file stays well under a few minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cifar10s.training.adversarial import AdversarialConfig, pgd_linf
from cifar10s.training.distributed import shard_indices
from cifar10s.training.optim import build_optimizer, lr_at_epoch
from cifar10s.training.presets import (
    METHODS,
    PRESETS,
    diff_from_paper,
    paper_config,
    paper_method,
    resolve_preset,
)
from cifar10s.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from cifar10s.training.config import TrainConfig, TrainResult
from cifar10s.training.evaluation import Evaluator, evaluate
from cifar10s.training.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
TIMING_FIELDS = {"train_time", "eval_time", "images_per_sec", "elapsed"}


class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _tiny(width: int = 16, seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN(width=width)


@pytest.fixture(scope="module")
def data(shared_archive):
    from cifar10s.sources.cifar10 import load_cifar10

    ds = load_cifar10(shared_archive)
    return ds.train_images, ds.train_labels, ds.test_images, ds.test_labels


# ----------------------------------------------------------------------------------------------
# learning
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_short_run_learns_and_records(data, tmp_path):
    x, y, xt, yt = data
    cfg = resolve_preset("cpu-smoke", "resnet18", epochs=3, train_subset=2000, eval_subset=1000)
    result = train(_tiny(), x, y, xt, yt, cfg, workdir=tmp_path, progress=False)

    assert result.completed and len(result.records) == 3 and result.num_train == 2000
    first, last = result.records[0], result.records[-1]
    assert last.train_loss < first.train_loss
    assert last.train_acc > 0.25, f"train accuracy {last.train_acc:.3f} is not clearly above chance (0.10)"
    assert result.final_test_acc is not None and result.final_test_acc > 0.18
    assert result.best_test_acc >= result.final_test_acc
    assert result.best_epoch in {1, 2, 3}
    # ||theta - theta_0|| is positive and grows while training
    assert 0 < first.param_distance < last.param_distance
    # x0.1 at epoch indices ceil(3/2) = 2 and ceil(3*3/4) = 3 (never reached)
    assert [r.lr for r in result.records] == pytest.approx([0.1, 0.1, 0.01])
    # the result records its preset and every difference from the paper's settings
    assert result.preset == "cpu-smoke"
    assert result.preset_diff["epochs"] == {"paper": 200, "used": 3}
    assert result.preset_diff["batch_size"] == {"paper": 128, "used": 64}
    # JSON round trip, and the files in the workdir
    again = TrainResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    assert TrainResult.load(tmp_path / "result.json").final_test_acc == result.final_test_acc
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    model = TinyCNN()
    model.load_state_dict(state)
    assert Evaluator(xt, yt, subset=1000)(model) == result.final_test_acc
    assert evaluate(model, xt, yt, "cpu", batch_size=300) == Evaluator(xt, yt)(model)


def test_train_without_test_data_and_with_defense(data):
    x, y, _, _ = data
    cfg = TrainConfig(epochs=1, batch_size=32, augmentation="cutout", defense="bitdepth",
                      defense_kwargs={"bits": 3}, train_subset=96)
    result = train(_tiny(width=4), x, y, config=cfg, progress=False)
    assert result.records[0].test_acc is None and result.final_test_acc is None
    assert result.best_epoch is None
    assert math.isfinite(result.records[0].train_loss)
    assert result.preset_diff["defense"] == {"paper": None, "used": "bitdepth"}


def test_evaluate_counts_and_restores_mode():
    class Const(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            out = torch.zeros(x.shape[0], 10) + self.w
            out[:, 3] += 1
            return out

    imgs = np.zeros((50, 32, 32, 3), np.uint8)
    labels = np.arange(50) % 10
    m = Const().train()
    assert evaluate(m, imgs, labels, "cpu", batch_size=7) == pytest.approx(0.1)
    assert m.training


# ----------------------------------------------------------------------------------------------
# PGD
# ----------------------------------------------------------------------------------------------


def test_pgd_within_budget_increases_loss_and_touches_only_delta(data):
    x_np, y_np, _, _ = data
    x = torch.from_numpy(x_np[:32]).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(y_np[:32]).long()
    model = _tiny(width=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(40):  # fit the batch so the loss surface is not flat
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    eps = 8 / 255
    g = torch.Generator().manual_seed(0)
    x_adv = pgd_linf(model, x, y, eps=eps, step_size=2 / 255, steps=10, generator=g, bn_mode="eval")

    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > eps / 2  # it actually moved
    with torch.no_grad():
        clean, adv = F.cross_entropy(model(x), y), F.cross_entropy(model(x_adv), y)
    assert adv > clean + 1.0, (float(clean), float(adv))  # measured: 1.14 -> 3.96
    with torch.no_grad():  # and far more than random noise of the same size
        noise = (torch.rand(x.shape, generator=g) * 2 - 1) * eps
        assert adv > F.cross_entropy(model((x + noise).clamp(0, 1)), y) + 1.0
    # gradients were taken w.r.t. the perturbation only; parameters untouched and re-enabled
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert not model.training and not x_adv.requires_grad
    # "train" BN mode is honoured and the caller's mode restored
    model.eval()
    pgd_linf(model, x, y, steps=1, generator=g, bn_mode="train")
    assert not model.training
    # soft targets work too; steps=0 without random start is the identity
    soft = F.one_hot(y, 10).float()
    assert torch.equal(pgd_linf(model, x, soft, steps=0, random_start=False), x)


# ----------------------------------------------------------------------------------------------
# checkpoints and resumption
# ----------------------------------------------------------------------------------------------


class _Interrupt(RuntimeError):
    pass


@pytest.mark.slow
def test_resume_is_bitwise_identical(data, tmp_path):
    x, y, xt, yt = data
    # AT + crop/flip + Mixup exercises the most RNG paths (crop/flip, Mixup partner & lambda, PGD random start)
    cfg = TrainConfig(epochs=3, batch_size=64, train_subset=320, augmentation="standard+mixup",
                      adversarial=AdversarialConfig(steps=2), seed=7)
    evaluator = Evaluator(xt, yt, subset=200)

    ref_model = _tiny(width=8)
    ref = train(ref_model, x, y, config=cfg, workdir=tmp_path / "a", progress=False, evaluator=evaluator)

    # 1) killed in the middle of epoch 2 (before its checkpoint): redo epoch 2 from checkpoint 1
    calls = {"n": 0}

    def flaky(model):
        calls["n"] += 1
        if calls["n"] == 2:
            raise _Interrupt("simulated crash")
        return evaluator(model)

    with pytest.raises(_Interrupt):
        train(_tiny(width=8), x, y, config=cfg, workdir=tmp_path / "b", progress=False, evaluator=flaky)
    ckpt = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)  # weights_only=True
    assert ckpt["epoch"] == 1 and len(ckpt["records"]) == 1
    resumed_model = _tiny(width=8, seed=123)  # different init: everything must come from the checkpoint
    resumed = train(resumed_model, x, y, config=cfg, workdir=tmp_path / "b", progress=False, evaluator=evaluator)
    assert resumed.resumed_from_epoch == 1

    # 2) stopped cleanly after epoch 2 by the callback, then resumed
    stopped = train(_tiny(width=8), x, y, config=cfg, workdir=tmp_path / "c", progress=False,
                    evaluator=evaluator, callback=lambda rec, m: rec.epoch == 2)
    assert not stopped.completed and len(stopped.records) == 2
    resumed_c_model = _tiny(width=8, seed=5)
    resumed_c = train(resumed_c_model, x, y, config=cfg, workdir=tmp_path / "c", progress=False,
                      evaluator=evaluator)
    assert resumed_c.completed and resumed_c.resumed_from_epoch == 2

    ref_state = ref_model.state_dict()
    for other in (resumed_model, resumed_c_model):
        state = other.state_dict()
        assert state.keys() == ref_state.keys()
        for k in ref_state:
            assert torch.equal(state[k], ref_state[k]), k
    strip = lambda res: [{k: v for k, v in r.to_dict().items() if k not in TIMING_FIELDS} for r in res.records]  # noqa: E731
    assert strip(resumed) == strip(ref) == strip(resumed_c)
    # a different configuration must not silently resume from this workdir
    with pytest.raises(ValueError, match="different training configuration"):
        train(_tiny(width=8), x, y, config=cfg.replace(lr=0.05), workdir=tmp_path / "a", progress=False)


# ----------------------------------------------------------------------------------------------
# presets, optimisers, schedules
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "lenet5", "densenet121", "wrn28-10"])
def test_paper_preset_cnn(name):
    cfg = resolve_preset("paper", name)
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay) == ("sgd", 0.1, 0.9, 5e-4)
    assert cfg.schedule == "multistep" and cfg.milestones == (0.5, 0.75) and cfg.gamma == 0.1
    assert cfg.epochs == 200 and cfg.augmentation == "standard" and cfg.adversarial is None
    assert cfg.batch_size == (64 if name == "wrn28-10" else 128)
    assert diff_from_paper(cfg) == {}
    opt = build_optimizer(nn.Linear(2, 2), cfg)
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.9


@pytest.mark.parametrize("name", ["cct7-3x1", "cvt7-4"])
def test_paper_preset_transformer(name):
    cfg = resolve_preset("paper", name)
    assert (cfg.optimizer, cfg.lr, cfg.betas, cfg.weight_decay) == ("adamw", 5e-4, (0.9, 0.999), 3e-2)
    assert cfg.schedule == "cosine" and cfg.warmup_epochs == 0 and cfg.batch_size == 128
    opt = build_optimizer(nn.Linear(2, 2), cfg)
    assert type(opt) is torch.optim.AdamW and opt.defaults["weight_decay"] == 3e-2


def test_short_presets_and_overrides_diff_against_paper():
    assert {"paper", "cpu-smoke", "gpu-quick"} <= set(PRESETS)
    smoke = resolve_preset("cpu-smoke", "resnet18")
    d = diff_from_paper(smoke)
    assert d["epochs"]["paper"] == 200 and d["epochs"]["used"] == smoke.epochs < 10
    assert "optimizer" not in d and "lr" not in d
    quick = resolve_preset("gpu-quick", "cct7-3x1", seed=3)
    assert quick.optimizer == "adamw" and 20 <= quick.epochs <= 30
    assert diff_from_paper(quick)["seed"] == {"paper": 0, "used": 3}
    at = resolve_preset("paper", "resnet18", method="at+mixup")
    assert at.augmentation == "mixup"
    assert (at.adversarial.eps, at.adversarial.step_size, at.adversarial.steps) == (8 / 255, 2 / 255, 10)
    assert at.adversarial.random_start
    # at+mixup is a Table 4 setting: nothing differs from the paper's settings for that method,
    # but measured against standard training the method's two switches do.
    assert paper_method(at) == "at+mixup" and diff_from_paper(at) == {}
    assert set(diff_from_paper(at, method="standard")) == {"augmentation", "adversarial"}
    for method in METHODS:
        cfg = resolve_preset("paper", "resnet18", method=method)
        assert paper_method(cfg) == method and diff_from_paper(cfg) == {}
        assert paper_config("resnet18", method) == cfg
    smoke_at = diff_from_paper(resolve_preset("cpu-smoke", "lenet5", method="at"))
    assert "adversarial" not in smoke_at and "augmentation" not in smoke_at and "epochs" in smoke_at
    weak = diff_from_paper(resolve_preset("paper", "resnet18", method="at", adversarial={"steps": 1}))
    assert weak["adversarial"]["paper"]["steps"] == 10 and weak["adversarial"]["used"]["steps"] == 1
    no_aug = diff_from_paper(resolve_preset("paper", "resnet18", augmentation="none"))
    assert no_aug == {"augmentation": {"paper": "standard", "used": "none"}}
    with pytest.raises(ValueError, match="unknown method"):
        paper_config("resnet18", "cutmix")
    assert set(METHODS) == {"standard", "mixup", "cutout", "randaugment", "at", "at+mixup", "at+cutout",
                            "at+randaugment"}
    assert TrainConfig.from_dict(json.loads(json.dumps(at.to_dict()))) == at
    with pytest.raises(ValueError):
        resolve_preset("nope", "resnet18")
    with pytest.raises(ValueError):
        resolve_preset("paper", "resnet18", not_a_field=1)


def test_schedules_match_torch_per_epoch_schedulers():
    p = nn.Parameter(torch.zeros(1))
    for model_name, make in [
        ("resnet18", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[100, 150])),
        ("cct7-3x1", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=200, eta_min=1e-5)),
    ]:
        cfg = paper_config(model_name)
        opt = build_optimizer([p], cfg)
        sched = make(opt)
        for epoch in range(200):
            assert lr_at_epoch(epoch, cfg.lr, cfg) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
            opt.step()
            sched.step()


def test_shard_indices_partition_like_distributed_sampler():
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    shards = [shard_indices(perm, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set(torch.cat(shards).tolist()) == set(range(11))
    sampler = torch.utils.data.DistributedSampler(range(11), num_replicas=3, rank=1, shuffle=False)
    assert shards[1].tolist() == [perm[i].item() for i in sampler]


# ----------------------------------------------------------------------------------------------
# DDP through torchrun (2 CPU processes, gloo)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_gloo_two_processes(tmp_path):
    g = torch.Generator().manual_seed(0)
    torch.save(
        {
            "train_images": torch.randint(0, 256, (96, 32, 32, 3), dtype=torch.uint8, generator=g),
            "train_labels": torch.randint(0, 10, (96,), generator=g),
            "test_images": torch.randint(0, 256, (40, 32, 32, 3), dtype=torch.uint8, generator=g),
            "test_labels": torch.randint(0, 10, (40,), generator=g),
        },
        tmp_path / "data.pt",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "cifar10s.cli.train",
        "--data", str(tmp_path / "data.pt"), "--model", "cifar10s.models.resnet:resnet18",
        "--model-kwargs", '{"width": 4}', "--preset", "cpu-smoke",
        "--set", "epochs=2", "--set", "batch_size=32", "--set", 'adversarial={"steps": 1}',
        "--workdir", str(tmp_path / "run"), "--backend", "gloo", "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = TrainResult.load(tmp_path / "run" / "result.json")
    assert result.completed and result.world_size == 2 and result.num_train == 96
    assert len(result.records) == 2
    for r in result.records:
        assert math.isfinite(r.train_loss) and 0 <= r.train_acc <= 1 and 0 <= r.test_acc <= 1
        assert r.param_distance > 0
    assert result.preset_diff["adversarial"]["used"]["steps"] == 1
    ckpt = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert ckpt["epoch"] == 2 and ckpt["world_size"] == 2
    from cifar10s.models.resnet import resnet18

    model = resnet18(width=4)
    model.load_state_dict(torch.load(tmp_path / "run" / "model.pt", weights_only=True))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.pt", "model.pt", "result.json", "theta0.pt"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_table4_method_trains(data, method):
    x, y, tx, ty = data
    cfg = resolve_preset("cpu-smoke", "resnet18", method=method, epochs=1, batch_size=32, train_subset=64,
                         eval_subset=64)
    result = train(_tiny(width=4), x, y, tx, ty, config=cfg, progress=False)
    rec = result.records[0]
    assert math.isfinite(rec.train_loss) and 0.0 <= rec.test_acc <= 1.0
    assert result.config.augmentation == METHODS[method]["augmentation"]
    assert (result.config.adversarial is not None) == method.startswith("at")


@pytest.mark.parametrize("defense", ["grayscale", "jpeg", "bitdepth"])
def test_every_defense_trains(data, defense):
    x, y, _, _ = data
    cfg = TrainConfig(epochs=1, batch_size=32, defense=defense, train_subset=64)
    result = train(_tiny(width=4), x, y, config=cfg, progress=False)
    assert math.isfinite(result.records[0].train_loss)
    assert result.preset_diff["defense"] == {"paper": None, "used": defense}
