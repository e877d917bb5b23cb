"""The GPU campaign: everything a CPU cannot measure, in phases that each fit a 10-minute run.

Run it, phase by phase, whenever a GPU is available (see the README, "When a GPU is available")::

    PYTHONPATH=. python benchmarks/gpu_campaign.py --data gpu-data/cifar-10-mini-python.tar.gz \\
        --out benchmarks/results/2026-11-25-h100 --phases smoke
    ... --phases speed   |   --phases em   |   --phases effect   |   --phases grid

Phases, in order of value:

1. ``smoke``: versions and GPU; the CUDA-only tests; one batch of every model x Table 4 method on
   the GPU in bf16 + channels-last; one tiny score with its children in the bubblewrap sandbox
   (NVIDIA device nodes bound); then ``torch.compile`` per model, ResNet-18 first, while the
   phase's budget lasts.
2. ``speed``: ResNet-18 training img/s (standard and PGD-10 AT), our on-device loop against a
   plain DataLoader + PIL loop on the same model and batch, side by side; EM seconds per round of
   the full v1 recipe on 50,000 images (the subset tiled) and the projected total; OPS search
   time on 50,000 images.
3. ``em``: the v1 recipe, unchanged, on the subset to convergence, then CIFAR-10-S of the subset
   (resumable: a phase cut off by the time limit continues where it stopped when run again).
4. ``effect``: ResNet-18 trained on clean / EM / OPS / CIFAR-10-S of the subset with the paper's
   Table 4 settings but as many epochs as fit, scored on the subset's clean test split.
5. ``grid``: as much of Table 4 (methods x training sets, both RandAugment and both Mixup
   variants) as fits.

Those five ran on 2026-12-06. The next campaign runs the fast path's phases
(``gpu_campaign_fast.py``: ``emspeed``, ``emeffect``, ``trainspeed``, ``headline``,
``defenses``), then ``sandbox`` (the sandboxed score alone) and ``compile`` (``torch.compile``
of every model), in that order (``NEXT_CAMPAIGN``; the default of ``gpu_campaign_call.sh``).

Every phase writes ``<phase>.json`` (commit, device, settings, every setting that differs from
the paper, results) and a Markdown section in ``summary.md`` under ``--out``. ``--dry-run`` runs
every phase with tiny settings on the CPU (the test suite does, so the script cannot rot).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cifar10s.dataset import CIFAR10S  # noqa: E402
from cifar10s.paper import compare  # noqa: E402
from cifar10s.models import MODELS, build_model  # noqa: E402
from cifar10s.onepixel import search_shortcuts  # noqa: E402
from cifar10s.folder import open_folder  # noqa: E402
from cifar10s.release.builders import build_variant  # noqa: E402
from cifar10s.release.recipe import load_recipe  # noqa: E402
from cifar10s.sources.cifar10 import load_cifar10  # noqa: E402
from cifar10s.training.config import TrainConfig  # noqa: E402
from cifar10s.training.evaluation import Evaluator  # noqa: E402
from cifar10s.training.presets import METHODS, diff_from_paper, paper_config  # noqa: E402
from cifar10s.training.trainer import train  # noqa: E402
from cifar10s.variants import VariantSpec  # noqa: E402

from gpu_campaign_fast import FAST_PHASES, FAST_RUNNERS  # noqa: E402 - beside this script

#: the first campaign's phases, then the fast path's (gpu_campaign_fast.py) and two short checks
PHASES = ("smoke", "speed", "em", "effect", "grid", *FAST_PHASES, "sandbox", "compile")
#: what gpu_campaign_call.sh runs by default, in order of value (the first campaign's phases were measured)
NEXT_CAMPAIGN = (*FAST_PHASES, "sandbox", "compile")
TRAINING_SETS = ("clean", "em", "ops", "cifar10s")
#: Table 4's methods (method, augmentation): the authors' variants, and the other variant of each
#: augmentation whose parameters the paper omits (crop+flip before Mixup; torchvision's RandAugment)
GRID_METHODS: tuple[tuple[str, str | None], ...] = (
    ("standard", None), ("mixup", None), ("mixup", "standard+mixup"), ("cutout", None),
    ("randaugment", None), ("randaugment", "randaugment-tv"), ("at", None),
)


@dataclass
class Settings:
    """What a phase may spend: the dry run shrinks everything so the CPU finishes in seconds."""

    device: torch.device
    dry_run: bool
    budget_s: float
    root: Path
    data: Path
    out: Path = Path(".")

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"


# ------------------------------------------------------------------------------------------------
# bookkeeping


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return env


def write_phase(out: Path, phase: str, record: dict[str, Any], lines: list[str]) -> None:
    """``<phase>.json`` (replaced) and the phase's section of ``summary.md`` (replaced)."""
    from cifar10s.store import atomic_write_bytes, atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{phase}.json", record)
    summary = out / "summary.md"
    sections = {}
    if summary.exists():
        for block in summary.read_text().split("\n## ")[1:]:
            name = block.split("\n", 1)[0].split()[0]
            sections[name] = "## " + block.rstrip() + "\n"
    sections[phase] = "\n".join([f"## {phase}", "", *lines]).rstrip() + "\n"
    ordered = [sections[p] for p in PHASES if p in sections]
    env = record["environment"]
    head = (f"# GPU campaign\n\n{env.get('gpu', env['device'])}, torch {env['torch']}, commit "
            f"{(env['commit'] or 'unknown')[:12]}{' (dirty)' if env['dirty'] else ''}\n\n")
    atomic_write_bytes(summary, (head + "\n".join(ordered)).encode())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _with_allow_slow(fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """Pass the opt-ins for long EM runs where the function takes them (the campaign means them)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in kwargs.items() if k in params}


# ------------------------------------------------------------------------------------------------
# phase 1: smoke


def phase_smoke(s: Settings) -> tuple[dict[str, Any], list[str]]:
    t0 = time.perf_counter()
    tests = _cuda_tests(s)
    models = ["lenet5"] if s.dry_run else sorted(MODELS)
    methods = list(METHODS)
    runs = []
    images = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(16) % 10
    for name in models:
        for method in methods:
            runs.append(_one_batch(name, method, False, images, labels, s))
    boxed = _sandboxed_score(s)
    # torch.compile once per model (the methods change the data, not the graph), ResNet-18 first,
    # while the phase's budget lasts: one compile takes tens of seconds
    not_compiled = []
    for name in [] if s.dry_run else sorted(models, key=lambda m: (m != "resnet18", m)):
        if time.perf_counter() - t0 > 0.7 * s.budget_s:
            not_compiled.append(name)
            continue
        runs.append(_one_batch(name, "standard", True, images, labels, s))
    ok = sum(r["ok"] for r in runs)
    lines = [f"CUDA-only tests: {tests['summary']}", "",
             f"sandboxed one-batch score on {s.device}: " + ("ok, " + json.dumps(boxed.get("sandbox"))
                                                             if boxed["ok"] else f"FAILED: {boxed['error']}"), "",
             f"one batch of every model x method ({len(runs)} runs, bf16 + channels-last on CUDA): "
             f"{ok} ok, {len(runs) - ok} failed", ""]
    lines += [f"- FAILED {r['model']} {r['method']} compile={r['compile']}: {r['error']}" for r in runs if not r["ok"]]
    if not_compiled:
        lines += ["", f"torch.compile not tried (budget spent): {', '.join(not_compiled)}"]
    return {"cuda_tests": tests, "one_batch": runs, "sandboxed_score": boxed, "compile_not_tried": not_compiled}, lines


SANDBOX_PROBE_NET = """
import torch
from torch import nn

def build_model(num_classes):
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, num_classes))
"""


def _sandboxed_score(s: Settings) -> dict[str, Any]:
    """Score a tiny entry-point submission for one batch on the clean set, its children in the
    bubblewrap sandbox (on CUDA: with the NVIDIA device nodes bound); every failure is recorded."""
    import tempfile

    from cifar10s.leaderboard.scoring import score_submission

    t0 = time.perf_counter()
    rec: dict[str, Any] = {"ok": False}
    try:
        build_variant(s.root, VariantSpec("clean"), cifar10=s.data, progress=False)
        with tempfile.TemporaryDirectory(prefix="campaign-sandbox-") as tmp:
            folder = Path(tmp) / "probe"
            folder.mkdir()
            (folder / "submission.json").write_text(json.dumps({
                "name": "sandbox probe", "authors": ["campaign"], "link": "https://example.org", "entry": "m.py"}))
            (folder / "m.py").write_text(SANDBOX_PROBE_NET)
            res = score_submission(folder, s.root, variant="clean", preset="cpu-smoke", seeds=[0], device=s.device,
                                   overrides={"epochs": 1, "train_subset": 64, "eval_subset": 64, "batch_size": 64},
                                   time_limit_s=300, log=None, sandbox=True)
        rec.update(ok=True, device=res["device"], final_test_acc=res["per_seed"][0]["final_test_acc"],
                   sandbox=res["sandbox"])
    except Exception as exc:  # noqa: BLE001 - recorded: the first lent GPU says whether the sandbox runs there
        rec.update(error=f"{type(exc).__name__}: {exc}"[:1000])
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def _cuda_tests(s: Settings) -> dict[str, Any]:
    # the campaign's own tests are CPU dry runs of this script: not worth GPU time
    files = [str(p.relative_to(REPO)) for p in sorted((REPO / "tests").glob("test_*.py"))
             if "cuda" in p.read_text().lower() and p.name != "test_gpu_campaign.py"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "cuda or gpu", *files]
    if s.dry_run:
        cmd.append("--collect-only")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(60.0, s.budget_s))
    last = [ln for ln in r.stdout.strip().splitlines() if ln.strip()][-1:] or [""]
    return {"command": " ".join(cmd[1:]), "returncode": r.returncode, "summary": last[0],
            "seconds": round(time.perf_counter() - t0, 1), "tail": r.stdout[-3000:]}


def _one_batch(name: str, method: str, compiled: bool, images: torch.Tensor, labels: torch.Tensor,
               s: Settings) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"model": name, "method": method, "compile": compiled}
    try:
        torch.manual_seed(0)
        model = build_model(name)
        cfg = paper_config(name, method).replace(
            epochs=1, batch_size=images.shape[0], amp=s.amp, channels_last=s.amp, compile=compiled,
            deterministic=False, preset="campaign-smoke")
        res = train(model, images, labels, config=cfg, device=s.device, progress=False)
        rec.update(ok=bool(math.isfinite(res.records[0].train_loss)), loss=res.records[0].train_loss)
    except Exception as exc:  # noqa: BLE001 - the point is to list every failure
        rec.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


# ------------------------------------------------------------------------------------------------
# phase 2: speed


def _tiled(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    reps = -(-n // len(labels))
    return np.tile(images, (reps, 1, 1, 1))[:n], np.tile(labels, reps)[:n]


def _baseline_loop(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, s: Settings, batch: int,
                   steps: int, adversarial: bool, workers: int) -> float:
    """img/s of a plain loop: torchvision DataLoader + per-sample PIL crop/flip/ToTensor (bench_training's)."""
    from bench_training import bench_dataloader

    return bench_dataloader(model, images, labels, s.device, batch, workers, steps, 2, s.amp, adversarial=adversarial)


def _ours(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, s: Settings, batch: int,
          adversarial: bool, amp: bool) -> float:
    from cifar10s.training.adversarial import AdversarialConfig

    cfg = TrainConfig(epochs=2, batch_size=batch, augmentation="standard", amp=amp, channels_last=amp,
                      schedule="constant", drop_last=True, deterministic=False,
                      adversarial=AdversarialConfig() if adversarial else None)
    res = train(model, images, labels, config=cfg, device=s.device, progress=False)
    return res.records[-1].images_per_sec  # the first epoch warms up (allocator, cuDNN autotune)


def phase_speed(s: Settings) -> tuple[dict[str, Any], list[str]]:
    t_phase = time.perf_counter()
    src = load_cifar10(s.data)
    n_train = 512 if s.dry_run else 10_000
    images, labels = _tiled(src.train_images, src.train_labels, n_train)
    batch = 64 if s.dry_run else 128
    width = 8 if s.dry_run else 64
    workers = 0 if s.dry_run else min(8, os.cpu_count() or 1)
    out: dict[str, Any] = {"images": n_train, "batch": batch, "resnet18_width": width, "dataloader_workers": workers}
    lines = ["| ResNet-18 training | ours (on-device, bf16 + channels-last) | DataLoader + PIL loop, same model/batch | "
             "ratio | ours, float32 (paper preset) |", "| --- | --- | --- | --- | --- |"]
    from cifar10s.models.resnet import resnet18

    for adversarial in (False, True):
        key = "at" if adversarial else "standard"
        torch.manual_seed(0)
        base = resnet18(width=width)
        steps = 4 if s.dry_run else (60 if adversarial else 200)
        n_ours = images[: steps * batch] if adversarial else images
        ours = _ours(copy.deepcopy(base), n_ours, labels[: len(n_ours)], s, batch, adversarial, s.amp)
        ours_fp32 = _ours(copy.deepcopy(base), n_ours, labels[: len(n_ours)], s, batch, adversarial, False)
        model_b = copy.deepcopy(base).to(s.device)
        if s.amp:
            model_b = model_b.to(memory_format=torch.channels_last)
        base_rate = _baseline_loop(model_b, images, labels, s, batch, steps, adversarial, workers)
        out[key] = {"ours_img_s": ours, "ours_fp32_img_s": ours_fp32, "baseline_img_s": base_rate,
                    "ratio": ours / base_rate}
        label = "PGD-10 AT" if adversarial else "standard"
        lines.append(f"| {label} | {ours:,.0f} img/s | {base_rate:,.0f} img/s | {ours / base_rate:.2f}x | "
                     f"{ours_fp32:,.0f} img/s |")

    # EM: seconds per round of the v1 recipe on 50,000 images (the subset tiled), and the projection.
    # A round on 10,000 images first; the 50,000-image round only if it fits what is left of the
    # budget (the search and evaluation scale with the images, the generator window does not).
    from cifar10s.em import generate_em_noise
    from cifar10s.em.config import EMConfig

    changes: dict[str, Any] = {"max_rounds": 1, "stop_error": 0.0}
    if s.dry_run:
        changes.update(generator_width=4, batch_size=64, eval_batch_size=64, pgd_steps=1, train_steps=1)
    cfg = EMConfig.from_dict({**load_recipe("v1").em.to_dict(), **changes})

    def em_round(n: int) -> tuple[float, list[dict[str, Any]]]:
        imgs, labs = _tiled(src.train_images, src.train_labels, n)
        t0 = time.perf_counter()
        res = generate_em_noise(imgs, labs, cfg, device=s.device, progress=False,
                                **_with_allow_slow(generate_em_noise, allow_slow=True))
        return float(res.log[-1].get("seconds", time.perf_counter() - t0)), res.log

    full = 256 if s.dry_run else 50_000
    first_n = 128 if s.dry_run else 10_000
    first_s, first_log = em_round(first_n)
    left = s.budget_s - (time.perf_counter() - t_phase)
    if first_s * full / first_n < 0.8 * left:
        seconds, log, how = *em_round(full), "measured"
    else:
        seconds, log, how = first_s * full / first_n, first_log, f"extrapolated from {first_n:,} images"
    out["em"] = {"images": full, "seconds_per_round": seconds, "how": how, "first_round_includes_warmup": True,
                 f"seconds_per_round_{first_n}": first_s, "round_log": log, "config": cfg.to_dict()}
    rounds_known = _em_rounds_from_phase(s)
    proj = (f"{rounds_known} rounds (measured by phase em on the subset) x {seconds:.0f} s = "
            f"{rounds_known * seconds / 3600:.1f} h" if rounds_known else "rounds to convergence: see phase em")
    lines += ["", f"EM, v1 recipe ({'tiny dry-run config' if s.dry_run else 'unchanged'}), {full:,} images: "
              f"{seconds:.1f} s for one round ({how}; the first round, cuDNN warm-up included); projected: {proj}"]
    out["em"]["projection"] = proj

    # OPS: the search is numpy on the host (model-free), timed on 50,000 images
    n_ops = 2_000 if s.dry_run else 50_000
    ops_images, ops_labels = _tiled(src.train_images, src.train_labels, n_ops)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        search_shortcuts(ops_images, ops_labels)
        times.append(time.perf_counter() - t0)
    out["ops"] = {"images": n_ops, "seconds_best_of_3": min(times), "where": "host CPU (numpy)"}
    lines += [f"OPS search, {n_ops:,} images: {min(times):.3f} s (best of 3; numpy on the host's CPU)"]
    return out, lines


def _em_rounds_from_phase(s: Settings) -> int | None:
    m = s.root / "cifar10s-v1" / "em" / "manifest.json"
    if m.is_file():
        em = json.loads(m.read_text()).get("em") or {}
        return int(em["rounds"]) if em.get("converged") and em.get("rounds") else None
    return None


# ------------------------------------------------------------------------------------------------
# phase 3: EM for real


def _recipe(s: Settings) -> Any:
    if not s.dry_run:
        return load_recipe("v1")
    from cifar10s.store import atomic_write_json

    raw = load_recipe("v1").to_dict()
    raw["version"] = "campaign-dry-run"
    raw["em"].update(generator_width=4, batch_size=64, eval_batch_size=64, pgd_steps=1, train_steps=1, max_rounds=2)
    path = s.root / "recipe-dry-run.json"
    s.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, raw)
    return load_recipe(str(path))


def phase_em(s: Settings) -> tuple[dict[str, Any], list[str]]:
    recipe = _recipe(s)
    t0 = time.perf_counter()
    kwargs = _with_allow_slow(build_variant, allow_slow=True, allow_unconverged=s.dry_run)
    build_variant(s.root, VariantSpec("cifar10s"), cifar10=s.data, recipe=recipe, device=str(s.device),
                  progress=not s.dry_run, **kwargs)
    seconds = time.perf_counter() - t0
    em_folder = open_folder(s.root / "cifar10s-v1" / "em", check_hashes=False)
    manifest = em_folder.manifest
    log = json.loads((em_folder.path / "em_log.json").read_text())
    em = manifest["em"]
    trend = [round(float(r.get("eval_acc", float("nan"))), 4) for r in log]
    out = {"recipe": recipe.to_dict(), "em": em, "seconds_this_call": seconds,
           "seconds_in_manifest": manifest.get("timings_s", {}).get("em"), "accuracy_by_round": trend,
           "num_train": em_folder.source.num_train, "official_cifar10": em_folder.source.official}
    lines = [f"recipe {recipe.version} on {out['num_train']:,} training images: "
             f"{'converged' if em.get('converged') else 'NOT converged'} after {em.get('rounds')} rounds, "
             f"generator accuracy {em.get('final_accuracy')}, EM time {out['seconds_in_manifest']} s",
             "", f"accuracy by round: {trend}"]
    return out, lines


# ------------------------------------------------------------------------------------------------
# phases 4-5: the effect and the Table 4 grid


def _load_split(s: Settings, kind: str) -> tuple[np.ndarray, np.ndarray]:
    ds = CIFAR10S(s.root, train=True, variant=kind, mmap=False)
    return np.asarray(ds.data), np.asarray(ds.targets)


def _train_and_score(s: Settings, kind: str, method: str, epochs: int, evaluator: Evaluator,
                     augmentation: str | None = None) -> dict[str, Any]:
    images, labels = _load_split(s, kind)
    config = paper_config("resnet18", method).replace(epochs=epochs, preset="campaign", eval_every=max(1, epochs))
    if augmentation is not None:
        config = config.replace(augmentation=augmentation)
    if s.dry_run:
        config = config.replace(train_subset=128, batch_size=64)
    torch.manual_seed(0)
    model = build_model("resnet18", **({"width": 4} if s.dry_run else {}))
    t0 = time.perf_counter()
    res = train(model, images, labels, config=config, device=s.device, progress=False, evaluator=evaluator)
    spec = VariantSpec(kind)
    # the paper's row only where its settings ran (the other augmentation variant is not the paper's)
    paper = [] if augmentation is not None else [c.to_dict() for c in compare("resnet18", method, spec,
                                                                               [res.final_test_acc])]
    diff = diff_from_paper(config, "resnet18")
    return {"training_set": kind, "method": method, "augmentation": config.augmentation, "epochs": epochs, "final_test_acc": res.final_test_acc,
            "final_train_acc": res.final_train_acc, "seconds": time.perf_counter() - t0,
            "epoch_seconds": [r.train_time for r in res.records], "precision": res.precision,
            "differs_from_paper": diff, "paper": paper}


def _evaluator(s: Settings) -> Evaluator:
    test = CIFAR10S(s.root, train=False, mmap=False)
    return Evaluator(np.asarray(test.data), np.asarray(test.targets), batch_size=500)


def _ensure_built(s: Settings, kinds: tuple[str, ...]) -> list[str]:
    """Build the cheap variants; EM-based ones exist only if phase em ran (never started here)."""
    have = []
    for kind in kinds:
        if kind in ("clean", "ops"):
            build_variant(s.root, VariantSpec(kind), cifar10=s.data, progress=False)
        folder = s.root / "cifar10s-v1" / VariantSpec(kind).folder_name
        if (folder / "manifest.json").is_file():
            have.append(kind)
    return have


def _epochs_for(budget_s: float, n_runs: int, epoch_s: float, dry_run: bool) -> int:
    if dry_run:
        return 1
    return max(1, int(budget_s * 0.85 / max(n_runs, 1) / max(epoch_s, 1e-3)))


def _probe_epoch_seconds(s: Settings, evaluator: Evaluator, method: str = "standard") -> float:
    probe = _train_and_score(s, "clean", method, 1, evaluator)
    return float(probe["epoch_seconds"][0])


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| training set | method | augmentation | epochs | clean test acc | train acc | "
             "paper (200 epochs, full CIFAR-10) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        paper = "; ".join(f"Table {p['table'][-1]}: {p['test_acc']}%" for p in r["paper"]) or "—"
        train_acc = "—" if r["final_train_acc"] is None else f"{100 * r['final_train_acc']:.1f}%"
        lines.append(f"| {r['training_set']} | {r['method']} | {r['augmentation']} | {r['epochs']} | "
                     f"{100 * r['final_test_acc']:.2f}% | "
                     f"{train_acc} | {paper} |")
    return lines


def phase_effect(s: Settings) -> tuple[dict[str, Any], list[str]]:
    kinds = tuple(_ensure_built(s, TRAINING_SETS))
    evaluator = _evaluator(s)
    t0 = time.perf_counter()
    epoch_s = _probe_epoch_seconds(s, evaluator)
    budget = s.budget_s - (time.perf_counter() - t0)
    epochs = _epochs_for(budget, len(kinds), epoch_s, s.dry_run)
    rows = [_train_and_score(s, kind, "standard", epochs, evaluator) for kind in kinds]
    missing = [k for k in TRAINING_SETS if k not in kinds]
    lines = _table(rows) + (["", f"not built (run phase em first): {', '.join(missing)}"] if missing else [])
    return {"epoch_seconds_probe": epoch_s, "epochs": epochs, "runs": rows, "missing": missing}, lines


def phase_grid(s: Settings) -> tuple[dict[str, Any], list[str]]:
    kinds = tuple(_ensure_built(s, TRAINING_SETS))
    evaluator = _evaluator(s)
    # standard training is phase effect's; the dry run keeps every method but one training set
    cells = [(k, m, a) for m, a in GRID_METHODS for k in (kinds[-1:] if s.dry_run else kinds)
             if s.dry_run or (m, a) != ("standard", None)]
    t0 = time.perf_counter()
    epoch_s = _probe_epoch_seconds(s, evaluator, "at")  # the dearest method sets the pace
    epochs = _epochs_for(s.budget_s - (time.perf_counter() - t0), len(cells), epoch_s, s.dry_run)
    rows = []
    for kind, method, augmentation in cells:
        if time.perf_counter() - t0 > s.budget_s * 0.9:
            break
        rows.append(_train_and_score(s, kind, method, epochs, evaluator, augmentation))
    skipped = len(cells) - len(rows)
    lines = _table(rows) + (["", f"{skipped} cell(s) did not fit in the budget"] if skipped else [])
    return {"epochs": epochs, "runs": rows, "cells_skipped": skipped}, lines


def phase_sandbox(s: Settings) -> tuple[dict[str, Any], list[str]]:
    """One tiny submission scored with its children in the sandbox, on this device; then the fast
    path's GPU tests (CUDA graphs in EM and in training), which the CPU skips."""
    boxed = _sandboxed_score(s)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "on_gpu",
           "tests/test_gpu_fast_paths.py", *(["--collect-only"] if s.dry_run else [])]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(60.0, s.budget_s))
    last = [ln for ln in r.stdout.strip().splitlines() if ln.strip()][-1:] or [""]
    tests = {"command": " ".join(cmd[1:]), "returncode": r.returncode, "summary": last[0],
             "seconds": round(time.perf_counter() - t0, 1), "tail": r.stdout[-3000:]}
    return {"sandboxed_score": boxed, "fast_path_gpu_tests": tests}, [
        f"sandboxed one-batch score on {s.device}: " + (
            "ok, " + json.dumps(boxed.get("sandbox")) if boxed["ok"] else f"FAILED: {boxed['error']}"),
        "", f"fast-path GPU tests: {tests['summary']}"]


def phase_compile(s: Settings) -> tuple[dict[str, Any], list[str]]:
    """``torch.compile`` of every model for one batch (ResNet-18 first), while the budget lasts."""
    t0 = time.perf_counter()
    images = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(16) % 10
    models = ["lenet5"] if s.dry_run else sorted(MODELS, key=lambda m: (m != "resnet18", m))
    runs, not_tried = [], []
    for name in models:
        if runs and time.perf_counter() - t0 > 0.8 * s.budget_s:
            not_tried.append(name)
            continue
        # the dry run does not compile (a minute on a CPU; tests/test_cpu_fast_paths.py compiles)
        runs.append(_one_batch(name, "standard", not s.dry_run, images, labels, s))
    lines = [f"- {r['model']}: {'ok' if r['ok'] else 'FAILED ' + r['error']} ({r['seconds']} s)" for r in runs]
    if not_tried:
        lines.append(f"- not tried (budget): {', '.join(not_tried)}")
    return {"one_batch": runs, "compile_not_tried": not_tried}, lines


RUNNERS: dict[str, Callable[[Settings], tuple[dict[str, Any], list[str]]]] = {
    "smoke": phase_smoke, "speed": phase_speed, "em": phase_em, "effect": phase_effect, "grid": phase_grid,
    **FAST_RUNNERS, "sandbox": phase_sandbox, "compile": phase_compile,
}


# ------------------------------------------------------------------------------------------------


def run_phase(phase: str, s: Settings, out: Path) -> dict[str, Any]:
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.perf_counter()
    results, lines = RUNNERS[phase](s)
    record = {"phase": phase, "started_utc": started, "seconds": round(time.perf_counter() - t0, 1),
              "dry_run": s.dry_run, "budget_s": s.budget_s, "environment": environment(s.device),
              "data": str(s.data), "results": results}
    lines.append(f"\n({record['seconds']:.0f} s{', dry run on ' + str(s.device) if s.dry_run else ''})")
    write_phase(out, phase, record, lines)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="CIFAR-10 archive (the shared subset, copied into "
                    "a git-ignored folder of the checkout)")
    ap.add_argument("--out", type=Path, required=True, help="results folder, e.g. benchmarks/results/DATE-GPU")
    ap.add_argument("--phases", default=",".join(PHASES[:5]), help="comma-separated, from " + ", ".join(PHASES)
                    + "; the next campaign's: " + ",".join(NEXT_CAMPAIGN))
    ap.add_argument("--root", type=Path, default=None, help="data root for built variants (default: <out>/../"
                    ".campaign-data, git-ignored, reused by later phases)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds a phase may spend (the EM phase "
                    "ignores it: it resumes when run again)")
    ap.add_argument("--device", default=None, help="default: cuda (cpu for --dry-run)")
    ap.add_argument("--dry-run", action="store_true", help="every phase with tiny settings on the CPU")
    args = ap.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        ap.error(f"unknown phase(s) {unknown}; valid: {', '.join(PHASES)}")
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("CUDA is not available here: run with --dry-run (CPU, tiny settings) or on a GPU machine")
    root = args.root or (args.out.parent / ".campaign-data")
    s = Settings(device=device, dry_run=args.dry_run, budget_s=args.budget, root=root, data=args.data, out=args.out)
    if args.dry_run:
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    for phase in phases:
        print(f"== phase {phase}", flush=True)
        rec = run_phase(phase, s, args.out)
        print(f"   done in {rec['seconds']:.0f} s -> {args.out / (phase + '.json')}", flush=True)
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
