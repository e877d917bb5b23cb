"""The GPU campaign's dry run: every phase runs end to end on the CPU with tiny settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_campaign_dry_run_runs_every_phase(tmp_path, tiny_archive):
    out = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_campaign.py"), "--dry-run", "--data", str(tiny_archive),
         "--out", str(out), "--root", str(tmp_path / "root"), "--budget", "60"],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    phases = ("smoke", "speed", "em", "effect", "grid")
    for phase in phases:
        rec = json.loads((out / f"{phase}.json").read_text())
        assert rec["phase"] == phase and rec["dry_run"] is True
        assert rec["environment"]["device"] == "cpu" and rec["environment"]["torch"]
    smoke = json.loads((out / "smoke.json").read_text())["results"]
    assert smoke["one_batch"] and all(r["ok"] for r in smoke["one_batch"]), smoke["one_batch"]
    assert smoke["cuda_tests"]["returncode"] == 0
    speed = json.loads((out / "speed.json").read_text())["results"]
    assert speed["standard"]["ours_img_s"] > 0 and speed["at"]["baseline_img_s"] > 0
    assert speed["em"]["seconds_per_round"] > 0 and speed["ops"]["seconds_best_of_3"] > 0
    em = json.loads((out / "em.json").read_text())["results"]
    assert em["em"]["rounds"] >= 1 and em["num_train"] == 100
    effect = json.loads((out / "effect.json").read_text())["results"]
    assert {r["training_set"] for r in effect["runs"]} == {"clean", "em", "ops", "cifar10s"}
    for r in effect["runs"]:
        assert 0.0 <= r["final_test_acc"] <= 1.0 and "epochs" in r["differs_from_paper"]
    grid = json.loads((out / "grid.json").read_text())["results"]
    assert {r["augmentation"] for r in grid["runs"]} >= {"randaugment", "randaugment-tv", "mixup", "standard+mixup"}
    summary = (out / "summary.md").read_text()
    assert all(f"## {p}" in summary for p in phases)


def test_campaign_refuses_cuda_without_a_gpu(tmp_path, tiny_archive):
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the refusal does not apply
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_campaign.py"), "--data", str(tiny_archive),
                           "--out", str(tmp_path / "o"), "--phases", "smoke"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "--dry-run" in proc.stderr


def test_the_one_call_script_runs_phases_under_a_deadline(tmp_path, tiny_archive):
    """benchmarks/gpu_campaign_call.sh, as a GPU machine runs it, here as a CPU dry run: a phase
    that fits writes its record; one left with too little time is skipped and says so."""
    def call(out: Path, **extra: str) -> tuple[subprocess.CompletedProcess, str]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OUT": str(out), "PYTHON": sys.executable,
               "CAMPAIGN_ARGS": "--dry-run", "DATA": str(tiny_archive), "CAMPAIGN_ROOT": str(tmp_path / "root"),
               **extra}
        proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_campaign_call.sh")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc, (out / "log.txt").read_text()

    proc, log = call(tmp_path / "a", PHASES="smoke", CAP_smoke="240", DEADLINE="300")
    smoke = json.loads((tmp_path / "a" / "campaign" / "smoke.json").read_text())
    assert smoke["dry_run"] is True and smoke["results"]["one_batch"]
    assert "== smoke: 240s (budget 225s)" in log and "rc 0" in log and "## smoke" in proc.stdout
    _, log = call(tmp_path / "b", PHASES="grid", DEADLINE="30")
    assert "skipped: no time left" in log and not (tmp_path / "b" / "campaign" / "grid.json").exists()


def test_next_campaign_phases_dry_run(tmp_path, tiny_archive):
    """Every phase of the next campaign (EM v2 against v1, training speed with the fast path, the
    headline effect, the defenses, the sandboxed score, compile) runs tiny on the CPU and writes
    the first campaign's field names."""
    out = tmp_path / "results"
    phases = ["emspeed", "emeffect", "trainspeed", "headline", "defenses", "sandbox", "compile"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_campaign.py"), "--dry-run", "--data", str(tiny_archive),
         "--out", str(out), "--root", str(tmp_path / "root"), "--budget", "60", "--phases", ",".join(phases)],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    res = {p: json.loads((out / f"{p}.json").read_text())["results"] for p in phases}
    em = res["emspeed"]
    assert em["em"]["images"] == 128 and em["em"]["seconds_per_round"] > 0 and em["em"]["recipe"] == "v2"
    assert em["em"]["numerics"]["autocast"] == "bfloat16" and em["em_v1_small"]["numerics"]["autocast"] is None
    assert em["ratio"] > 0 and set(em["variants"]) == {"compile", "compile+cuda_graphs"}
    eff = res["emeffect"]
    assert {r["training_set"] for r in eff["runs"]} == {"clean", "em-v1", "em-v2"}
    assert eff["noise"]["v1"]["rounds"] >= 1 and 0.0 <= eff["noise_agreement"]["identical_share"] <= 1.0
    speed = res["trainspeed"]
    for key in ("standard", "at"):
        assert speed[key]["ours_img_s"] > 0 and speed[key]["baseline_img_s"] > 0 and speed[key]["ratio"] > 0
        assert "ours_fast_img_s" in speed[key] or "skipped" in speed[key]["fast"], speed[key]["fast"]
    head = res["headline"]
    assert [r["training_set"] for r in head["runs"]] == ["ops", "cifar10s", "clean", "em"]
    assert head["em_build"]["numerics"]["autocast"] == "bfloat16"  # recipe v2's numerics in the manifest
    assert "ops_train_acc_over_90" in head and "clean_minus_cifar10s_points" in head
    assert {(r["training_set"], r["defense"]) for r in res["defenses"]["runs"]} == {
        (k, d) for k in ("cifar10s", "clean") for d in ("jpeg", "grayscale")}
    for phase in ("emeffect", "headline", "defenses"):
        for r in res[phase]["runs"]:
            assert r["model"] == "resnet18" and r["method"] == "standard" and 0.0 <= r["final_test_acc"] <= 1.0
    assert "ok" in res["sandbox"]["sandboxed_score"] and res["compile"]["one_batch"]
    summary = (out / "summary.md").read_text()
    assert all(f"## {p}" in summary for p in phases)
