"""Training-time estimates come from a timed probe and leave the model and the RNG untouched."""

from __future__ import annotations

import torch
from torch import nn

from cifar10s.training.adversarial import AdversarialConfig
from cifar10s.training.config import TrainConfig
from cifar10s.runtime import format_duration
from cifar10s.training.estimate import estimate_training


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def test_estimate_counts_every_step_of_the_run_and_touches_nothing():
    torch.manual_seed(0)
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    cfg = TrainConfig(epochs=3, batch_size=32)
    est = estimate_training(model, cfg, num_train=100, device="cpu", probe_steps=2)
    assert est.steps == 3 * 4 and est.seconds_per_step > 0 and est.seconds == est.seconds_per_step * 12
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert estimate_training(model, cfg.replace(train_subset=50), 100, "cpu").steps == 3 * 2


def test_the_probe_runs_the_runs_attack(monkeypatch):
    """An adversarial run is probed with its own PGD settings, so the estimate carries their cost."""
    import cifar10s.training.estimate as estimate

    calls = []
    real = estimate.pgd_linf

    def counting(model, x, y, **kw):
        calls.append(kw["steps"])
        return real(model, x, y, **kw)

    monkeypatch.setattr(estimate, "pgd_linf", counting)
    cfg = TrainConfig(epochs=1, batch_size=16)
    estimate_training(_net(), cfg, 64, "cpu", probe_steps=2)
    assert calls == []
    estimate_training(_net(), cfg.replace(adversarial=AdversarialConfig(steps=7)), 64, "cpu", probe_steps=2)
    assert calls == [7, 7, 7]  # one warm-up step and two timed ones


def test_durations_read_naturally():
    assert format_duration(42) == "42 s" and format_duration(600) == "10 min"
    assert format_duration(7200) == "2.0 h" and format_duration(3 * 86400) == "3.0 days"


def test_scoring_states_the_estimate_and_refuses_hours_on_a_cpu(tmp_path, built_root, monkeypatch, capsys):
    """A paper-preset run on the CPU says how long it would take, and stops unless allowed."""
    import pytest

    import cifar10s.training.estimate as estimate
    from cifar10s.leaderboard.scoring import score_submission
    from cifar10s.training.estimate import SlowRunError, TrainingEstimate
    from leaderboard_kit import META, write_submission

    probes = []

    def fake(model, config, num_train, device, **kw):  # 200 epochs at 0.5 s per step: hours
        probes.append((config.preset, config.epochs, num_train))
        return TrainingEstimate(seconds_per_step=0.5, steps=config.epochs * -(-num_train // config.batch_size),
                                probe_steps=3)

    monkeypatch.setattr(estimate, "estimate_training", fake)
    sub = write_submission(tmp_path / "lenet", {**META, "model": "lenet5", "method": "standard"})
    with pytest.raises(SlowRunError, match="would take about .* h on this CPU.*allow_slow=True"):
        score_submission(sub, built_root, variant="ops", preset="paper", device="cpu", out=None)
    assert probes == [("paper", 200, 10_000)]
    assert "estimated training time on cpu" in capsys.readouterr().out
