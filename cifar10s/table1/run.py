"""Table 1's shuffle experiment: train on clean, EM and OPS data, evaluate on five sets, print beside the paper.

The paper (Section 3.1, Table 1) trains three ResNet-18s, on clean CIFAR-10, on EM data and
on OPS data, and evaluates each on the clean, EM and OPS training sets and on the shuffled EM
and OPS sets of :mod:`.shuffle`. A model that reads the images scores about 10% on a shuffled
set (paper: 9.97 / 9.82); a model that follows the perturbation scores far above chance
(48.97% EM-trained on shuffled EM, 72.43% OPS-trained on shuffled OPS).

:func:`run_table1` runs that layout for any list of perturbed variants: one model per training
set (clean + each variant), each evaluated on the clean training set, every variant's training
set and every variant's shuffled set, plus the clean test set (not part of Table 1). With the
default ``("em", "ops")`` it is exactly Table 1's 3 x 5 grid; ``cifar10s`` adds CIFAR-10-S.
Accuracy on a set is plain top-1 accuracy of the model in eval mode.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..dataset import CIFAR10S
from ..models import build_model
from ..runtime import derive_seed, resolve_device
from ..store import atomic_write_json
from ..training.presets import diff_from_paper, resolve_preset
from ..training.checkpoint import load_checkpoint
from ..training.config import TrainConfig
from ..training.evaluation import Evaluator, evaluate
from ..training.normalization import attach_if_saved_with_it
from ..training.trainer import train
from ..variants import VariantSpec
from .shuffle import DEFINITION, load_perturbed, shuffle_perturbations, shuffle_spec

__all__ = ["PAPER_TABLE1", "PAPER_TABLE1_SOURCE", "format_table1", "run_table1"]

RESULT_FORMAT = "cifar10s-table1-result"
CLEAN_TEST = "clean-test"

#: Table 1's layout in this module's names: evaluating data (rows) and the training data of
#: the evaluated ResNet-18 (columns), as the paper prints them.
_TABLE1_ROWS = {"clean-train": "clean", "em-train": "em", "ops-train": "ops-k1",
                "shuffled-em-train": "shuffled-em", "shuffled-ops-train": "shuffled-ops-k1"}
_TABLE1_COLUMNS = {"clean": "clean", "em": "em", "ops": "ops-k1"}



def split_provenance(ds: CIFAR10S) -> dict[str, Any]:
    """Which images a loaded split holds: its folder's manifest sha256 and source, and its size.

    The shuffle experiment records this for every set it trains or evaluates on (the test split's
    folder is ``clean/``).
    """
    source = ds.folder.source
    return {
        "manifest_sha256": ds.folder.manifest_sha256(),
        "source_fingerprint": source.fingerprint,
        "source_content_fingerprint": source.content_fingerprint,
        "source_kind": source.kind,
        "official_cifar10": source.official,
        "num_images": int(len(ds.targets)),
    }

def _paper_table1() -> dict[str, dict[str, float | None]]:
    """``[evaluating data][training data]`` -> accuracy (%) from the stored Table 1; None for '-'."""
    from ..paper import rows

    grid: dict[str, dict[str, float | None]] = {
        r: {c: None for c in _TABLE1_COLUMNS.values()} for r in _TABLE1_ROWS.values()}
    for cell in rows("table1"):
        grid[_TABLE1_ROWS[cell.evaluated_on]][_TABLE1_COLUMNS[cell.train_set]] = cell.accuracy
    return grid


#: Wu et al. (ICLR 2023), Table 1 "Shuffle experiments on EM & OPS data", read from baselines.json.
PAPER_TABLE1 = _paper_table1()
PAPER_TABLE1_SOURCE = ("Wu et al., One-Pixel Shortcut, ICLR 2023, Table 1 (ResNet-18; rows: evaluating data, "
                       "columns: training data of the model; null: '-' in the paper)")


def _row_label(name: str) -> str:
    if name == CLEAN_TEST:
        return "clean test (not in Table 1)"
    if name.startswith("shuffled-"):
        return f"shuffled {name[len('shuffled-'):]} training"
    return f"{name} training"


def _column_label(train_set: str, model: str) -> str:
    return f"{'normal' if train_set == 'clean' else train_set}-{model}"


def _summary(values: Sequence[float]) -> dict[str, Any]:
    n = len(values)
    mean = float(np.mean(values)) if n else math.nan
    std = float(np.std(values, ddof=1)) if n > 1 else 0.0
    return {"values": [float(v) for v in values], "mean": mean, "std": std, "n": n}


def _paper_cell(row: str, column: str) -> tuple[bool, float | None]:
    """(whether Table 1 has this cell, its value; None for '-')."""
    if row in PAPER_TABLE1 and column in PAPER_TABLE1[row]:
        return True, PAPER_TABLE1[row][column]
    return False, None


def _init_model(name: str, config: TrainConfig) -> nn.Module:
    """The registered model with the initial weights the trainer would draw for ``config.seed``,
    without touching the caller's global torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "init"))
        return build_model(name, num_classes=config.num_classes)


def _load_weights(model: nn.Module, path: Path) -> None:
    state = load_checkpoint(path)
    if isinstance(state, dict) and "model" in state and "format" in state:  # a trainer checkpoint.pt
        state = state["model"]
    attach_if_saved_with_it(model, state).load_state_dict(state)


def _check_args(variants: Sequence[str | VariantSpec], seeds: Sequence[int], overrides: Mapping[str, Any],
                checkpoints: Mapping[str, Any]) -> list[VariantSpec]:
    specs = [shuffle_spec(v) for v in variants]
    names = [s.folder_name for s in specs]
    if not specs:
        raise ValueError("give at least one perturbed variant to shuffle (em, ops, ops-kK, cifar10s)")
    if len(set(names)) != len(names):
        raise ValueError(f"variants listed twice: {names}")
    if not seeds:
        raise ValueError("give at least one seed")
    for key in ("seed", "method"):
        if key in overrides:
            raise ValueError(f"set {key!r} with the seeds / method arguments, not as an override")
    unknown = set(checkpoints) - {"clean", *names}
    if unknown:
        raise ValueError(f"checkpoints for {sorted(unknown)}: not a training set of this run "
                         f"(clean, {', '.join(names)})")
    if checkpoints and len(seeds) > 1:
        raise ValueError("a checkpoint is one trained model: run with a single seed when loading checkpoints")
    return specs


def run_table1(
    root: str | Path,
    *,
    variants: Sequence[str | VariantSpec] = ("em", "ops"),
    model: str = "resnet18",
    method: str = "standard",
    preset: str = "paper",
    seeds: Sequence[int] = (0,),
    shuffle_seed: int = 0,
    device: torch.device | str | None = None,
    workdir: str | Path | None = None,
    out: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    checkpoints: Mapping[str, str | Path] | None = None,
    progress: bool = False,
    log: Callable[[str], Any] | None = print,
) -> dict[str, Any]:
    """Train (or load) one model per training set, evaluate each on every set, return the result.

    * ``variants``: the perturbed training sets (built under ``root``); the clean one is always
      added. Models are ``model`` trained with ``resolve_preset(preset, model, method=method,
      seed=seed, **overrides)``, once per seed.
    * ``workdir``: per-run checkpoints ``<workdir>/table1--<model>--<method>--<preset>/<train
      set>/seed-<k>/`` (default ``<out>/.work``); a finished run found there is loaded instead
      of retrained, an interrupted one resumes.
    * ``checkpoints``: ``{train set: path}`` of trained weights (a ``state_dict`` such as a
      work folder's ``model.pt``, or a trainer ``checkpoint.pt``) to evaluate instead of
      training; single seed only.
    * ``out``: folder for ``table1--<model>--<method>--<preset>.json`` (written atomically).

    The table is printed through ``log`` beside Table 1's numbers; accuracies in the result are
    fractions, the paper's are percentages.
    """
    t0 = time.perf_counter()
    say = log or (lambda _m: None)
    overrides = dict(overrides or {})
    ckpts = {k: Path(v) for k, v in (checkpoints or {}).items()}
    specs = _check_args(variants, seeds, overrides, ckpts)
    dev = resolve_device(device)

    clean = CIFAR10S(root, train=True, variant="clean", verify=True, mmap=False)
    test = CIFAR10S(root, train=False, verify=True, mmap=False)
    labels = np.asarray(clean.targets, dtype=np.int64)
    train_sets: dict[str, np.ndarray] = {"clean": clean.data}
    perturbed_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {"clean": (clean.data, labels)}
    shuffled_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    data = {"clean": split_provenance(clean), CLEAN_TEST: split_provenance(test)}
    shuffles: dict[str, Any] = {}
    for spec in specs:
        name = spec.folder_name
        _, perturbed, shortcut = load_perturbed(root, spec, clean=clean)
        shuffled = shuffle_perturbations(clean.data, perturbed.data, labels, shuffle_seed, shortcut=shortcut)
        train_sets[name] = perturbed.data
        perturbed_rows[name] = (perturbed.data, labels)
        shuffled_rows[f"shuffled-{name}"] = (shuffled.images, shuffled.labels)
        data[name] = split_provenance(perturbed)
        shuffles[name] = {
            "permutation_sha256": hashlib.sha256(shuffled.permutation.tobytes()).hexdigest(),
            "unmoved_images": int(np.count_nonzero(shuffled.permutation == np.arange(len(labels)))),
        }
    eval_sets = {**perturbed_rows, **shuffled_rows, CLEAN_TEST: (test.data, np.asarray(test.targets, dtype=np.int64))}

    stem = f"table1--{model}--{method}--{preset}"
    base = Path(workdir) if workdir is not None else (Path(out) / ".work" if out is not None else None)
    accuracy: dict[str, dict[str, list[float]]] = {t: {e: [] for e in eval_sets} for t in train_sets}
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in train_sets}
    config0: TrainConfig | None = None
    for seed in seeds:
        config = resolve_preset(preset, model, method=method, seed=int(seed), **overrides)
        config0 = config0 or config
        evaluator = Evaluator(test.data, test.targets, batch_size=config.eval_batch_size, subset=config.eval_subset)
        for tname, images in train_sets.items():
            net = _init_model(model, config)
            run: dict[str, Any] = {"seed": int(seed)}
            if tname in ckpts:
                _load_weights(net, ckpts[tname])
                run["checkpoint"] = str(ckpts[tname])
            else:
                wd = base / stem / tname / f"seed-{seed}" if base is not None else None
                res = train(net, images, labels, config=config, device=dev, workdir=wd, progress=progress,
                            evaluator=evaluator)
                run.update({"epochs": len(res.records), "final_train_acc": res.final_train_acc,
                            "train_time_s": res.total_time, "resumed_from_epoch": res.resumed_from_epoch,
                            "workdir": str(wd) if wd is not None else None})
            net.to(dev)
            for ename, (eimages, elabels) in eval_sets.items():
                accuracy[tname][ename].append(evaluate(net, eimages, elabels, device=dev,
                                                       batch_size=config.eval_batch_size))
            runs[tname].append(run)
            say(f"seed {seed}, {model} trained on {tname}: " + ", ".join(
                f"{e} {100 * accuracy[tname][e][-1]:.2f}%" for e in eval_sets))

    assert config0 is not None
    preset_diff = diff_from_paper(config0, model)
    preset_diff.pop("seed", None)
    notes = []
    if model != "resnet18":
        notes.append(f"the paper's Table 1 is ResNet-18; {model} is compared with it as a reference only")
    if preset_diff:
        notes.append(f"preset {preset!r} differs from the paper's training settings in: "
                     f"{', '.join(sorted(preset_diff))}")
    if not all(d["official_cifar10"] for d in data.values()):
        notes.append("the data is not built from the official CIFAR-10 release")
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "format_version": 1,
        "created_unix": int(time.time()),
        "model": model,
        "method": method,
        "preset": preset,
        "preset_diff": preset_diff,
        "overrides": overrides,
        "seeds": [int(s) for s in seeds],
        "device": str(dev),
        "cifar10s": __version__,
        "shuffle": {"seed": int(shuffle_seed), "definition": DEFINITION, "variants": shuffles},
        "data": data,
        "train_sets": list(train_sets),
        "eval_sets": list(eval_sets),
        "accuracy": {t: {e: _summary(v) for e, v in row.items()} for t, row in accuracy.items()},
        "runs": runs,
        "paper": {"source": PAPER_TABLE1_SOURCE, "table1": PAPER_TABLE1},
        "notes": notes,
        "wall_time_s": time.perf_counter() - t0,
    }
    say(format_table1(result))
    if out is not None:
        path = Path(out) / f"{stem}.json"
        atomic_write_json(path, result)
        result["path"] = str(path)
        say(f"wrote {path}")
    return result


def format_table1(result: Mapping[str, Any]) -> str:
    """The result as Table 1: evaluation sets as rows, trained models as columns; each cell is
    our mean accuracy (%) with the paper's number in brackets ([-] where the paper has a dash)."""
    model = result["model"]
    trains, evals = result["train_sets"], result["eval_sets"]
    acc = result["accuracy"]
    heads = [_column_label(t, model) for t in trains]
    width = max(16, *(len(h) for h in heads))
    lines = [
        f"Table 1, shuffle experiment: accuracy (%) of {model} ({result['method']}, preset {result['preset']}, "
        f"mean over seeds {', '.join(map(str, result['seeds']))}); [paper, ResNet-18]",
        (f"{'evaluating data':<30}" + "".join(f" | {h:<{width}}" for h in heads)).rstrip(),
    ]
    for e in evals:
        cells = []
        for t in trains:
            ours = f"{100 * acc[t][e]['mean']:6.2f}"
            known, paper = _paper_cell(e, t)
            ref = "" if not known else (" [-]" if paper is None else f" [{paper:.2f}]")
            cells.append(f" | {ours + ref:<{width}}")
        lines.append((f"{_row_label(e):<30}" + "".join(cells)).rstrip())
    lines.extend(f"note: {n}" for n in result.get("notes", []))
    return "\n".join(lines)
