"""EM says how long it will take before it starts, and never publishes unconverged noise silently.

* the time guard: a short probe on the device refuses (within seconds) a recipe expected to take
  more than an hour, says what to do instead, and changes nothing the run computes;
* progress: after each round the accuracy trend and the time left;
* convergence: ``build_variant`` publishes EM noise that reached ``max_rounds`` only when asked,
  and then marks it ``"release_grade": false``.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch

from cifar10s.em import (
    EMConfig,
    SlowBuildError,
    UnconvergedEMError,
    budget,
    estimate_em_time,
    generate_em_noise,
)
from cifar10s.em import checkpoint as em_ckpt
from cifar10s.em.budget import ProbeTiming
from cifar10s.em.progress import round_summary, rounds_to_target
from cifar10s.errors import SlowRunError
from cifar10s.runtime import format_duration
from cifar10s.release.builders import build_variant
from cifar10s.release.recipe import load_recipe
from cifar10s.store import (
    EM_LOG,
    WORK_DIR,
    data_dir,
    is_complete,
    read_manifest,
    variant_folder,
)
from cifar10s.variants import VariantSpec

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"generator_width": 4, "batch_size": 16, "eval_batch_size": 64, "pgd_steps": 2,
        "step_size": 2.0, "train_steps": 2}


@pytest.fixture(scope="module")
def subset(shared_arrays) -> tuple[np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(shared_arrays.train_images[:64]),
            np.asarray(shared_arrays.train_labels[:64], np.int64))


def tiny_recipe(**em: object):
    v1 = load_recipe("v1")
    return dataclasses.replace(v1, version="v1-guard-test", em=dataclasses.replace(
        v1.em, **{**TINY, "batch_size": 50, "eval_batch_size": 100, "max_rounds": 2, **em}))


def fake_probe(seconds_per_image: float):
    def probe(images, labels, config, device, *, stop_if=None):
        return ProbeTiming(device=str(device), batch=2, generator_step_s=seconds_per_image,
                           pgd_step_s=seconds_per_image, eval_s=seconds_per_image, wall_s=0.01)
    return probe


# ----------------------------------------------------------------------------- the time guard


def test_v1_on_cpu_is_refused_within_seconds(shared_archive, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(SlowBuildError) as info:
        build_variant(tmp_path, VariantSpec("cifar10s"), cifar10=shared_archive, device="cpu",
                      progress=False)
    wall = time.perf_counter() - t0  # includes decoding the 10,000 images and the clean build
    assert wall < 30, wall
    exc, text = info.value, str(info.value)
    assert exc.estimate.device == "cpu" and exc.estimate.seconds > 3600
    assert exc.estimate.images == 10_000 and exc.estimate.pgd_steps == 20
    assert f"about {format_duration(exc.estimate.seconds)} on cpu" in text
    # the API's words in str(), the command line's in explain("cli"): the same remedies, as data
    assert "build it on a GPU: device='cuda'" in text and "allow_slow=True" in text and "variant='ops'" in text
    assert "--" not in text
    cli = exc.explain("cli")
    assert "build it on a GPU: rerun with --device cuda" in cli and "rerun with --allow-slow" in cli and "rerun with --variant ops" in cli
    assert "=" not in cli.split("What to do:")[1]
    assert [r.flags for r in exc.remedies] == [("--device", "cuda"), ("--allow-slow",), ("--variant", "ops")]
    assert isinstance(exc, SlowRunError)  # the one "too slow here" refusal
    # nothing was published or left to resume
    assert not is_complete(variant_folder(tmp_path, VariantSpec("em")))
    assert not list((data_dir(tmp_path) / WORK_DIR).glob("em-*/em_checkpoint.pt"))


def test_a_recipe_parameter_that_makes_it_slow_is_refused(tiny_archive, tmp_path):
    # the real probe, extrapolated to a million PGD steps per image: far over the hour
    slow = tiny_recipe(pgd_steps=1_000_000)
    t0 = time.perf_counter()
    with pytest.raises(SlowBuildError, match="allow_slow=True") as info:
        build_variant(tmp_path, VariantSpec("em"), cifar10=tiny_archive, recipe=slow, device="cpu",
                      progress=False)
    assert time.perf_counter() - t0 < 30
    assert "rerun with --allow-slow" in info.value.explain("cli")
    assert info.value.estimate.pgd_steps == 1_000_000


def test_tiny_recipe_passes_and_allow_slow_skips_the_guard(tiny_archive, tmp_path, monkeypatch):
    recipe = tiny_recipe(stop_error=0.9)  # accuracy >= 0.1 stops it: converges at once
    build_variant(tmp_path / "a", VariantSpec("em"), cifar10=tiny_archive, recipe=recipe,
                  device="cpu", progress=False)  # the real probe lets a tiny recipe through
    assert is_complete(variant_folder(tmp_path / "a", VariantSpec("em")))

    calls = []
    slow_probe = fake_probe(1000.0)  # 1000 s per image: days per round

    def spy(*args, **kwargs):
        calls.append(str(args[3]))
        return slow_probe(*args, **kwargs)

    monkeypatch.setattr(budget, "probe_em", spy)
    with pytest.raises(SlowBuildError) as info:
        build_variant(tmp_path / "b", VariantSpec("cifar10s"), cifar10=tiny_archive, recipe=recipe,
                      device="cpu", progress=False)
    assert calls == ["cpu"] and info.value.estimate.round_seconds > 3600
    assert "rerun with --device cuda" in info.value.explain("cli")
    folder = build_variant(tmp_path / "b", VariantSpec("cifar10s"), recipe=recipe, device="cpu",
                           progress=False, allow_slow=True)
    assert calls == ["cpu"]  # opting in skips the probe altogether
    assert read_manifest(folder)["release_grade"] is True


def test_the_probe_changes_nothing_the_run_computes(subset, monkeypatch, tmp_path):
    x, y = subset
    cfg = EMConfig(seed=3, max_rounds=2, stop_error=0.0, **TINY)
    calls = []
    real = budget.probe_em
    monkeypatch.setattr(budget, "probe_em", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = torch.get_rng_state()
    det = torch.are_deterministic_algorithms_enabled()
    probed = generate_em_noise(x, y, cfg, device="cpu", progress=False, workdir=tmp_path / "a")
    assert calls == [1]
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.are_deterministic_algorithms_enabled() == det
    plain = generate_em_noise(x, y, cfg, device="cpu", progress=False, allow_slow=True,
                              workdir=tmp_path / "b")
    assert calls == [1]
    assert probed.noise.tobytes() == plain.noise.tobytes()
    keys = ("train_loss", "train_acc", "eval_loss", "eval_acc", "noise_mean_abs_255")
    assert [[r[k] for k in keys] for r in probed.log] == [[r[k] for k in keys] for r in plain.log]
    a = torch.load(tmp_path / "a" / em_ckpt.CHECKPOINT_NAME, weights_only=True)
    b = torch.load(tmp_path / "b" / em_ckpt.CHECKPOINT_NAME, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_probe_timing_is_measured_on_real_images(subset):
    x, y = subset
    t = budget.probe_em(x, y, EMConfig(**TINY), "cpu")
    assert t.complete and t.device == "cpu" and 2 <= t.batch <= 16
    assert 0 < t.eval_s < t.generator_step_s  # a generator step is dearer than a forward pass
    assert t.pgd_step_s > 0 and t.wall_s < 30
    # a bound that is already far over the limit stops the probe after its forward passes
    bound = budget.probe_em(x, y, EMConfig(**TINY), "cpu", stop_if=lambda timing: True)
    assert not bound.complete and bound.generator_step_s == bound.pgd_step_s == bound.eval_s


def test_estimate_extrapolates_to_the_recipe():
    probe = ProbeTiming(device="cpu", batch=8, generator_step_s=0.3, pgd_step_s=0.1, eval_s=0.05,
                        wall_s=1.0)
    cfg = load_recipe("v1").em  # 10 steps of 512, 20 PGD steps, max 500 rounds
    e = estimate_em_time(probe, cfg, 50_000)
    assert e.round_seconds == pytest.approx(10 * 512 * 0.3 + 50_000 * 20 * 0.1 + 50_000 * 0.05)
    assert (e.rounds, e.rounds_left) == (10, 500) and e.seconds == pytest.approx(10 * e.round_seconds)
    assert e.worst_seconds == pytest.approx(500 * e.round_seconds)
    # a resumed run counts the rounds left; sharding over processes divides the round
    late = estimate_em_time(probe, cfg, 50_000, rounds_done=495, world_size=4)
    assert (late.rounds, late.rounds_left) == (5, 5)
    assert late.round_seconds == pytest.approx(e.round_seconds / 4)
    # class-wise drops the last partial batch from the search
    cw = estimate_em_time(probe, EMConfig(mode="classwise", batch_size=512), 1000)
    assert cw.round_seconds == pytest.approx(10 * 512 * 0.3 + 512 * 1 * 0.1 + 1000 * 0.05)
    assert "10 generator steps of 512 images, 20 PGD steps on each of 50,000 images" in e.describe()


def test_a_finished_run_is_not_probed_again(subset, tmp_path, monkeypatch):
    x, y = subset
    cfg = EMConfig(seed=1, max_rounds=1, stop_error=0.0, **TINY)
    first = generate_em_noise(x, y, cfg, device="cpu", progress=False, workdir=tmp_path)
    monkeypatch.setattr(budget, "probe_em", fake_probe(1000.0))
    again = generate_em_noise(x, y, cfg, device="cpu", progress=False, workdir=tmp_path)
    assert again.noise.tobytes() == first.noise.tobytes()  # nothing left to run: no refusal
    with pytest.raises(SlowBuildError):  # one more round to run: probed, and refused
        generate_em_noise(x, y, dataclasses.replace(cfg, max_rounds=2), device="cpu",
                          progress=False, workdir=tmp_path)


# ----------------------------------------------------------------------------- progress


def test_progress_shows_estimate_trend_and_time_left(subset, capsys):
    x, y = subset
    cfg = EMConfig(seed=0, max_rounds=2, stop_error=0.0, **TINY)
    generate_em_noise(x, y, cfg, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "EM time estimate: one round ~" in err
    assert "round 1/2: acc " in err and "round 2/2: acc " in err and " -> " in err
    assert "max_rounds reached without meeting the stop condition" in err
    assert "round 1 generator" in err  # the generator phase has its own bar
    generate_em_noise(x, y, cfg, device="cpu", progress=False)
    assert capsys.readouterr().err == ""


def test_round_summary_text():
    log = [{"round": i + 1, "eval_acc": a, "seconds": 60.0, "converged": False}
           for i, a in enumerate([0.61, 0.74, 0.87])]
    line = round_summary(log, max_rounds=10, stop_error=0.01)
    assert line.startswith("round 3/10: acc 0.610 -> 0.740 -> 0.870 (stops at >= 0.990), 60 s/round")
    assert "~60 s left if the trend holds, at most 7 min (max_rounds 10)" in line
    flat = [dict(r, eval_acc=0.5) for r in log]
    assert round_summary(flat, 10, 0.01).endswith("; at most 7 min left (max_rounds 10)")
    done = log + [{"round": 4, "eval_acc": 0.995, "seconds": 60.0, "converged": True}]
    assert round_summary(done, 10, 0.01).endswith("stop condition met")
    assert rounds_to_target([0.2, 0.4], 0.99) == 3 and rounds_to_target([0.5], 0.99) is None
    durations = [format_duration(s) for s in (45, 720, 3 * 3600, 5 * 86400)]
    assert durations == ["45 s", "12 min", "3.0 h", "5.0 days"]


# ----------------------------------------------------------------------------- convergence


def test_unconverged_em_is_refused_then_published_marked_when_allowed(tiny_archive, tmp_path):
    recipe = tiny_recipe(stop_error=0.0, max_rounds=1)  # error <= 0 never happens in one round
    with pytest.raises(UnconvergedEMError) as info:
        build_variant(tmp_path, VariantSpec("cifar10s"), cifar10=tiny_archive, recipe=recipe,
                      device="cpu", progress=False)
    text = str(info.value)
    assert "EM stopped after 1 rounds" in text and "allow_unconverged=True" in text
    assert "release_grade" in text and "--allow-unconverged" not in text
    assert "rerun with --allow-unconverged" in info.value.explain("cli") and "allow_unconverged=True" not in info.value.explain("cli")
    assert not is_complete(variant_folder(tmp_path, VariantSpec("em")))
    assert not is_complete(variant_folder(tmp_path, VariantSpec("cifar10s")))
    kept = list((data_dir(tmp_path) / WORK_DIR).glob("em-*/em_checkpoint.pt"))
    assert len(kept) == 1 and str(kept[0].parent) in text  # the finished run waits for a decision
    workdir = kept[0].parent
    first = em_ckpt.read_log(workdir)
    assert [r["round"] for r in first] == [1]

    # a larger max_rounds continues the stopped run (round 1 is not redone: its record is kept)
    longer = tiny_recipe(stop_error=0.0, max_rounds=2)
    with pytest.raises(UnconvergedEMError, match="after 2 rounds"):
        build_variant(tmp_path, VariantSpec("em"), recipe=longer, device="cpu", progress=False)
    log = em_ckpt.read_log(workdir)
    assert [r["round"] for r in log] == [1, 2] and log[0] == first[0]

    # opting in publishes the finished run as it is (no round redone: the same records), marked
    with pytest.warns(UserWarning, match="EM stopped after 2 rounds"):
        folder = build_variant(tmp_path, VariantSpec("cifar10s"), recipe=longer, device="cpu",
                               progress=False, allow_unconverged=True)
    em_dir = variant_folder(tmp_path, VariantSpec("em"))
    em = read_manifest(em_dir)
    assert em["release_grade"] is False and em["em"]["converged"] is False and em["em"]["rounds"] == 2
    assert json.loads((em_dir / EM_LOG).read_text()) == log
    assert read_manifest(folder)["release_grade"] is False  # and so is what is built on it
    assert not workdir.exists()


def test_a_stopped_run_longer_than_the_recipe_is_not_reused(tiny_archive, tmp_path):
    with pytest.raises(UnconvergedEMError, match="after 2 rounds"):
        build_variant(tmp_path, VariantSpec("em"), cifar10=tiny_archive, device="cpu", progress=False,
                      recipe=tiny_recipe(stop_error=0.0, max_rounds=2))
    with pytest.warns(UserWarning, match="EM stopped after 1 rounds"):
        folder = build_variant(tmp_path, VariantSpec("em"), device="cpu", progress=False,
                               recipe=tiny_recipe(stop_error=0.0, max_rounds=1), allow_unconverged=True)
    assert read_manifest(folder)["em"]["rounds"] == 1  # what this recipe gives from scratch


def test_converged_em_is_release_grade(tiny_archive, tmp_path):
    folder = build_variant(tmp_path, VariantSpec("cifar10s"), cifar10=tiny_archive,
                           recipe=tiny_recipe(stop_error=0.9), device="cpu", progress=False)
    m = read_manifest(folder)
    assert m["release_grade"] is True and m["em"]["converged"] is True
    assert read_manifest(variant_folder(tmp_path, VariantSpec("em")))["release_grade"] is True
    assert not list((data_dir(tmp_path) / WORK_DIR).glob("em-*"))


def test_dataset_passes_allow_slow_to_the_build(tiny_archive, tmp_path, monkeypatch):
    import shutil

    from cifar10s import CIFAR10S
    from cifar10s.hub import client
    from cifar10s.release import builders

    def offline(*args, **kwargs):
        raise client.HubUnavailable("offline in this test")

    shutil.copy(tiny_archive, tmp_path / "cifar-10-python.tar.gz")  # the local copy to build from
    monkeypatch.setattr(client, "fetch_variant", offline)
    monkeypatch.setattr(budget, "probe_em", fake_probe(1000.0))
    monkeypatch.setattr(builders, "load_recipe", lambda recipe=None: tiny_recipe(stop_error=0.9))
    with pytest.warns(UserWarning, match="building em locally instead"), pytest.raises(SlowBuildError):
        CIFAR10S(tmp_path, variant="em", download=True)
    assert not is_complete(variant_folder(tmp_path, VariantSpec("em")))
    with pytest.warns(UserWarning, match="building em locally instead"):
        ds = CIFAR10S(tmp_path, variant="em", download=True, allow_slow=True)
    assert len(ds) == 100 and ds.manifest["release_grade"] is True
