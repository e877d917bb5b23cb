"""The GPU campaign's fast-path phases: what one lent 15-minute GPU window should measure first.

Run through ``benchmarks/gpu_campaign.py --phases ...`` (or ``gpu_campaign_call.sh``), in this
order of value; each phase writes ``<phase>.json`` and its section of ``summary.md``:

1. ``emspeed``: one EM round of recipe v2 (bf16, TF32, channels-last, fused SGD, search batches of
   5,000) on 50,000 images (the subset tiled), and v1 (float32) beside it on 10,000 images with v2
   again on the same 10,000 (warm), so the ratio comes from one process; then, while the budget
   lasts, v2 with ``torch.compile`` and with CUDA graphs (two rounds each: the first pays the compile).
2. ``emeffect``: v1 and v2 noise on the same class-balanced images of the subset (as many as
   v1's measured speed lets converge in the budget), then ResNet-18 trained on each and on the
   clean images, two seeds, clean test accuracy: is v2's noise as effective as v1's?
3. ``trainspeed``: ResNet-18 training img/s, standard and PGD-10 AT: the DataLoader + PIL loop,
   our loop in eager mode and our GPU fast path (fused SGD, ``torch.compile``, CUDA graphs), the
   same model and batch in one process.
4. ``headline``: CIFAR-10-S of the subset built with recipe v2, then ResNet-18 with the paper's
   standard training on OPS, CIFAR-10-S, clean and EM, with as many epochs as fit (OPS first: its
   training accuracy must pass 90% for the OPS figure to mean anything).
5. ``defenses``: JPEG-10 and grayscale (ISS, Liu et al. 2023) on CIFAR-10-S and on clean.

JSON field names follow the first campaign's: ``results.em.seconds_per_round`` with
``results.em.images``; ``results.standard.ours_img_s``, ``baseline_img_s``, ``ratio``; per run
``model``, ``method``, ``training_set``, ``final_test_acc``. With ``--dry-run`` every phase runs
tiny on the CPU (the tests do), so none of this rots before a GPU comes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cifar10s.dataset import CIFAR10S
from cifar10s.em import generate_em_noise
from cifar10s.em.config import EMConfig
from cifar10s.em.quantize import apply_noise
from cifar10s.models import build_model
from cifar10s.runtime import derive_seed
from cifar10s.release.builders import build_variant
from cifar10s.release.recipe import Recipe, load_recipe
from cifar10s.sources.cifar10 import load_cifar10
from cifar10s.training.adversarial import AdversarialConfig
from cifar10s.training.config import TrainConfig
from cifar10s.training.evaluation import Evaluator
from cifar10s.training.presets import diff_from_paper, paper_config
from cifar10s.training.trainer import train
from cifar10s.variants import VariantSpec

FAST_PHASES = ("emspeed", "emeffect", "trainspeed", "headline", "defenses")
#: Wu et al. 2023, Table 4, ResNet-18, standard training, 200 epochs on full CIFAR-10 (clean test accuracy, %)
PAPER_STANDARD = {"clean": 94.01, "em": 19.58, "ops": 15.56, "cifar10s": 16.67}
#: Liu et al. (ICML 2023, ISS), JPEG-10 against EM and OPS alone, ResNet-18 (%), for comparison
ISS_JPEG10 = {"em": 81.50, "ops": 82.53}
#: rounds the first campaign's v1 run needed on the subset (2026-12-06), used until emeffect measures v2's
ASSUMED_ROUNDS = 8


def _tiled(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    reps = -(-n // len(labels))
    return np.tile(images, (reps, 1, 1, 1))[:n], np.tile(labels, reps)[:n]


def _balanced(labels: np.ndarray, n: int) -> np.ndarray:
    """The first ``n // 10`` images of each class (fewer if a class has fewer), in index order."""
    per = max(1, n // 10)
    picks = [np.flatnonzero(labels == c)[:per] for c in range(10)]
    return np.sort(np.concatenate(picks))


def _left(s: Any, t0: float) -> float:
    return s.budget_s - (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:600]


# ------------------------------------------------------------------------------------------------
# EM


def em_config(version: str, s: Any, **changes: Any) -> EMConfig:
    """Recipe ``version``'s EM config; tiny on a dry run (same switches, CPU-sized network and steps)."""
    raw = load_recipe(version).em.to_dict()
    if s.dry_run:
        raw.update(generator_width=4, batch_size=32, eval_batch_size=64, pgd_steps=1, train_steps=1)
        if raw.get("search_batch_size"):
            raw["search_batch_size"] = 64
    raw.update(changes)
    return EMConfig.from_dict(raw)


def em_rounds(cfg: EMConfig, images: np.ndarray, labels: np.ndarray, s: Any, rounds: int = 1) -> dict[str, Any]:
    """``rounds`` EM rounds (no stop), timed per round by the run's own log."""
    cfg = dataclasses.replace(cfg, max_rounds=rounds, stop_error=0.0)
    _sync(s.device)
    t0 = time.perf_counter()
    res = generate_em_noise(images, labels, cfg, device=s.device, progress=False, allow_slow=True)
    wall = time.perf_counter() - t0
    log = res.log
    return {"images": int(len(images)), "seconds_per_round": float(log[-1]["seconds"]),
            "seconds_by_round": [round(float(r["seconds"]), 3) for r in log],
            "seconds_train": float(log[-1]["seconds_train"]), "seconds_search": float(log[-1]["seconds_search"]),
            "seconds_eval": float(log[-1]["seconds_eval"]),
            "images_x_pgd_steps_per_s": float(log[-1]["images_x_pgd_steps_per_s"]),
            "wall_s_with_setup": round(wall, 2), "numerics": res.extra.get("numerics"), "config": cfg.to_dict()}


def phase_emspeed(s: Any) -> tuple[dict[str, Any], list[str]]:
    t0 = time.perf_counter()
    src = load_cifar10(s.data)
    full, part = (128, 64) if s.dry_run else (50_000, 10_000)
    big = _tiled(src.train_images, src.train_labels, full)
    small = _tiled(src.train_images, src.train_labels, part)
    v2, v1 = em_config("v2", s), em_config("v1", s)
    out: dict[str, Any] = {"note": "v2 first runs on the small set to pay cuDNN autotuning; every figure is one round"}
    out["em_v2_warmup"] = em_rounds(v2, *small, s)
    out["em"] = {**em_rounds(v2, *big, s), "recipe": "v2"}
    out["em_v2_small"] = {**em_rounds(v2, *small, s), "recipe": "v2"}
    out["em_v1_small"] = {**em_rounds(v1, *small, s), "recipe": "v1"}
    ratio = out["em_v1_small"]["seconds_per_round"] / max(out["em_v2_small"]["seconds_per_round"], 1e-9)
    out["ratio"] = ratio
    per_round = out["em"]["seconds_per_round"]
    out["projected_build_s"] = ASSUMED_ROUNDS * per_round
    lines = [f"| EM, one round | images | seconds | images x PGD steps / s |", "| --- | --- | --- | --- |"]
    for key, label in (("em", "v2"), ("em_v2_small", "v2 (warm)"), ("em_v1_small", "v1 (float32)")):
        r = out[key]
        lines.append(f"| {label} | {r['images']:,} | {r['seconds_per_round']:.2f} | {r['images_x_pgd_steps_per_s']:,.0f} |")
    lines += ["", f"v1 / v2 on {part:,} images: **{ratio:.2f}x**; v2 on {full:,} images: {per_round:.1f} s per round; "
              f"a build of {ASSUMED_ROUNDS} rounds (the first campaign's v1 count on the subset; emeffect measures "
              f"v2's): ~{ASSUMED_ROUNDS * per_round:.0f} s"]
    # the optional levers, while the budget lasts: two rounds each (the first pays the compile)
    variants = {}
    for name, changes in (("compile", {"compile": True}), ("compile+cuda_graphs", {"compile": True, "cuda_graphs": True})):
        need = 3 * out["em_v2_small"]["seconds_per_round"] + 60
        if s.dry_run:  # compiling the ResNet-18 generator takes minutes on a CPU (tests compile a small one)
            variants[name] = {"skipped": "dry run"}
            continue
        if _left(s, t0) < need:
            variants[name] = {"skipped": f"budget: {_left(s, t0):.0f} s left, ~{need:.0f} s needed"}
            continue
        try:
            variants[name] = em_rounds(em_config("v2", s, **changes), *small, s, rounds=2)
        except Exception as exc:  # noqa: BLE001 - recorded: the GPU says whether it compiles
            variants[name] = {"error": _error(exc)}
        r = variants[name]
        lines.append(f"- v2 + {name}, {part:,} images: " + (
            f"rounds {r['seconds_by_round']} s (first includes compiling); {json.dumps(r['numerics'])}"
            if "seconds_by_round" in r else r.get("error", "")))
    out["variants"] = variants
    return out, lines


def _round_model(out_dir: Path, key: str) -> tuple[float, float] | None:
    """(fixed seconds, seconds per image) of one EM round, from emspeed's record of ``key``."""
    try:
        rec = json.loads((out_dir / "emspeed.json").read_text())["results"][key]
        return float(rec["seconds_train"]), (rec["seconds_search"] + rec["seconds_eval"]) / rec["images"]
    except (OSError, KeyError, ValueError, TypeError, ZeroDivisionError):
        return None


def _effect_images(s: Any, budget_s: float) -> int:
    """How many images v1 can take through ASSUMED_ROUNDS rounds in ~45% of the budget."""
    if s.dry_run:
        return 60
    if os.environ.get("EM_EFFECT_IMAGES"):
        return int(os.environ["EM_EFFECT_IMAGES"])
    model = _round_model(s.out, "em_v1_small")
    if model is None:
        return 2_000
    for n in (10_000, 5_000, 2_000):
        if ASSUMED_ROUNDS * (model[0] + n * model[1]) <= 0.45 * budget_s:
            return n
    return 1_000


def _round_cap(s: Any, key: str, n: int, seconds: float) -> int:
    """Rounds of an EM run on ``n`` images that fit in ``seconds`` (emspeed's figures; 10 without them)."""
    if s.dry_run:
        return 2
    model = _round_model(s.out, key)
    if model is None:
        return 10
    return max(1, min(40, int(seconds / (model[0] + n * model[1]))))


def _train_run(s: Any, images: np.ndarray, labels: np.ndarray, evaluator: Evaluator, *, training_set: str,
               epochs: int, seed: int = 0, method: str = "standard", defense: str | None = None,
               compile_model: bool = False) -> dict[str, Any]:
    cfg = paper_config("resnet18", method).replace(
        epochs=epochs, preset="campaign-fast", eval_every=max(1, epochs), seed=seed, amp=s.amp,
        channels_last=s.amp, deterministic=not s.amp, compile=compile_model)
    if defense == "jpeg":
        cfg = cfg.replace(defense="jpeg", defense_kwargs={"quality": 10})
    elif defense:
        cfg = cfg.replace(defense=defense)
    if s.dry_run:
        cfg = cfg.replace(batch_size=32)
    cfg = cfg.replace(model_name="resnet18")
    torch.manual_seed(derive_seed(seed, "init"))  # as train() seeds a model it builds by name
    model = build_model("resnet18", **({"width": 4} if s.dry_run else {}))
    t0 = time.perf_counter()
    res = train(model, images, labels, config=cfg, device=s.device, progress=False, evaluator=evaluator)
    return {"model": "resnet18", "method": method, "training_set": training_set, "defense": defense,
            "seed": seed, "epochs": epochs, "images": int(len(labels)), "final_test_acc": res.final_test_acc,
            "final_train_acc": res.final_train_acc, "seconds": round(time.perf_counter() - t0, 2),
            "epoch_seconds": [round(r.train_time, 3) for r in res.records], "precision": res.precision,
            "fast_path": res.environment.get("fast_path"), "differs_from_paper": diff_from_paper(cfg, "resnet18")}


def _evaluator(s: Any) -> Evaluator:
    src = load_cifar10(s.data)
    return Evaluator(src.test_images, src.test_labels, batch_size=1000)


def phase_emeffect(s: Any) -> tuple[dict[str, Any], list[str]]:
    t0 = time.perf_counter()
    src = load_cifar10(s.data)
    n = _effect_images(s, s.budget_s)
    idx = _balanced(src.train_labels, n)
    x, y = src.train_images[idx], src.train_labels[idx]
    out: dict[str, Any] = {"images": int(len(idx)), "noise": {}}
    noises = {}
    for version, key, share in (("v2", "em_v2_small", 0.2), ("v1", "em_v1_small", 0.45)):
        cfg = em_config(version, s)
        t1 = time.perf_counter()
        # a round cap from emspeed's timing: a run that does not converge within it says so
        cap = _round_cap(s, key, len(idx), share * s.budget_s)
        res = generate_em_noise(x, y, dataclasses.replace(cfg, max_rounds=cap), device=s.device, progress=False,
                                allow_slow=True)
        noises[version] = res.noise
        out["noise"][version] = {"round_cap": cap, "rounds": res.rounds, "converged": res.converged, "seconds": round(time.perf_counter() - t1, 1),
                                 "final_generator_acc": res.log[-1]["eval_acc"] if res.log else None,
                                 "numerics": res.extra.get("numerics")}
    same = float(np.mean(noises["v1"] == noises["v2"]))
    out["noise_agreement"] = {"identical_share": same, "mean_abs_diff_255": float(
        np.abs(noises["v1"].astype(np.int16) - noises["v2"].astype(np.int16)).mean())}
    evaluator = _evaluator(s)
    sets = {"clean": x, "em-v1": apply_noise(x, noises["v1"]), "em-v2": apply_noise(x, noises["v2"])}
    epoch_s = 0.0 if s.dry_run else _epoch_seconds(s, x, y, evaluator)
    epochs = 1 if s.dry_run else max(5, min(40, int(_left(s, t0) * 0.85 / 6 / epoch_s)))
    runs = []
    for seed in (0, 1):
        for name, images in sets.items():
            if not s.dry_run and _left(s, t0) < 10:
                break
            runs.append(_train_run(s, images, y, evaluator, training_set=name, epochs=epochs, seed=seed))
    out.update(epochs=epochs, runs=runs)
    lines = [f"{len(idx):,} class-balanced images of the subset; v1: {out['noise']['v1']['rounds']} rounds "
             f"(converged: {out['noise']['v1']['converged']}), v2: {out['noise']['v2']['rounds']} rounds "
             f"(converged: {out['noise']['v2']['converged']}); identical noise values {same:.3f}", "",
             "| training set | seed | epochs | clean test acc | train acc |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['training_set']} | {r['seed']} | {r['epochs']} | {100 * r['final_test_acc']:.2f}% | "
              f"{100 * (r['final_train_acc'] or 0):.1f}% |" for r in runs]
    return out, lines


# ------------------------------------------------------------------------------------------------
# training speed


def _ours(s: Any, model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int, adversarial: bool,
          fast: bool, epochs: int) -> dict[str, Any]:
    """Our loop's img/s in its last epoch (earlier ones warm up: allocator, autotuning, compiling)."""
    cfg = TrainConfig(epochs=epochs, batch_size=batch, augmentation="standard", amp=s.amp, channels_last=s.amp,
                      schedule="constant", drop_last=True, deterministic=not s.amp, compile=fast,
                      adversarial=AdversarialConfig() if adversarial else None)
    res = train(model, images, labels, config=cfg, device=s.device, progress=False)
    return {"img_s": res.records[-1].images_per_sec, "epoch_img_s": [round(r.images_per_sec) for r in res.records],
            "last_train_loss": res.records[-1].train_loss, "fast_path": res.environment.get("fast_path")}


def phase_trainspeed(s: Any) -> tuple[dict[str, Any], list[str]]:
    from bench_training import bench_dataloader

    from cifar10s.models.resnet import resnet18

    t0 = time.perf_counter()
    src = load_cifar10(s.data)
    n = 64 if s.dry_run else 10_000
    images, labels = _tiled(src.train_images, src.train_labels, n)
    batch, width = (16, 4) if s.dry_run else (128, 64)
    workers = 0 if s.dry_run else min(8, os.cpu_count() or 1)
    out: dict[str, Any] = {"images": n, "batch": batch, "resnet18_width": width, "dataloader_workers": workers}
    lines = ["| ResNet-18 | DataLoader + PIL | ours, eager | ours, fast path | ratio (best ours / DataLoader) |",
             "| --- | --- | --- | --- | --- |"]
    for adversarial in (False, True):
        key = "at" if adversarial else "standard"
        torch.manual_seed(0)
        base = resnet18(width=width)
        steps = 2 if s.dry_run else (40 if adversarial else 150)
        n_ours = steps * batch if adversarial else n
        x, y = images[:n_ours], labels[:n_ours]
        model_b = copy.deepcopy(base).to(s.device)
        if s.amp:
            model_b = model_b.to(memory_format=torch.channels_last)
        baseline = bench_dataloader(model_b, images, labels, s.device, batch, workers, steps, 2, s.amp,
                                    adversarial=adversarial)
        eager = _ours(s, copy.deepcopy(base), x, y, batch, adversarial, False, 2)
        rec: dict[str, Any] = {"baseline_img_s": baseline, "ours_eager_img_s": eager["img_s"], "eager": eager}
        if _left(s, t0) > (5 if s.dry_run else 45):
            try:  # the dry run does not compile (minutes on a CPU; tests/test_cpu_fast_paths.py compiles)
                fast = _ours(s, copy.deepcopy(base), x, y, batch, adversarial, not s.dry_run, 1 if s.dry_run else 3)
                rec.update(ours_fast_img_s=fast["img_s"], fast=fast)
            except Exception as exc:  # noqa: BLE001 - recorded: the GPU says whether the fast path runs
                rec["fast"] = {"error": _error(exc)}
        else:
            rec["fast"] = {"skipped": f"budget: {_left(s, t0):.0f} s left"}
        rec["ours_img_s"] = max(rec["ours_eager_img_s"], rec.get("ours_fast_img_s", 0.0))
        rec["ratio"] = rec["ours_img_s"] / baseline
        rec["epoch_of_50000_s"] = 50_000 / rec["ours_img_s"]
        out[key] = rec
        fast_txt = (f"{rec['ours_fast_img_s']:,.0f} img/s" if "ours_fast_img_s" in rec
                    else str(rec["fast"].get("error") or rec["fast"].get("skipped"))[:80])
        lines.append(f"| {'PGD-10 AT' if adversarial else 'standard'} | {baseline:,.0f} img/s | {eager['img_s']:,.0f} img/s | "
                     f"{fast_txt} | **{rec['ratio']:.2f}x** |")
    lines += ["", f"an epoch of 50,000 images at the best standard rate: {out['standard']['epoch_of_50000_s']:.2f} s"]
    return out, lines


# ------------------------------------------------------------------------------------------------
# the headline effect and the defenses


def _v2_recipe(s: Any) -> Recipe:
    if not s.dry_run:
        return load_recipe("v2")
    from cifar10s.store import atomic_write_json

    raw = load_recipe("v2").to_dict()
    raw["version"] = "v2-campaign-dry-run"
    raw["em"].update(generator_width=4, batch_size=32, eval_batch_size=64, search_batch_size=64, pgd_steps=1,
                     train_steps=1, max_rounds=2)
    path = s.root / "recipe-v2-dry-run.json"
    s.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, raw)
    return load_recipe(str(path))


def _sets(s: Any, kinds: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    recipe = _v2_recipe(s)
    out = {}
    for kind in kinds:
        build_variant(s.root, VariantSpec(kind), cifar10=s.data, recipe=recipe, device=str(s.device), progress=False,
                      allow_slow=True, allow_unconverged=True)
        ds = CIFAR10S(s.root, train=True, variant=kind, mmap=False)
        out[kind] = (np.asarray(ds.data), np.asarray(ds.targets))
    return out


def _epoch_seconds(s: Any, images: np.ndarray, labels: np.ndarray, evaluator: Evaluator) -> float:
    probe = _train_run(s, images, labels, evaluator, training_set="probe", epochs=1)
    return float(probe["epoch_seconds"][0]) + 0.2


def _run_table(runs: list[dict[str, Any]], paper: dict[str, float] | None = None) -> list[str]:
    lines = ["| training set | defense | epochs | clean test acc | train acc | paper (200 epochs, full CIFAR-10) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        ref = (paper or {}).get(r["training_set"])
        lines.append(f"| {r['training_set']} | {r['defense'] or '—'} | {r['epochs']} | {100 * r['final_test_acc']:.2f}% | "
                     f"{100 * (r['final_train_acc'] or 0):.1f}% | {'—' if ref is None else f'{ref}%'} |")
    return lines


def phase_headline(s: Any) -> tuple[dict[str, Any], list[str]]:
    t0 = time.perf_counter()
    sets = _sets(s, ("clean", "ops", "cifar10s", "em"))
    evaluator = _evaluator(s)
    built_s = time.perf_counter() - t0
    epoch_s = _epoch_seconds(s, *sets["clean"], evaluator)
    epochs = 1 if s.dry_run else max(10, min(80, int(_left(s, t0) * 0.85 / 4 / epoch_s)))
    if not s.dry_run and os.environ.get("HEADLINE_EPOCHS"):  # a second window can ask for more
        epochs = int(os.environ["HEADLINE_EPOCHS"])
    runs = []
    for kind in ("ops", "cifar10s", "clean", "em"):  # OPS first: its training accuracy is the condition
        if runs and not s.dry_run and _left(s, t0) < epochs * epoch_s:
            break
        runs.append(_train_run(s, *sets[kind], evaluator, training_set=kind, epochs=epochs))
    acc = {r["training_set"]: r for r in runs}
    out: dict[str, Any] = {"recipe": "v2", "build_seconds": round(built_s, 1), "epoch_seconds_probe": epoch_s,
                           "epochs": epochs, "runs": runs}
    ops = acc.get("ops")
    out["ops_train_acc_over_90"] = bool(ops and (ops["final_train_acc"] or 0) > 0.9)
    if "clean" in acc:
        for kind in ("ops", "cifar10s"):
            if kind in acc:
                out[f"clean_minus_{kind}_points"] = 100 * (acc["clean"]["final_test_acc"] - acc[kind]["final_test_acc"])
    em_manifest = json.loads((s.root / "cifar10s-v1" / "em" / "manifest.json").read_text())
    out["em_build"] = em_manifest.get("em")
    lines = [f"CIFAR-10-S of the subset with recipe v2 (EM: {out['em_build'].get('rounds')} rounds, converged: "
             f"{out['em_build'].get('converged')}; all builds {built_s:.0f} s); OPS training accuracy over 90%: "
             f"**{out['ops_train_acc_over_90']}**", "", *_run_table(runs, PAPER_STANDARD)]
    return out, lines


def phase_defenses(s: Any) -> tuple[dict[str, Any], list[str]]:
    t0 = time.perf_counter()
    sets = _sets(s, ("clean", "cifar10s"))
    evaluator = _evaluator(s)
    try:
        epochs = int(json.loads((s.out / "headline.json").read_text())["results"]["epochs"])
    except (OSError, KeyError, ValueError):
        epochs = 0
    epoch_s = 0.0 if s.dry_run else _epoch_seconds(s, *sets["clean"], evaluator) * 1.2  # grayscale/JPEG cost a little
    fit = 1 if s.dry_run else max(5, int(_left(s, t0) * 0.8 / 4 / epoch_s))
    epochs = min(epochs, fit) if epochs else fit
    runs = []
    for kind in ("cifar10s", "clean"):
        for defense in ("jpeg", "grayscale"):
            if runs and not s.dry_run and _left(s, t0) < epochs * epoch_s:
                break
            runs.append(_train_run(s, *sets[kind], evaluator, training_set=kind, epochs=epochs, defense=defense))
    lines = [*_run_table(runs), "", f"literature (ISS, Liu et al. 2023, ResNet-18, JPEG-10): EM {ISS_JPEG10['em']}%, "
             f"OPS {ISS_JPEG10['ops']}%; on CIFAR-10-S nobody has measured it before"]
    return {"epochs": epochs, "jpeg_quality": 10, "runs": runs}, lines


FAST_RUNNERS = {"emspeed": phase_emspeed, "emeffect": phase_emeffect, "trainspeed": phase_trainspeed,
                "headline": phase_headline, "defenses": phase_defenses}
