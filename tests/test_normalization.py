"""Input normalisation as an explicit training option: off in the paper preset, recorded as a
difference when on, applied inside the model on every path (training, evaluation, the scorer's
final prediction from saved weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cifar10s.models import build_model
from cifar10s.training.config import TrainConfig
from cifar10s.training.normalization import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    NORMALIZATION_KEY,
    attach_if_saved_with_it,
    attach_input_normalization,
    has_input_normalization,
    load_weights,
)
from cifar10s.training.presets import PRESETS, diff_from_paper, paper_config, resolve_preset


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_off_by_default_and_in_every_preset():
    assert TrainConfig().normalize is False
    for name in PRESETS:
        for model in ("lenet5", "resnet18", "cct7-3x1"):
            assert resolve_preset(name, model).normalize is False, (name, model)
    assert "normalize" not in diff_from_paper(paper_config("lenet5"))


def test_on_is_a_difference_from_the_paper():
    cfg = resolve_preset("cpu-smoke", "lenet5", normalize=True)
    assert diff_from_paper(cfg)["normalize"] == {"paper": False, "used": True}
    assert TrainConfig.from_dict(cfg.to_dict()).normalize is True
    with pytest.raises((TypeError, ValueError)):
        TrainConfig(normalize="yes")  # type: ignore[arg-type]


def test_attached_model_sees_normalised_inputs():
    torch.manual_seed(0)
    model = _Linear()
    x = torch.rand(5, 3, 4, 4)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    expected = model(((x - mean) / std))
    attach_input_normalization(model)
    attach_input_normalization(model)  # idempotent: normalised once, not twice
    assert has_input_normalization(model)
    torch.testing.assert_close(model(x), expected)
    keys = set(model.state_dict())
    assert {f"{NORMALIZATION_KEY}.mean", f"{NORMALIZATION_KEY}.std"} <= keys
    assert sum(p.numel() for p in model.parameters()) == 3 * 16 * 10 + 10  # buffers, not parameters


def test_weights_say_they_expect_normalised_inputs(tmp_path):
    from safetensors.torch import load_model, save_model

    torch.manual_seed(0)
    trained = attach_input_normalization(_Linear())
    path = tmp_path / "w.safetensors"
    save_model(trained, str(path))
    x = torch.rand(4, 3, 4, 4)

    fresh = load_weights(_Linear(), path)
    assert has_input_normalization(fresh)
    torch.testing.assert_close(fresh(x), trained(x))
    # a plain strict load refuses instead of predicting on unnormalised inputs
    with pytest.raises(RuntimeError):
        load_model(_Linear(), str(path), strict=True)
    # weights without it load into a plain model
    save_model(_Linear(), str(tmp_path / "plain.safetensors"))
    assert not has_input_normalization(load_weights(_Linear(), tmp_path / "plain.safetensors"))
    # a state dict (trainer checkpoints, model.pt)
    state = trained.state_dict()
    other = attach_if_saved_with_it(_Linear(), state)
    other.load_state_dict(state)
    torch.testing.assert_close(other(x), trained(x))


def test_trainer_applies_it_and_records_it(tmp_path):
    from cifar10s.training.trainer import train

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=64)
    cfg = resolve_preset("cpu-smoke", "lenet5", epochs=1, batch_size=32, train_subset=None, eval_subset=None,
                         normalize=True)
    torch.manual_seed(0)
    model = build_model("lenet5")
    res = train(model, images, labels, images[:16], labels[:16], cfg, device="cpu", workdir=tmp_path / "wd",
                progress=False)
    assert has_input_normalization(model)
    assert res.config.normalize is True
    assert res.preset_diff["normalize"] == {"paper": False, "used": True}
    # the evaluation went through the model's normalisation: same number as by hand
    from cifar10s.training.evaluation import evaluate

    assert res.final_test_acc == evaluate(model, images[:16], labels[:16], "cpu")
    # resuming a finished run from its checkpoint rebuilds the same normalised model
    again = build_model("lenet5")
    res2 = train(again, images, labels, images[:16], labels[:16], cfg, device="cpu", workdir=tmp_path / "wd",
                 progress=False)
    assert res2.resumed_from_epoch == 1 and has_input_normalization(again)


def test_scorer_honours_it_end_to_end(tmp_path, built_root, one_thread):
    """The child trains with it, saves weights with it, and the final prediction (a fresh model
    loading those weights) agrees with the per-epoch evaluation of the last epoch."""
    from cifar10s.leaderboard.scoring import score_submission

    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "submission.json").write_text(
        '{"name": "n", "authors": ["a"], "description": "d", "link": "https://example.org", "model": "lenet5", "method": "standard"}')
    result = score_submission(folder, built_root, variant="clean", preset="cpu-smoke", seeds=[0], device="cpu",
                              out=None, overrides={"epochs": 1, "train_subset": 256, "eval_subset": None,
                                                   "normalize": True}, log=None)
    seed = result["per_seed"][0]
    assert result["config"]["normalize"] is True
    assert result["preset_diff"]["normalize"] == {"paper": False, "used": True}
    assert seed["final_test_acc"] == seed["final_epoch_eval_acc"]
