"""Publish built variant folders as a Hub release (one commit, optionally tagged), or write the
same files into a local folder.

A release is one commit of a *dataset* repository whose layout mirrors ``<root>/cifar10s-v1/``,
plus a Parquet copy for the ``datasets`` library::

    README.md                      dataset card (YAML front matter + text), see dataset_card()
    clean/manifest.json            the manifest of each variant folder (sha256 of every file)
    clean/train_images.npy ...     plain .npy arrays (never pickled)
    ops-k1/manifest.json
    ops-k1/train_images.npy ...
    data/clean/train-00000-of-00001.parquet   one ``datasets`` configuration per variant (PNG +
    data/clean/test-00000-of-00001.parquet    ClassLabel), train split each, the clean test split
    data/ops-k1/train-00000-of-00001.parquet  shared; see cifar10s.hub.parquet
    croissant.json                 Croissant 1.1 metadata with its RAI fields, every file above with
                                   its sha256 (with the Parquet copy only); see cifar10s.hub.croissant

:func:`publish_release` verifies local folders and uploads them in one commit and returns the
commit sha, which is what users should pin (:func:`pinning_hint`); :func:`write_release` writes
the same files into a local folder instead.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import CommitOperationAdd, HfApi

from ..atomic import atomic_file, atomic_write_bytes, current_umask
from ..constants import CLASSES
from ..folder import VariantFolder, not_built, open_folder
from ..store import MANIFEST, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, IntegrityError, build_lock, \
    data_dir, is_complete, sha256_file
from ..variants import VariantSpec
from .card import dataset_card
from .croissant import CROISSANT, croissant_metadata
from .common import DEFAULT_REPO_ID, REPO_TYPE, _check_manifest, _folder_name, _HfHubHTTPError, _resolve_endpoint, \
    build_remedies, logger
from .parquet import ParquetSplit, require_pyarrow, write_release_parquet

__all__ = ["CARD", "pinning_hint", "publish_release", "write_release"]

CARD = "README.md"


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()



def _public_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as uploaded: no local paths of the publisher's machine, no fetch record."""
    out = copy.deepcopy(dict(manifest))
    out.pop("fetched_from", None)
    source = out.get("source")
    if isinstance(source, dict) and isinstance(source.get("origin"), str):
        source["origin"] = Path(source["origin"]).name or source["origin"]
    return out


def _verified_folders(root: Path, names: Sequence[str]) -> dict[str, VariantFolder]:
    """Every folder checked against its manifest (sha256 of every file); one CIFAR-10 source for all."""
    folders: dict[str, VariantFolder] = {}
    for n in names:
        folder = data_dir(root) / n
        if not is_complete(folder):
            try:
                spec = VariantSpec.from_folder_name(n)
            except ValueError:
                raise FileNotFoundError(f"{folder} is not built; {build_remedies(root, n)[0].text('api')}") from None
            raise not_built(spec, root, f"variant {n!r} is not built under {folder.parent}; nothing was written")
        opened = open_folder(folder, check_hashes=True)
        _check_manifest(dict(opened.manifest), str(folder / MANIFEST), n)
        folders[n] = opened
    if len({f.source.fingerprint for f in folders.values()}) != 1:
        raise ValueError(f"{', '.join(names)} were built from different CIFAR-10 sources; rebuild them from one")
    return folders


def _release_names(variants: Sequence[str] | str) -> list[str]:
    if isinstance(variants, str):
        variants = [variants]
    names = list(dict.fromkeys(_folder_name(v) for v in variants))
    if not names:
        raise ValueError("nothing to publish: pass at least one variant")
    if "clean" not in names:
        raise ValueError("a release must include 'clean' (the test split of every variant lives there)")
    return names


def _class_names(manifest: Mapping[str, Any]) -> list[str]:
    classes = manifest.get("classes")
    if classes is None:
        return list(CLASSES)
    if not isinstance(classes, list) or len(classes) != len(CLASSES) or not all(isinstance(c, str) for c in classes):
        raise IntegrityError(f"clean/{MANIFEST}: 'classes' must list CIFAR-10's {len(CLASSES)} class names")
    return classes


def _write_parquet(names: Sequence[str], folders: Mapping[str, VariantFolder],
                   workdir: Path) -> dict[str, dict[str, ParquetSplit]]:
    """The ``datasets`` copy of the release, written under ``workdir`` from the verified arrays."""
    train = {n: (folders[n].load(TRAIN_IMAGES), folders[n].load(TRAIN_LABELS)) for n in names}
    test = (folders["clean"].load(TEST_IMAGES), folders["clean"].load(TEST_LABELS))
    return write_release_parquet(workdir, train, test, class_names=_class_names(folders["clean"].manifest))


def _release_files(
    root: Path, names: Sequence[str], workdir: Path, *, repo_id: str, parquet: bool, url: str | None = None
) -> dict[str, Path | bytes]:
    """Every file of the release by its path in the repository (call under the build lock).

    The card, each variant's arrays and public manifest, and (with ``parquet``) the Parquet copy,
    written into ``workdir``, and its Croissant metadata (``croissant.json``, which lists every
    other file with its sha256; ``url`` is where the release will live, if known).
    """
    folders = _verified_folders(root, names)
    public = {n: _public_manifest(f.manifest) for n, f in folders.items()}
    splits = _write_parquet(names, folders, workdir) if parquet else None
    files: dict[str, Path | bytes] = {CARD: dataset_card(public, splits, repo_id=repo_id).encode("utf-8")}
    for n in names:
        for fname in sorted(folders[n].files):
            files[f"{n}/{fname}"] = folders[n].path / fname
        files[f"{n}/{MANIFEST}"] = _json_bytes(public[n])
    for config in (splits or {}).values():
        for split in config.values():
            files[split.path] = workdir / split.path
    if splits:
        listed = {path: _checksum(path, content, folders) for path, content in files.items()}
        meta = croissant_metadata(public, splits, listed, class_names=_class_names(folders["clean"].manifest),
                                  url=url)
        files[CROISSANT] = _json_bytes(meta)
    return files


def _checksum(path: str, content: Path | bytes, folders: Mapping[str, VariantFolder]) -> tuple[str, int]:
    """(sha256, bytes) of one release file: a variant's array from its verified manifest, the rest hashed."""
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest(), len(content)
    name, _, fname = path.partition("/")
    if name in folders and content == folders[name].path / fname:
        entry = folders[name].files[fname]
        return entry.sha256, entry.bytes
    return sha256_file(content), content.stat().st_size


def pinning_hint(repo_id: str, sha: str) -> str:
    """How to load exactly the release at commit ``sha`` (printed after publishing)."""
    return (
        f"Pin this release by its commit sha (tags and branches can move):\n"
        f"  cifar10s fetch --repo-id {repo_id} --revision {sha} --variant VARIANT --root data\n"
        f"  fetch_variant(root, VARIANT, repo_id={repo_id!r}, revision={sha!r})\n"
        f"  datasets.load_dataset({repo_id!r}, name=VARIANT, revision={sha!r})"
    )


def write_release(
    root: str | os.PathLike[str],
    variants: Sequence[str],
    dest: str | os.PathLike[str],
    *,
    repo_id: str = DEFAULT_REPO_ID,
    parquet: bool = True,
    url: str | None = None,
) -> Path:
    """Write into ``dest`` (new, or an empty folder) exactly the files :func:`publish_release` uploads.

    The result can be inspected, loaded with ``datasets.load_dataset(str(dest), name=VARIANT)`` or
    with ``mlcroissant`` from ``dest/croissant.json``, or carried to any other host. ``repo_id``
    only fills in the card's loading examples; ``url`` (where the copy will live) goes into
    ``croissant.json``. Every variant is verified first (sha256 of every file); the files are
    written into a temporary folder beside ``dest`` that is renamed to ``dest`` only when complete,
    so a refusal or a failure leaves no half-written release.
    """
    root, dest = Path(root).expanduser(), Path(dest).expanduser()
    names = _release_names(variants)
    if parquet:
        require_pyarrow()
    if dest.exists() and (not dest.is_dir() or dest.is_symlink() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not an empty folder; pass a new one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(root), tempfile.TemporaryDirectory(prefix=f".{dest.name}.partial-", dir=dest.parent) as tmp:
        staging = Path(tmp) / "release"
        staging.mkdir()
        files = _release_files(root, names, staging, repo_id=repo_id, parquet=parquet, url=url)
        for path_in_repo, content in files.items():
            target = staging / path_in_repo
            if isinstance(content, bytes):
                atomic_write_bytes(target, content)
            elif content != target:  # the Parquet files are already in place
                with open(content, "rb") as fin, atomic_file(target) as fout:
                    shutil.copyfileobj(fin, fout, 4 << 20)
        os.chmod(staging, 0o777 & ~current_umask())
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        os.rename(staging, dest)  # refuses (OSError) if something appeared at dest meanwhile
    return dest


def publish_release(
    root: str | os.PathLike[str],
    variants: Sequence[str],
    repo_id: str,
    *,
    tag: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    parquet: bool = True,
) -> str:
    """Upload built variant folders (plus a dataset card) to a Hub dataset repo in one commit.

    Every folder is verified against its manifest (sha256 of every file) first, under the build
    lock, which is held until the commit is done so that no build swaps a folder mid-upload.
    ``clean`` must be part of the release (it holds the test split of every variant). With
    ``parquet`` (needs pyarrow), the release also carries a Parquet copy of every variant's
    training images and of the clean test split under ``data/``, declared in the card, so that
    ``datasets.load_dataset(repo_id, name=VARIANT)`` works. The repo is created if needed
    (``exist_ok``); files the Hub already has unchanged are not re-uploaded. With ``tag``, the
    commit is tagged; an existing tag is never moved (ValueError if it points elsewhere). Returns
    the commit sha: pin that, not the tag (see :func:`pinning_hint`). The uploaded manifests name
    the CIFAR-10 archive by file name only (no local paths).
    """
    root = Path(root).expanduser()
    names = _release_names(variants)
    if parquet:
        require_pyarrow()
    api = HfApi(endpoint=_resolve_endpoint(endpoint), token=token)
    with build_lock(root):
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".publish-", dir=root) as workdir:
            files = _release_files(root, names, Path(workdir), repo_id=repo_id, parquet=parquet)
            operations = [
                CommitOperationAdd(path_in_repo=path, path_or_fileobj=content if isinstance(content, bytes)
                                   else str(content))
                for path, content in files.items()
            ]
            api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message or f"CIFAR-10-S release: {', '.join(names)}",
                repo_type=REPO_TYPE,
            )
    sha = str(info.oid)
    logger.info("published %s to %s at commit %s\n%s", ", ".join(names), repo_id, sha, pinning_hint(repo_id, sha))
    if tag:
        try:
            api.create_tag(repo_id, tag=tag, revision=sha, repo_type=REPO_TYPE,
                           tag_message=f"CIFAR-10-S release ({', '.join(names)})")
        except _HfHubHTTPError as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) != 409:
                raise
            existing = api.dataset_info(repo_id, revision=tag).sha
            if existing != sha:
                raise ValueError(
                    f"tag {tag!r} already exists in {repo_id} at {existing}, not at the new commit {sha}; "
                    "published tags are never moved: choose a new tag"
                ) from exc
    return sha
