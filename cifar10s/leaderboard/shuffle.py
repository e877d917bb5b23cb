"""The shuffle experiment (paper Table 1): move each class's shortcut to another class, labels following.

The question is whether a model relies on the perturbation or on the image. A fixed class
permutation ``sigma`` is drawn as a derangement, so ``sigma[c] != c`` for every class. Every
image of true class ``c`` then gets the shortcut of class ``sigma[c]`` and the label
``sigma[c]``. The label follows the shortcut, so shortcut and label stay consistent, but both now
disagree with the image content.

* OPS (:func:`shuffle_ops`): the shortcut pixel(s) of class ``sigma[c]`` are written into the
  *clean* image, and the image's own class pixel is not applied.
* Any additive perturbation, such as EM noise (:func:`shuffle_additive`): the noise of an image
  ``i`` of class ``sigma[c]`` (``perturbed_i - clean_i``) is added to the clean image ``j`` of
  class ``c``, clipped to [0, 255]. Donors are a seeded random matching within class
  ``sigma[c]``; each donor is used once when the classes have equal sizes.
* CIFAR-10-S (EM + OPS, :func:`shuffle_variant`): the additive shuffle of the whole
  perturbation, followed by the OPS pixel of class ``sigma[c]``.

Two measurements use these sets:

* :func:`shortcut_reliance`: a model's accuracy on a shuffled set w.r.t. the shortcut's class
  (high means the model follows the shortcut) and w.r.t. the true image class (high means it
  reads the image). Because ``sigma`` is a derangement, the two cannot both be 1.
* :func:`run_shuffle_experiment`: Table 1's layout. Train once on the unshuffled and once on
  the shuffled training set, then score both on the clean test set. The unshuffled model's
  reliance is also measured on the shuffled set.

The paper's exact shuffle protocol could not be checked against its text in this session (see
docs/leaderboard.md). This module follows the definition above.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..onepixel import ShortcutSearch, apply_shortcuts
from ..release.builders import load_shortcut
from ..store import (
    TRAIN_IMAGES,
    TRAIN_LABELS,
    atomic_write_json,
    clean_folder,
    load_array,
    variant_folder,
    verify_folder,
)
from ..variants import VariantSpec, parse_variant

__all__ = [
    "ShuffledSet",
    "derangement",
    "run_shuffle_experiment",
    "shortcut_reliance",
    "shuffle_additive",
    "shuffle_ops",
    "shuffle_variant",
]


@dataclass(frozen=True)
class ShuffledSet:
    """Training images whose shortcut (and label) was moved to another class.

    ``labels`` are the shortcut's classes (the labels to train with); ``true_labels`` the classes
    of the image contents; ``permutation[c]`` the shortcut class given to images of class c;
    ``donor[j]`` (additive shuffles) the image whose perturbation image j received.
    """

    images: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray
    permutation: np.ndarray
    donor: np.ndarray | None = None
    kind: str = ""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "permutation": [int(v) for v in self.permutation],
                "num_images": int(len(self.labels))}


def derangement(num_classes: int, seed: int = 0) -> np.ndarray:
    """A seeded random permutation of ``range(num_classes)`` with no fixed point."""
    if num_classes < 2:
        raise ValueError("a shuffle needs at least 2 classes")
    rng = np.random.default_rng([seed, 0x5F_0B5])
    while True:
        perm = rng.permutation(num_classes)
        if not np.any(perm == np.arange(num_classes)):
            return perm.astype(np.int64)


def _check(images: np.ndarray, labels: np.ndarray, permutation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    permutation = np.asarray(permutation).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    k = len(permutation)
    if sorted(permutation.tolist()) != list(range(k)):
        raise ValueError(f"permutation must be a permutation of range({k}), got {permutation.tolist()}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k})")
    return images, labels, permutation


def shuffle_ops(clean_images: np.ndarray, labels: np.ndarray, search: ShortcutSearch,
                permutation: np.ndarray) -> ShuffledSet:
    """Give every clean image of class c the OPS pixel(s) of class ``permutation[c]``, and that label."""
    clean_images, labels, permutation = _check(clean_images, labels, permutation)
    moved = permutation[labels]
    images = apply_shortcuts(clean_images, moved, search)
    return ShuffledSet(images, moved, labels, permutation, None, kind="ops")


def shuffle_additive(clean_images: np.ndarray, perturbed_images: np.ndarray, labels: np.ndarray,
                     permutation: np.ndarray, seed: int = 0) -> ShuffledSet:
    """Add the perturbation of an image of class ``permutation[c]`` to each clean image of class c.

    The perturbation of image i is ``perturbed_i - clean_i`` (int16). Image j of class c gets a
    donor i of class ``permutation[c]`` (seeded random matching, cycled if class c has more images
    than the donor class) and the label ``permutation[c]``.
    """
    clean_images, labels, permutation = _check(clean_images, labels, permutation)
    perturbed_images = np.asarray(perturbed_images)
    if perturbed_images.shape != clean_images.shape or perturbed_images.dtype != np.uint8:
        raise ValueError("perturbed_images must be uint8 with the same shape as clean_images")
    noise = perturbed_images.astype(np.int16) - clean_images.astype(np.int16)
    rng = np.random.default_rng([seed, 0xD0_0A])
    donor = np.empty(len(labels), dtype=np.int64)
    for c in range(len(permutation)):
        targets = np.flatnonzero(labels == c)
        if targets.size == 0:
            continue
        pool = np.flatnonzero(labels == permutation[c])
        if pool.size == 0:
            raise ValueError(f"class {int(permutation[c])} has no images to take a perturbation from")
        pool = rng.permutation(pool)
        donor[targets] = pool[np.arange(targets.size) % pool.size]
    images = np.clip(clean_images.astype(np.int16) + noise[donor], 0, 255).astype(np.uint8)
    return ShuffledSet(images, permutation[labels], labels, permutation, donor, kind="additive")


def shuffle_variant(root: str | Path, variant: str | VariantSpec, *, seed: int = 0,
                    permutation: np.ndarray | None = None) -> ShuffledSet:
    """The shuffled training set of a built variant (``ops``/``ops-kK``, ``em`` or ``cifar10s``)."""
    spec = variant if isinstance(variant, VariantSpec) else parse_variant(variant)
    if spec.kind == "clean":
        raise ValueError("the clean training set has no shortcut to shuffle")
    cdir = clean_folder(root)
    cman = verify_folder(cdir, check_hashes=True)
    clean = np.asarray(load_array(cdir, TRAIN_IMAGES, cman, mmap=False))
    labels = np.asarray(load_array(cdir, TRAIN_LABELS, cman, mmap=False)).astype(np.int64)
    vdir = variant_folder(root, spec)
    vman = verify_folder(vdir, check_hashes=True)
    if vman["source"]["fingerprint"] != cman["source"]["fingerprint"]:
        raise ValueError(f"{vdir} and {cdir} were built from different CIFAR-10 sources")
    num_classes = len(cman["classes"])
    perm = derangement(num_classes, seed) if permutation is None else np.asarray(permutation, dtype=np.int64)
    if spec.kind == "ops":
        out = shuffle_ops(clean, labels, load_shortcut(vdir), perm)
        return ShuffledSet(out.images, out.labels, out.true_labels, out.permutation, None, kind=spec.folder_name)
    perturbed = np.asarray(load_array(vdir, TRAIN_IMAGES, vman, mmap=False))
    out = shuffle_additive(clean, perturbed, labels, perm, seed=seed)
    images = out.images
    if spec.uses_ops:  # CIFAR-10-S: the moved EM noise, then the OPS pixel of the shortcut class
        images = apply_shortcuts(images, out.labels, load_shortcut(vdir))
    return ShuffledSet(images, out.labels, out.true_labels, out.permutation, out.donor, kind=spec.folder_name)


def shortcut_reliance(model: nn.Module, shuffled: ShuffledSet, *, device: torch.device | str | None = None,
                      batch_size: int = 1000) -> dict[str, Any]:
    """Accuracy on a shuffled set w.r.t. the shortcut's class and w.r.t. the true image class."""
    from .scoring import predict

    images = torch.from_numpy(np.ascontiguousarray(shuffled.images))
    preds = predict(model, images, device=device, batch_size=batch_size).numpy()
    n = len(preds)
    return {
        "acc_shortcut_label": float((preds == shuffled.labels).mean()) if n else float("nan"),
        "acc_true_label": float((preds == shuffled.true_labels).mean()) if n else float("nan"),
        "num_images": n,
    }


def run_shuffle_experiment(
    root: str | Path,
    variant: str | VariantSpec = "ops",
    *,
    model: str = "resnet18",
    method: str = "standard",
    preset: str = "paper",
    seeds: Sequence[int] = (0,),
    shuffle_seed: int = 0,
    device: torch.device | str | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Table 1 for one variant; with ``checkpoint`` only the reliance of that trained model.

    ``checkpoint`` is a ``state_dict`` of the registered ``model`` (e.g. ``model.pt`` from a
    scoring work folder), evaluated on the shuffled and the unshuffled training sets.
    Otherwise, for each seed, a model is trained on the unshuffled and on the shuffled set
    (``preset`` + ``method``). Both are scored on the clean test set, and the unshuffled one is
    also measured for shortcut reliance.
    """
    from cifar10s.dataset import CIFAR10S
    from cifar10s.models import build_model
    from cifar10s.training.presets import diff_from_paper, resolve_preset
    from cifar10s.runtime import derive_seed
    from cifar10s.training.checkpoint import load_checkpoint
    from cifar10s.training.trainer import train

    from .baselines import train_set_name
    from .scoring import (
        HeldOutScorer,
        _resolve_device,
        code_version,
        dataset_provenance,
    )

    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    spec = variant if isinstance(variant, VariantSpec) else parse_variant(variant)
    dev = _resolve_device(device)
    shuffled = shuffle_variant(root, spec, seed=shuffle_seed)
    unshuffled = CIFAR10S(root, train=True, variant=spec)
    base_images = np.array(unshuffled.data, copy=True)
    base_labels = np.asarray(unshuffled.targets, dtype=np.int64)
    result: dict[str, Any] = {
        "format": "cifar10s-shuffle-result", "format_version": 1,
        "dataset": dataset_provenance(root, spec), "code": code_version(), "model": model, "method": method,
        "shuffle": {**shuffled.describe(), "seed": shuffle_seed,
                    "definition": "images of class c get the shortcut of class permutation[c] and label "
                                  "permutation[c] (cifar10s.leaderboard.shuffle)"},
        "device": str(dev),
    }
    if checkpoint is not None:
        net = build_model(model)
        net.load_state_dict(load_checkpoint(checkpoint))
        net.to(dev)
        reliance = shortcut_reliance(net, shuffled, device=dev)
        preds_ok = shortcut_reliance(net, ShuffledSet(base_images, base_labels, base_labels,
                                                      np.arange(len(shuffled.permutation))), device=dev)
        result.update({"checkpoint": str(checkpoint), "reliance": reliance,
                       "unshuffled_train_acc": preds_ok["acc_true_label"]})
        say(f"{model} from {checkpoint} on shuffled {spec.folder_name}: accuracy w.r.t. the shortcut's class "
            f"{100 * reliance['acc_shortcut_label']:.2f}%, w.r.t. the true class {100 * reliance['acc_true_label']:.2f}% "
            f"(unshuffled training accuracy {100 * preds_ok['acc_true_label']:.2f}%)")
    else:
        from .baselines import compare, format_comparison, lookup

        runs: list[dict[str, Any]] = []
        work = Path(workdir) if workdir is not None else (Path(out) / ".work" if out is not None else None)
        config0 = None
        for seed in seeds:
            config = resolve_preset(preset, model, method=method, seed=int(seed), **(overrides or {}))
            config0 = config0 or config
            scorer = HeldOutScorer(root, batch_size=config.eval_batch_size, subset=config.eval_subset)
            entry: dict[str, Any] = {"seed": int(seed)}
            for setting, images, labels in (("unshuffled", base_images, base_labels),
                                            ("shuffled", shuffled.images, shuffled.labels)):
                torch.manual_seed(derive_seed(int(seed), "init"))
                net = build_model(model, num_classes=config.num_classes)
                wd = work / f"shuffle-{spec.folder_name}-{model}-{method}-{preset}" / setting / f"seed-{seed}" if work else None
                res = train(net, images, labels, config=config, device=dev, workdir=wd, progress=progress,
                            evaluator=scorer)
                entry[setting] = {"final_test_acc": scorer.full(net), "best_test_acc": res.best_test_acc,
                                  "best_epoch": res.best_epoch, "train_time_s": res.total_time}
                if setting == "unshuffled":
                    entry[setting]["reliance_on_shuffled"] = shortcut_reliance(net, shuffled, device=dev)
            runs.append(entry)
            say(f"seed {seed}: clean test accuracy trained on unshuffled {spec.folder_name} "
                f"{100 * entry['unshuffled']['final_test_acc']:.2f}%, on shuffled "
                f"{100 * entry['shuffled']['final_test_acc']:.2f}%; unshuffled model on shuffled images: "
                f"{100 * entry['unshuffled']['reliance_on_shuffled']['acc_shortcut_label']:.2f}% follow the "
                f"shortcut, {100 * entry['unshuffled']['reliance_on_shuffled']['acc_true_label']:.2f}% the image")
        diff = diff_from_paper(config0, model) if config0 is not None else {}
        diff.pop("seed", None)
        result.update({"preset": preset, "preset_diff": diff, "seeds": [int(s) for s in seeds], "runs": runs})
        paper = []
        ts = train_set_name(spec)
        for setting in ("unshuffled", "shuffled"):
            # a model without a Table 1 row is compared with the ResNet-18 row, flagged as a reference
            ref = model if lookup(model, method, ts, setting=setting) else None
            comps = compare(ref, method, ts, [r[setting]["final_test_acc"] for r in runs], setting=setting)
            paper.extend(c.to_dict() for c in comps)
            for line in format_comparison(comps):
                say("  " + line)
        result["paper"] = paper
    result["wall_time_s"] = time.perf_counter() - t0
    if out is not None:
        name = f"shuffle--{spec.folder_name}--{model}" + ("--checkpoint" if checkpoint is not None else f"--{preset}")
        path = Path(out) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, result)
        result["_path"] = str(path)
        say(f"wrote {path}")
    return result
