"""Table 1's shuffled evaluation sets: every image's perturbation moves, with its label, to another image.

Section 3.1 of the paper asks whether a model trained on perturbed data reads the images or
the perturbations. One random permutation ``pi`` of the image indices is drawn, and image ``j``
of the shuffled set is ``clean_j + delta_pi(j)`` with the label ``y_pi(j)``, where
``delta_i = perturbed_i - clean_i`` is image i's own perturbation. Perturbation and label travel
together, so a model that follows the perturbation still scores well, while a model that reads
the image content meets labels unrelated to it and scores at chance (0.1 for ten balanced
classes). The shuffled set is an **evaluation** set; nothing is trained on it.

How a perturbation moves depends on what it is:

* EM noise is additive: ``delta_i`` is computed in int16, added to ``clean_j`` and clipped to
  [0, 255] (the clip only acts where ``clean_j`` is near 0 or 255).
* The OPS shortcut replaces pixels: by the paper's equation 4 the perturbation of class k on an
  image x is ``xi_k sigma_k - x sigma_k``, so on ``clean_j`` it writes the colour of class
  ``y_pi(j)`` at that class's position(s), whatever ``clean_j`` holds there.
* CIFAR-10-S (EM + OPS) moves both: the additive part, then the OPS pixel(s) of ``y_pi(j)``.

:func:`shuffle_perturbations` is the pure function; :func:`shuffled_variant` applies it to a
built variant; :func:`export_shuffled` / :func:`load_shuffled` write and read the set as a
folder of ``.npy`` files with a sha256 manifest. The experiment itself (train, evaluate, print
beside the paper) is :mod:`.run`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import __version__
from ..constants import DATA_FORMAT_VERSION
from ..dataset import CIFAR10S
from ..onepixel import ShortcutSearch, apply_shortcuts
from ..folder import open_folder
from ..release.builders import load_shortcut, variant_folder
from ..runtime import derive_seed
from ..store import EVAL_IMAGES, EVAL_LABELS, MANIFEST, atomic_write_json, save_array
from ..variants import VariantSpec, parse_variant

__all__ = [
    "DEFINITION",
    "EXPORT_FILES",
    "EXPORT_KIND",
    "ShuffledSet",
    "export_shuffled",
    "load_perturbed",
    "load_shuffled",
    "shuffle_permutation",
    "shuffle_perturbations",
    "shuffle_spec",
    "shuffled_variant",
]

#: ``kind`` recorded in an exported folder's manifest
EXPORT_KIND = "table1-shuffled-eval-set"
IMAGES, LABELS, PERMUTATION = EVAL_IMAGES, EVAL_LABELS, "permutation.npy"
EXPORT_FILES = (IMAGES, LABELS, PERMUTATION)
DEFINITION = (
    "image j = clip(clean_j + perturbed_pi(j) - clean_pi(j), 0, 255), then (OPS variants) the shortcut "
    "pixel(s) of class y_pi(j); label j = y_pi(j); pi = numpy.random.default_rng("
    "cifar10s.runtime.derive_seed('table1-shuffle', seed)).permutation(N)"
)


class ShuffledSet(NamedTuple):
    """A shuffled evaluation set, in the original image order.

    ``images[j]`` is clean image j carrying the perturbation of image ``permutation[j]``;
    ``labels[j]`` is that image's label ``y[permutation[j]]``.
    """

    images: np.ndarray
    labels: np.ndarray
    permutation: np.ndarray


def shuffle_permutation(n: int, seed: int) -> np.ndarray:
    """The seeded permutation ``pi`` of ``range(n)`` (int64), one per image, not per class."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(derive_seed("table1-shuffle", int(seed)))
    return rng.permutation(n).astype(np.int64)


def _check_inputs(clean: np.ndarray, perturbed: np.ndarray, labels: np.ndarray) -> None:
    if clean.dtype != np.uint8 or clean.ndim != 4:
        raise ValueError(f"clean images must be uint8 (N, H, W, C), got {clean.dtype} {clean.shape}")
    if perturbed.dtype != np.uint8 or perturbed.shape != clean.shape:
        raise ValueError(f"perturbed images must be uint8 {clean.shape} like the clean ones, "
                         f"got {perturbed.dtype} {perturbed.shape}")
    if labels.shape != (clean.shape[0],):
        raise ValueError(f"labels must have shape ({clean.shape[0]},), got {labels.shape}")


def shuffle_perturbations(clean: np.ndarray, perturbed: np.ndarray, labels: np.ndarray, seed: int, *,
                          shortcut: ShortcutSearch | None = None) -> ShuffledSet:
    """Move every image's perturbation and label to another image (see the module docstring).

    ``clean``/``perturbed``: uint8 ``(N, H, W, C)`` of the same images, ``labels`` their labels;
    ``shortcut``: the OPS search of the perturbed set, whose pixels are written as colours rather
    than added as differences (``None`` for EM noise alone).
    """
    clean, perturbed = np.asarray(clean), np.asarray(perturbed)
    labels = np.asarray(labels)
    _check_inputs(clean, perturbed, labels)
    labels = labels.astype(np.int64)
    perm = shuffle_permutation(len(labels), seed)
    moved = perturbed[perm].astype(np.int16)
    moved -= clean[perm]  # delta_pi(j), exact in int16
    moved += clean
    np.clip(moved, 0, 255, out=moved)
    images = moved.astype(np.uint8)
    del moved
    new_labels = labels[perm]
    if shortcut is not None:
        images = apply_shortcuts(images, new_labels, shortcut)
    return ShuffledSet(images, new_labels, perm)


def shuffle_spec(variant: str | VariantSpec) -> VariantSpec:
    """The variant to shuffle; ``clean`` is refused (it has no perturbation to move)."""
    spec = variant if isinstance(variant, VariantSpec) else parse_variant(variant)
    if spec.kind == "clean":
        raise ValueError("the clean training set has no perturbation to shuffle; use em, ops, ops-kK or cifar10s")
    return spec


def load_perturbed(root: str | Path, variant: str | VariantSpec, *, clean: CIFAR10S | None = None,
                   verify: bool = True) -> tuple[CIFAR10S, CIFAR10S, ShortcutSearch | None]:
    """The clean and the perturbed training set of a built variant, and its OPS search if it has one.

    ``clean`` reuses an already loaded clean training set. Arrays are read into memory.
    """
    spec = shuffle_spec(variant)
    if clean is None:
        clean = CIFAR10S(root, train=True, variant="clean", verify=verify, mmap=False)
    perturbed = CIFAR10S(root, train=True, variant=spec, verify=verify, mmap=False)
    if clean.targets != perturbed.targets:
        raise ValueError(f"{spec.folder_name} and clean under {root} have different training labels; "
                         "rebuild them from the same CIFAR-10 copy (cifar10s build --force)")
    shortcut = load_shortcut(variant_folder(root, spec)) if spec.uses_ops else None
    return clean, perturbed, shortcut


def shuffled_variant(root: str | Path, variant: str | VariantSpec, seed: int = 0, *,
                     verify: bool = True) -> ShuffledSet:
    """The shuffled evaluation set of a built variant (``em``, ``ops``/``ops-kK`` or ``cifar10s``)."""
    clean, perturbed, shortcut = load_perturbed(root, variant, verify=verify)
    return shuffle_perturbations(clean.data, perturbed.data, np.asarray(clean.targets), seed, shortcut=shortcut)


def export_shuffled(root: str | Path, variant: str | VariantSpec, out_dir: str | Path, seed: int = 0) -> Path:
    """Write the shuffled evaluation set of ``variant`` to ``out_dir``; return the folder.

    Files: ``images.npy`` (N, H, W, C) uint8 in the original image order, ``labels.npy`` (N,)
    int64 (the moved labels), ``permutation.npy`` (N,) int64 (``pi``) and ``manifest.json``
    (sha256, shape and dtype of each array, the seed, the definition and the sha256 of the
    manifests of the data it was made from). Every file is written atomically and the manifest
    last, after any old one was removed, so a folder with a manifest is always complete.
    """
    spec = shuffle_spec(variant)
    clean, perturbed, shortcut = load_perturbed(root, spec)
    shuffled = shuffle_perturbations(clean.data, perturbed.data, np.asarray(clean.targets), seed,
                                     shortcut=shortcut)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    files = {name: save_array(out / name, array) for name, array in zip(EXPORT_FILES, shuffled)}
    source = perturbed.folder.source
    atomic_write_json(out / MANIFEST, {
        "format_version": DATA_FORMAT_VERSION,
        "kind": EXPORT_KIND,
        "created_unix": int(time.time()),
        "variant": spec.to_dict(),  # the shape every manifest uses
        "variant_folder": spec.folder_name,
        "seed": int(seed),
        "definition": DEFINITION,
        "num_images": int(len(shuffled.labels)),
        "classes": clean.folder.classes,
        "source": {"fingerprint": source.fingerprint, "official": source.official},
        "made_from": {
            "clean_manifest_sha256": clean.folder.manifest_sha256(),
            "variant_manifest_sha256": perturbed.folder.manifest_sha256(),
            "source_fingerprint": source.fingerprint,
            "official_cifar10": source.official,
        },
        "files": files,
        "cifar10s": __version__,
    })
    return out


def load_shuffled(folder: str | Path, *, verify: bool = True) -> tuple[ShuffledSet, dict[str, Any]]:
    """Read a folder written by :func:`export_shuffled` (sha256 of every array checked unless
    ``verify=False``); return the set and its manifest."""
    opened = open_folder(folder, check_hashes=verify, layout="evaluation-set")
    manifest = dict(opened.manifest)
    if manifest.get("kind") != EXPORT_KIND:
        raise ValueError(f"{folder} does not hold a shuffled evaluation set (manifest kind "
                         f"{manifest.get('kind')!r}); write one with `cifar10s shuffle --export`")
    arrays = (np.asarray(opened.load(name, mmap=False)) for name in EXPORT_FILES)
    return ShuffledSet(*arrays), manifest
