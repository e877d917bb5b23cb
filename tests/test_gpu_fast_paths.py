"""The GPU fast path, run on the CPU: EM recipe v2's switches and the trainer's fast-path decisions.

EM v2 (bf16 autocast, TF32, channels-last, fused SGD, large search batches) runs its whole round
on the CPU with a width-4 generator; ``torch.compile`` with CUDA graphs asked falls back to the
default mode with the reason (the compiled steps run in tests/test_em_cpu_paths.py); CUDA graphs
themselves need a GPU and are skipped here with that reason (the GPU campaign runs those tests
there, phase ``sandbox``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cifar10s.em import EMConfig, generate_em_noise
from cifar10s.em import run as em_run
from cifar10s.release.recipe import Recipe, load_recipe
from cifar10s.release.verify import EMTolerance
from cifar10s.training.accel import compile_module, cuda_graphs_support, fuse_optimizer, training_fast_path

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
SMALL = {"generator_width": 4, "batch_size": 16, "eval_batch_size": 48, "pgd_steps": 2, "step_size": 2.0,
         "train_steps": 2, "stop_error": 0.0, "max_rounds": 2}
NO_CUDA = "CUDA graphs need a CUDA GPU; the GPU campaign runs this test on one"


@pytest.fixture(scope="module")
def data(shared_arrays) -> tuple[np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(shared_arrays.train_images[:48]),
            np.asarray(shared_arrays.train_labels[:48], np.int64))


def run_em(x, y, cfg: EMConfig):
    return generate_em_noise(x, y, cfg, device="cpu", progress=False, allow_slow=True)


def v2_small(**kw: object) -> EMConfig:
    raw = {**load_recipe("v2").em.to_dict(), **SMALL, "search_batch_size": 48, **kw}
    return EMConfig.from_dict(raw)


# ---------------------------------------------------------------------------------------------
# recipes


def test_v1_is_unchanged_and_v2_states_its_numerics_and_tolerance():
    v1_file = json.loads((REPO / "build" / "recipe-v1.json").read_text())
    v1 = load_recipe("v1")
    assert v1.to_dict() == v1_file and "verify" not in v1.to_dict()
    # the EM stage's cache key of v1 is the hash of exactly the frozen file's em section
    assert v1.em_key == hashlib.sha256(json.dumps(v1_file["em"], sort_keys=True).encode()).hexdigest()
    v2_file = json.loads((REPO / "build" / "recipe-v2.json").read_text())
    v2 = load_recipe("v2")
    assert v2.to_dict() == v2_file == json.loads((REPO / "cifar10s" / "data" / "recipe-v2.json").read_text())
    em = v2_file["em"]
    assert (em["amp"], em["tf32"], em["channels_last"], em["deterministic"]) == (True, True, True, False)
    # the EM problem itself is v1's
    same = {k: v for k, v in v1_file["em"].items() if k not in ("amp", "deterministic", "channels_last",
                                                               "eval_batch_size")}
    assert {k: em[k] for k in same} == same
    assert v2.em.numerics("cuda")["tf32"] and not v2.em.numerics("cpu")["tf32"]
    assert EMTolerance.of_recipe(v2.to_dict()) == EMTolerance(0.0, 16)
    assert EMTolerance.of_recipe(v1.to_dict()) is None


def test_bad_v2_fields_are_refused():
    with pytest.raises(ValueError, match="search_batch_size applies to sample-wise"):
        EMConfig(mode="classwise", search_batch_size=64)
    with pytest.raises(ValueError, match="search_batch_size must be"):
        EMConfig(search_batch_size=0)
    with pytest.raises(TypeError, match="tf32 must be"):
        EMConfig(tf32="yes")  # type: ignore[arg-type]
    raw = load_recipe("v2").to_dict()
    with pytest.raises(ValueError, match="verify"):
        Recipe.from_dict({**raw, "verify": {"em_min_identical": 2.0}})
    with pytest.raises(ValueError, match="verify"):
        Recipe.from_dict({**raw, "verify": {"anything": 1}})


# ---------------------------------------------------------------------------------------------
# EM v2 on the CPU


def test_search_batch_is_only_a_batch_in_float32(data):
    """Each image's step uses only the sign of its own gradient: one search batch of 48 gives the
    noise of three batches of 16 (float32, deterministic CPU kernels)."""
    x, y = data
    cfg = EMConfig(seed=0, **SMALL)
    one = run_em(x, y, dataclasses.replace(cfg, search_batch_size=48))
    three = run_em(x, y, cfg)
    assert (one.noise == three.noise).mean() > 0.99
    assert one.extra["numerics"]["search_batch_size"] == 48 and three.extra["numerics"]["search_batch_size"] == 16


def test_v2_switches_run_on_cpu_and_are_recorded(data):
    x, y = data
    res = run_em(x, y, v2_small())
    noise = res.noise.astype(np.int16)
    assert res.noise.dtype == np.int8 and int(np.abs(noise).max()) <= 8 and (noise != 0).mean() > 0.5
    assert np.array_equal(res.perturbed.astype(np.int16), x.astype(np.int16) + noise)
    num = res.extra["numerics"]
    assert num["autocast"] == "bfloat16" and num["channels_last"] and num["fused_optimizer_used"]
    assert num["tf32"] is False  # TF32 is a CUDA setting; the record says what this device did
    assert not num["cudnn_deterministic"] and num["compile_mode"] is None and not num["cuda_graphs_used"]
    assert res.noise.tobytes() != run_em(x, y, EMConfig(seed=0, **SMALL)).noise.tobytes()  # bf16 changed it


def test_cuda_graphs_asked_on_cpu_fall_back_with_the_reason(data):
    """What compile decides is set up before anything compiles (``torch.compile`` is lazy); the
    compiled steps themselves run in tests/test_em_cpu_paths.py::test_compile_on_cpu."""
    from cifar10s.em.run import _EMRun
    from cifar10s.runtime import DistContext

    x, y = data
    run = _EMRun(x, y, v2_small(compile=True, cuda_graphs=True).resolved(), torch.device("cpu"), DistContext())
    try:
        run._setup_forwards()
        assert isinstance(run._eval_forward, torch._dynamo.eval_frame.OptimizedModule)
        assert run.accel["compile_mode"] == "default" and not run.accel["cuda_graphs_used"]
        assert "CUDA device" in run.accel["cuda_graphs_reason"] and run.accel["fused_optimizer_used"]
        assert run._update is not em_run.pgd_update  # the PGD step is compiled too
    finally:
        torch._dynamo.reset()


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_em_v2_with_cuda_graphs_on_gpu(data):
    x, y = data
    cfg = v2_small(compile=True, cuda_graphs=True, max_rounds=2)
    res = generate_em_noise(x, y, cfg, device="cuda", progress=False, allow_slow=True)
    assert res.extra["numerics"]["cuda_graphs_used"] and res.rounds == 2
    plain = generate_em_noise(x, y, dataclasses.replace(cfg, compile=False, cuda_graphs=None), device="cuda",
                              progress=False, allow_slow=True)
    assert (res.noise == plain.noise).mean() > 0.9


# ---------------------------------------------------------------------------------------------
# the trainer's fast path


def test_fused_optimizer_takes_the_same_steps():
    torch.manual_seed(0)
    a = nn.Linear(6, 3)
    b = nn.Linear(6, 3)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(8, 6)
    for step in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
        if step == 0:  # fused after one step: the momentum buffers come along
            opt_b, fused = fuse_optimizer(opt_b)
            assert fused and opt_b.param_groups[0]["fused"] and len(opt_b.state) == 2
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    assert fuse_optimizer(torch.optim.Adam(a.parameters()))[1] is False  # only SGD and AdamW


def test_fast_path_is_the_plain_path_on_cpu():
    assert cuda_graphs_support("cpu") == (False, "CUDA graphs need a CUDA device (this run is on cpu)")
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fwd, attack, opt2, rec = training_fast_path(model, model, opt, torch.device("cpu"), compile=False,
                                                deterministic=False, distributed=False, own_optimizer=False,
                                                own_step=False)
    assert fwd is model and attack is model and opt2 is opt
    assert rec == {"fused_optimizer": False, "compile_mode": None, "cuda_graphs": False,
                   "cuda_graphs_reason": "not asked"}
    compiled, info = compile_module(model, "cpu", cuda_graphs=True)  # lazy: nothing compiles yet
    assert info["mode"] == "default" and not info["cuda_graphs"] and "CUDA device" in info["reason"]
    _, _, _, rec = training_fast_path(model, model, opt, torch.device("cpu"), compile=True, deterministic=False,
                                      distributed=False, own_optimizer=False, own_step=False)
    assert rec["compile_mode"] == "default" and rec["cuda_graphs"] is False
    torch._dynamo.reset()


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_training_fast_path_on_gpu(shared_arrays):
    from cifar10s.training.config import TrainConfig
    from cifar10s.training.trainer import train

    x, y = shared_arrays.train_images[:1024], shared_arrays.train_labels[:1024]
    results = {}
    for fast in (False, True):  # LeNet-5: compiles in seconds, the same decisions as a ResNet-18
        cfg = TrainConfig(epochs=2, batch_size=128, amp=True, channels_last=True, deterministic=False, compile=fast,
                          schedule="constant", lr=0.01)
        results[fast] = train("lenet5", x, y, config=cfg, device="cuda", progress=False)
    rec = results[True].environment["fast_path"]
    assert rec["fused_optimizer"] and rec["cuda_graphs"], rec
    assert abs(results[True].records[-1].train_loss - results[False].records[-1].train_loss) < 0.3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the device draw of Mixup's lambda needs a GPU generator")
def test_mixup_lambda_drawn_on_gpu_is_uniform():
    from cifar10s.training.augment import Mixup

    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand(8, 3, 4, 4, device="cuda")
    lams = torch.stack([Mixup(1.0).get_params(x, g).lam[0] for _ in range(2000)]).cpu()
    assert lams.is_cuda is False and 0.45 < float(lams.mean()) < 0.55 and float(lams.min()) >= 0.0
    assert abs(float((lams < 0.25).float().mean()) - 0.25) < 0.05
    p = Mixup(1.0, per_sample_lambda=True).get_params(x, g)
    assert p.lam.is_cuda and p.lam.unique().numel() == 8
