"""``croissant.json``: Croissant 1.1 metadata (MLCommons) of a release, with its Responsible-AI fields.

A release folder (see :mod:`.publish`) can be carried by any host that takes files plus metadata
(Zenodo, Kaggle, OpenML, a lab mirror, the Hugging Face Hub). This module describes it in the
format dataset reviewers check (the ``mlcroissant`` validator):

* every file of the release as a ``cr:FileObject`` with its sha256 and size, addressed relative to
  ``croissant.json`` (so the folder works wherever it is put);
* one ``cr:RecordSet`` per variant and split (``<variant>-train``, and ``test`` for the clean test
  split every variant shares) read from the Parquet copy: an ``image`` field (``sc:ImageObject``,
  the lossless PNG bytes) and a ``label`` field (``sc:Integer``) that references ``classes``, a
  record set holding CIFAR-10's ten class names inline;
* license and citations (CIFAR-10, the One-Pixel Shortcut paper, Unlearnable Examples);
* the RAI fields that apply, each a statement that is true of every release this package writes,
  plus what the manifests say (source, recipe).

Only :mod:`json` is needed to write it; ``mlcroissant`` (the ``croissant`` extra) reads it back.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..constants import DATA_FORMAT_VERSION
from .card import CITATIONS
from .parquet import TEST, TEST_CONFIG, TRAIN, ParquetSplit

__all__ = ["CROISSANT", "croissant_metadata"]

#: File name of the metadata in a release.
CROISSANT = "croissant.json"
CROISSANT_SPEC = "http://mlcommons.org/croissant/1.1"
RAI_SPEC = "http://mlcommons.org/croissant/RAI/1.0"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
PAPER_URL = "https://arxiv.org/abs/2205.12141"  # as in cifar10s/paper/baselines.json

_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "equivalentProperty": "cr:equivalentProperty",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_MIME = {".npy": "application/x-npy", ".json": "application/json", ".parquet": "application/x-parquet",
         ".md": "text/markdown"}

_KIND_WORDS = {
    "clean": "clean CIFAR-10 training images, unchanged",
    "ops": "the One-Pixel Shortcut alone",
    "em": "error-minimizing noise alone",
    "cifar10s": "CIFAR-10-S: error-minimizing noise with the One-Pixel Shortcut on top",
}

LICENSE = (
    "No explicit license. The images are CIFAR-10's (Krizhevsky, 2009), which its authors released "
    f"without a license ({CIFAR10_URL}); use them on CIFAR-10's terms and cite it. The perturbations "
    "follow the One-Pixel Shortcut (Wu et al., ICLR 2023) and Unlearnable Examples (Huang et al., ICLR 2021)."
)

RAI_COLLECTION = (
    "No new data was collected. The images come from CIFAR-10 (60,000 colour images of 32x32 pixels in "
    "ten classes), which Krizhevsky (2009) selected and labelled by hand from the 80 Million Tiny Images "
    "collection (Torralba et al., 2008: images found by searching the web for nouns). Every variant of "
    "this release is derived from one CIFAR-10 copy, named by its fingerprint in each manifest.json."
)

RAI_USE_CASES = (
    "Intended: benchmarking defenses against unlearnable or shortcut-poisoned training data (train on a "
    "perturbed variant, report accuracy on the clean test split), and studying shortcut learning. "
    "Out of scope: training a model meant to recognise CIFAR-10's classes (the perturbed training sets "
    "are made to prevent exactly that; use the clean variant or CIFAR-10 itself); claims about "
    "protecting images other than these, or about privacy: the perturbations target the models and "
    "training methods studied in the paper, and some training methods recover part of the accuracy "
    "(the paper's Table 4: ResNet-18 reaches 39.62% clean test accuracy with RandAugment on CIFAR-10-S, "
    "and 83.02% with L-inf adversarial training on error-minimizing noise alone)."
)

RAI_LIMITATIONS = (
    "CIFAR-10's own limits hold: ten classes of objects and animals, 32x32 pixels, images gathered from "
    "the web for the 80 Million Tiny Images collection. "
    "How unlearnable a variant is depends on the model and the training method, and was measured by "
    "the paper on the official CIFAR-10 with the schedules it gives; a release built from another "
    "CIFAR-10 copy (see 'official' in the manifests' source record) gives numbers not comparable with "
    "the paper's. Error-minimizing noise computed again on other hardware is not bit-identical."
)

RAI_PERSONAL = (
    "No personal or sensitive information was collected or added: the only annotation is the class "
    "label (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck). As in CIFAR-10, "
    "some images may show people incidentally (for example beside a vehicle or on a horse); nothing "
    "was done to find or remove them."
)


def _preprocessing(manifests: Mapping[str, Mapping[str, Any]]) -> str:
    """How each variant's training images were made, from its manifest."""
    parts = []
    for name in sorted(manifests):
        m = manifests[name]
        spec = m.get("variant") if isinstance(m.get("variant"), Mapping) else {}
        kind = str(spec.get("kind", name))
        text = f"{name}: {_KIND_WORDS.get(kind, kind)}"
        if kind in ("ops", "cifar10s"):
            text += (f" ({spec.get('pixels', 1)} pixel(s) per class set to a corner colour, chosen by the "
                     f"'{spec.get('objective', 'mean-std')}' search on the clean training images)")
        recipe = m.get("recipe")
        if kind in ("em", "cifar10s") and isinstance(recipe, Mapping):
            text += f"; EM recipe '{recipe.get('version')}'"
            if isinstance(recipe.get("description"), str):
                text += f": {recipe['description'][:600]}"
        parts.append(text)
    return (
        "Training images are CIFAR-10's training split with a perturbation per variant; the test split "
        "is CIFAR-10's test split, unchanged. " + " | ".join(parts) + ". Arrays are stored as uint8 .npy "
        "files (images N x 32 x 32 x 3, labels int64); the Parquet copy holds the same pixels as "
        "lossless PNG."
    )


def _file_object(path: str, sha256: str, size: int) -> dict[str, Any]:
    suffix = path[path.rfind("."):] if "." in path else ""
    return {"@type": "cr:FileObject", "@id": path, "name": path, "contentUrl": path, "contentSize": f"{size} B",
            "encodingFormat": _MIME.get(suffix, "application/octet-stream"), "sha256": sha256}


def _record_set(rs_id: str, description: str, parquet_path: str) -> dict[str, Any]:
    def source(column: str) -> dict[str, Any]:
        return {"fileObject": {"@id": parquet_path}, "extract": {"column": column}}

    return {
        "@type": "cr:RecordSet", "@id": rs_id, "name": rs_id, "description": description,
        "field": [
            {"@type": "cr:Field", "@id": f"{rs_id}/image", "name": "image", "dataType": "sc:ImageObject",
             "description": "32x32 RGB image (lossless PNG)",
             "source": {**source("image"), "transform": {"jsonPath": "bytes"}}},
            {"@type": "cr:Field", "@id": f"{rs_id}/label", "name": "label", "dataType": "sc:Integer",
             "description": "class index into the 'classes' record set",
             "references": {"field": {"@id": "classes/index"}}, "source": source("label")},
        ],
    }


def _classes(class_names: Sequence[str]) -> dict[str, Any]:
    return {
        "@type": "cr:RecordSet", "@id": "classes", "name": "classes",
        "description": "CIFAR-10's class names by label index", "key": {"@id": "classes/index"},
        "field": [
            {"@type": "cr:Field", "@id": "classes/index", "name": "index", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": "classes/name", "name": "name", "dataType": "sc:Text"},
        ],
        "data": [{"classes/index": i, "classes/name": c} for i, c in enumerate(class_names)],
    }


def croissant_metadata(
    manifests: Mapping[str, Mapping[str, Any]],
    parquet: Mapping[str, Mapping[str, ParquetSplit]],
    files: Mapping[str, tuple[str, int]],
    *,
    class_names: Sequence[str],
    url: str | None = None,
    published: _dt.date | None = None,
) -> dict[str, Any]:
    """The Croissant JSON-LD of a release.

    ``manifests``: the public manifest of each variant folder; ``parquet``: the Parquet copy
    (:func:`cifar10s.hub.parquet.write_release_parquet`); ``files``: ``{path in the release:
    (sha256, bytes)}`` of every file to list; ``url``: where the release lives, if known;
    ``published``: the day it is written or uploaded (default: today, UTC).
    """
    if not manifests or not parquet:
        raise ValueError("Croissant metadata needs the variants' manifests and their Parquet copy")
    missing = [p for config in parquet.values() for p in (s.path for s in config.values()) if p not in files]
    if missing:
        raise ValueError(f"the Parquet files {', '.join(sorted(set(missing)))} are not among the listed files")
    created = [int(m["created_unix"]) for m in manifests.values() if isinstance(m.get("created_unix"), int)]
    source = manifests.get(TEST_CONFIG, next(iter(manifests.values()))).get("source") or {}
    official = bool(source.get("official"))
    record_sets = [_classes(class_names)]
    for name in sorted(parquet, key=lambda n: (n != TEST_CONFIG, n)):
        record_sets.append(_record_set(f"{name}-train", f"training split of variant {name}: "
                                       f"{_KIND_WORDS.get(str((manifests[name].get('variant') or {}).get('kind')), name)}",
                                       parquet[name][TRAIN].path))
    test_path = next(iter(parquet.values()))[TEST].path
    record_sets.append(_record_set("test", "the clean CIFAR-10 test split, shared by every variant", test_path))
    meta: dict[str, Any] = {
        "@context": _CONTEXT,
        "@type": "sc:Dataset",
        "name": "CIFAR-10-S",
        "conformsTo": [CROISSANT_SPEC, RAI_SPEC],
        "description": (
            "CIFAR-10-S, the unlearnable training set of 'One-Pixel Shortcut: on the Learning Preference of "
            "Deep Neural Networks' (Wu, Chen, Xie, Huang; ICLR 2023): CIFAR-10's training images with "
            "error-minimizing noise and a One-Pixel Shortcut, and the variants with one of them or neither; "
            "the test split is the clean CIFAR-10 test set. Variants in this release: "
            + ", ".join(sorted(manifests)) + "."
            + ("" if official else " NOT built from the official CIFAR-10 archive: numbers measured on it are "
               "not comparable with the paper's.")
        ),
        "version": f"{DATA_FORMAT_VERSION}.0.0",
        "license": LICENSE,
        "citeAs": CITATIONS.replace("```bibtex\n", "").replace("```", "").strip(),
        "isBasedOn": [CIFAR10_URL, PAPER_URL],
        "keywords": ["unlearnable examples", "shortcut learning", "data poisoning", "one-pixel shortcut",
                     "CIFAR-10", "image classification"],
        "creator": {"@type": "sc:Organization", "name": "cifar10s developers"},
        "rai:dataCollection": RAI_COLLECTION,
        "rai:dataCollectionType": ["Secondary Data Analysis"],
        "rai:dataPreprocessingProtocol": [_preprocessing(manifests)],
        "rai:dataUseCases": [RAI_USE_CASES],
        "rai:dataLimitations": [RAI_LIMITATIONS],
        "rai:personalSensitiveInformation": [RAI_PERSONAL],
        "distribution": [_file_object(p, sha, size) for p, (sha, size) in sorted(files.items())],
        "recordSet": record_sets,
    }
    if url:
        meta["url"] = url
    if created:  # the newest build among the variants
        meta["dateCreated"] = _dt.datetime.fromtimestamp(max(created), _dt.timezone.utc).strftime("%Y-%m-%d")
    meta["datePublished"] = (published or _dt.datetime.now(_dt.timezone.utc).date()).isoformat()
    return meta
