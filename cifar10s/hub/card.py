"""The dataset card (``README.md``) of a Hub release, generated from the variants' manifests."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import yaml

from .parquet import TEST, TRAIN, ParquetSplit
from ..constants import CLASSES

# --------------------------------------------------------------------------------------------
# Dataset card
# --------------------------------------------------------------------------------------------

CITATIONS = """\
```bibtex
@inproceedings{wu2023onepixel,
  title     = {One-Pixel Shortcut: On the Learning Preference of Deep Neural Networks},
  author    = {Wu, Shutong and Chen, Sizhe and Xie, Cihang and Huang, Xiaolin},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2023}
}

@inproceedings{huang2021unlearnable,
  title     = {Unlearnable Examples: Making Personal Data Unexploitable},
  author    = {Huang, Hanxun and Ma, Xingjun and Erfani, Sarah Monazam and Bailey, James and Wang, Yisen},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2021}
}

@techreport{krizhevsky2009learning,
  title       = {Learning Multiple Layers of Features from Tiny Images},
  author      = {Krizhevsky, Alex},
  institution = {University of Toronto},
  year        = {2009}
}
```
"""

_KIND_TEXT = {
    "clean": "clean CIFAR-10 (training split, and the test split shared by every variant)",
    "ops": "One-Pixel Shortcut only: one (or k) pixel(s) per class set to a fixed colour",
    "em": "error-minimizing (unlearnable-examples) noise only",
    "cifar10s": "CIFAR-10-S: error-minimizing noise plus the One-Pixel Shortcut",
}
_KNOWN_KEYS = {
    "variant", "classes", "source", "files", "environment", "timings_s", "shortcut", "format_version",
    "created_unix", "fetched_from",
}


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "10M<n<100M"


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _default_config(names: Sequence[str]) -> str:
    """The configuration ``load_dataset(repo)`` gives without a name: CIFAR-10-S itself when present."""
    return "cifar10s" if "cifar10s" in names else names[-1]


def _front_matter(
    names: Sequence[str],
    classes: Sequence[str],
    n_images: int,
    parquet: Mapping[str, Mapping[str, ParquetSplit]] | None,
    default: str,
) -> str:
    """The card's YAML metadata; with ``parquet``, also the ``configs`` and ``dataset_info`` that
    ``datasets.load_dataset`` reads (data files per split, features, number of examples)."""
    meta: dict[str, Any] = {
        "license": "unknown",
        "task_categories": ["image-classification"],
        "task_ids": ["multi-class-image-classification"],
        "size_categories": [_size_category(n_images)],
        "source_datasets": ["extended|cifar10"],
        "pretty_name": "CIFAR-10-S",
        "tags": ["unlearnable-examples", "shortcut-learning", "data-poisoning", "one-pixel-shortcut", "cifar-10"],
    }
    if not parquet:
        meta["viewer"] = False
        return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    missing = [n for n in names if n not in parquet]
    if missing:
        raise ValueError(f"no Parquet files were written for {', '.join(missing)}")
    order = [default] + [n for n in names if n != default]
    meta["configs"] = [
        {"config_name": n,
         "data_files": [{"split": split, "path": parquet[n][split].path} for split in (TRAIN, TEST)],
         **({"default": True} if n == default else {})}
        for n in order
    ]
    meta["dataset_info"] = [
        {"config_name": n,
         "features": [
             {"name": "image", "dtype": "image"},
             {"name": "label", "dtype": {"class_label": {"names": {str(i): c for i, c in enumerate(classes or CLASSES)}}}},
         ],
         "splits": [{"name": split, "num_bytes": parquet[n][split].num_bytes,
                     "num_examples": parquet[n][split].num_examples} for split in (TRAIN, TEST)],
         "download_size": sum(parquet[n][split].file_bytes for split in (TRAIN, TEST)),
         "dataset_size": sum(parquet[n][split].num_bytes for split in (TRAIN, TEST))}
        for n in order
    ]
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)


def dataset_card(
    manifests: Mapping[str, Mapping[str, Any]],
    parquet: Mapping[str, Mapping[str, ParquetSplit]] | None = None,
    *,
    repo_id: str = "<repo_id>",
) -> str:
    """The ``README.md`` of a release (Hub YAML front matter + text), written from its manifests.

    ``parquet`` (from :func:`cifar10s.hub.parquet.write_release_parquet`) describes the Parquet
    copy of the release; with it the front matter declares one ``datasets`` configuration per
    variant. ``repo_id`` only fills in the loading examples.
    """
    if not manifests:
        raise ValueError("a dataset card needs at least one manifest")
    names = sorted(manifests, key=lambda n: (n != "clean", n))
    first = manifests[names[0]]
    source = dict(first.get("source") or {})
    official = bool(source.get("official"))
    n_train = int(source.get("num_train") or 0)
    n_test = int(source.get("num_test") or 0)
    classes = list(first.get("classes") or [])

    default = _default_config(names)
    out: list[str] = ["---", _front_matter(names, classes, n_train + n_test, parquet, default).rstrip("\n"), "---", "",
                      "# CIFAR-10-S", ""]
    if not official:
        out += [
            "> [!WARNING]",
            f"> **Not built from the official CIFAR-10.** The source of this release ({n_train} training / "
            f"{n_test} test images, fingerprint `{str(source.get('fingerprint'))[:16]}`) differs from the "
            "published CIFAR-10 archive. Numbers measured on it are **not comparable** with the paper's "
            "or with other CIFAR-10-S results.",
            "",
        ]
    out += [
        "CIFAR-10-S is the *unlearnable* version of CIFAR-10 introduced in **One-Pixel Shortcut: on the "
        "Learning Preference of Deep Neural Networks** (Wu, Chen, Xie and Huang, ICLR 2023). Its "
        "training images carry error-minimizing noise (Unlearnable Examples, Huang et al., ICLR 2021) "
        "*and* a One-Pixel Shortcut (OPS): for each class, one pixel position is set to one colour in "
        "every training image of that class. A network trained on it learns the shortcut instead of the "
        "objects and performs poorly on clean test images, even with adversarial training or strong "
        "augmentations, which is what makes it a hard benchmark for defenses against unlearnable data.",
        "",
        "**The test split is clean CIFAR-10**: every variant is evaluated on the same clean test images, "
        "stored once in `clean/`.",
        "",
    ]
    kinds = {str((manifests[n].get("variant") or {}).get("kind", n)) for n in names}
    if "cifar10s" not in kinds:
        out += [
            "This release holds only the variants listed below; the full CIFAR-10-S (error-minimizing noise "
            "+ One-Pixel Shortcut, folder `cifar10s/`) is not part of it.",
            "",
        ]
    out += [
        "This repository holds the arrays built by the `cifar10s` Python package, in its on-disk layout: one "
        "folder per variant with plain `.npy` arrays (images `uint8` of shape `(N, 32, 32, 3)`, labels "
        "`int64`) and a `manifest.json` listing the sha256 of every file.",
        "",
    ]
    if parquet:
        out += [
            "The same images are also stored for the 🤗 `datasets` library under `data/`: one configuration "
            "per variant (named after its folder), each with a `train` split (that variant's training images) "
            "and the clean `test` split (`data/clean/test-*.parquet`, shared by every configuration). Each "
            "row holds an `image` (lossless PNG: it decodes to exactly the pixels of the `.npy` array) and a "
            f"`label` (`ClassLabel`: {', '.join(classes) if classes else '?'}). The default configuration is "
            f"`{default}`.",
            "",
            "`croissant.json` describes the release in Croissant 1.1 (MLCommons) with its Responsible-AI "
            "fields: every file with its sha256, and one record set per variant's `train` split plus the "
            "shared `test` split (`image`, `label`), readable with `mlcroissant`.",
            "",
        ]
    out += [
        "## Variants in this release",
        "",
        "| folder | what the training images are | train images | files |",
        "|---|---|---|---|",
    ]
    for n in names:
        m = manifests[n]
        kind = str((m.get("variant") or {}).get("kind", n))
        text = _KIND_TEXT.get(kind, kind)
        spec = m.get("variant") or {}
        if kind in ("ops", "cifar10s"):
            text += f" (pixels per class: {spec.get('pixels', '?')}, search objective: `{spec.get('objective', '?')}`)"
        shape = (m.get("files", {}).get("train_images.npy") or {}).get("shape") or ["?"]
        files = ", ".join(f"`{f}`" for f in sorted(m.get("files", {})))
        out.append(f"| `{_md(n)}` | {_md(text)} | {_md(shape[0])} | {files} |")
    out += [
        "",
        "## Intended use",
        "",
        "- Benchmarking defenses against unlearnable / shortcut-poisoned training data (adversarial "
        "training, augmentations, filtering, ...): train on a perturbed variant, report accuracy on the "
        "clean test split.",
        "- Studying shortcut learning and the learning preferences of deep networks.",
        "",
        "Out of scope: it is not a substitute for CIFAR-10 as a clean training set (use `clean/` or the "
        "original), and it says nothing about protecting data other than these images.",
        "",
        "## Loading",
        "",
        "A release is one commit of this repository; pin its commit sha (not a branch or tag, which can "
        "move) for reproducible results.",
        "",
    ]
    if parquet:
        out += [
            "With 🤗 `datasets` (`image` decodes to a PIL image):",
            "",
            "```python",
            "from datasets import load_dataset",
            "",
            f"ds = load_dataset(\"{repo_id}\", name=\"{default}\", revision=\"<commit sha>\")",
            "ds[\"train\"][0]  # {'image': <PIL.PngImagePlugin.PngImageFile ...>, 'label': ...}",
            "```",
            "",
        ]
    out += [
        "With the `cifar10s` package (every file is checked against its sha256):",
        "",
        "```python",
        "from cifar10s.hub.client import fetch_variant",
        "from cifar10s import CIFAR10S",
        "",
        f"fetch_variant(\"data\", \"{names[-1]}\", repo_id=\"{repo_id}\", revision=\"<commit sha>\")  "
        "# also fetches clean/ (the test split)",
        f"train = CIFAR10S(\"data\", train=True, variant=\"{names[-1]}\")",
        "test = CIFAR10S(\"data\", train=False)  # clean CIFAR-10 test split",
        "```",
        "",
        "Without either: `numpy.load(path, allow_pickle=False)` on the `.npy` files; check them against "
        "`manifest.json`.",
        "",
        "## How it was built",
        "",
        "Source CIFAR-10 (every variant of a release is built from the same source):",
        "",
        f"- official CIFAR-10 archive: **{'yes' if official else 'NO'}**"
        + ("" if official else " (see the warning above)"),
        f"- source file: `{_md(source.get('origin', '?'))}`",
        f"- images: {n_train} train / {n_test} test; classes: {', '.join(classes) if classes else '?'}",
        f"- fingerprint (sha256 over the decoded arrays): `{source.get('fingerprint', '?')}`",
    ]
    md5 = source.get("member_md5") or {}
    if md5:
        out.append("- md5 of the archive members: " + ", ".join(f"{k} `{v}`" for k, v in sorted(md5.items())))
    for n in names:
        m = manifests[n]
        env = m.get("environment") or {}
        out += ["", f"### `{n}`", ""]
        spec = dict(m.get("variant") or {})
        if spec.get("kind") in ("clean", "em"):
            spec = {"kind": spec["kind"]}
        out.append(f"- recipe: `{json.dumps(spec, sort_keys=True)}`")
        if env:
            out.append("- built with: " + ", ".join(f"{k} {v}" for k, v in sorted(env.items()) if k != "platform"))
        shortcut = m.get("shortcut")
        if isinstance(shortcut, dict) and shortcut.get("shortcuts"):
            out += [
                f"- One-Pixel Shortcut search: objective `{shortcut.get('objective')}`, "
                f"{shortcut.get('pixels_per_class')} pixel(s) per class",
                "",
                "| class | row | col | colour (RGB) |",
                "|---|---|---|---|",
            ]
            for s in shortcut["shortcuts"]:
                label = s.get("label")
                cname = classes[label] if isinstance(label, int) and 0 <= label < len(classes) else label
                out.append(f"| {_md(cname)} | {s.get('row')} | {s.get('col')} | {tuple(s.get('colour') or ())} |")
        extra = {k: v for k, v in m.items() if k not in _KNOWN_KEYS}
        if extra:
            out += ["", "Other recipe parameters:", "", "```json", json.dumps(extra, indent=2, sort_keys=True), "```"]
        out += ["", "| file | bytes | sha256 |", "|---|---|---|"]
        for fname, entry in sorted((m.get("files") or {}).items()):
            out.append(f"| `{fname}` | {entry.get('bytes')} | `{entry.get('sha256')}` |")
    out += [
        "",
        "## License",
        "",
        "The images are CIFAR-10's (Krizhevsky, 2009), which was released without an explicit license; "
        "use them under the same terms as CIFAR-10 and cite it. The perturbations follow the papers "
        "below.",
        "",
        "## Citation",
        "",
        "If you use CIFAR-10-S, cite the One-Pixel Shortcut paper, Unlearnable Examples (the "
        "error-minimizing noise) and CIFAR-10:",
        "",
        CITATIONS,
    ]
    return "\n".join(out)
