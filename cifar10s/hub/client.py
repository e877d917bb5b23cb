"""Releases of built variants on the Hugging Face Hub: publish them, fetch them, describe them.

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

:func:`publish_release` verifies local folders and uploads them in one commit (optionally tagged)
and returns the commit sha, which is what users should pin (:func:`pinning_hint`);
:func:`write_release` writes the same files into a local folder instead. :func:`fetch_variant`
downloads one variant (plus ``clean``, which holds the test split) through ``huggingface_hub``'s
cache, checks every file against the sha256 in the downloaded manifest and installs the folder
atomically, exactly as a local build would have; it never reads the Parquet copy.

No public release exists yet: :data:`DEFAULT_REPO_ID` and :data:`DEFAULT_REVISION` name where the
official one will live. Until it does (or without network), build locally instead::

    cifar10s build --variant ops --root data --cifar10 cifar-10-python.tar.gz

Environment variables (read when a function is *called*, not only when ``huggingface_hub`` is
imported, which is when that library reads most of them):

``HF_ENDPOINT``
    Hub to talk to when no ``endpoint`` argument is given (the argument wins).
``HF_HUB_OFFLINE``
    ``1`` => only the local Hugging Face cache is used; nothing goes on the network.
``HF_HOME`` / ``HF_HUB_CACHE``
    Where the Hugging Face cache lives when no ``cache_dir`` argument is given.
``HF_HUB_ETAG_TIMEOUT``
    Seconds to wait for the Hub's first answer before falling back to the cache.
``HF_HUB_DOWNLOAD_TIMEOUT``, ``HF_TOKEN``, ``HF_HUB_DISABLE_XET``, ...
    Handled by ``huggingface_hub`` itself (``HF_HUB_DISABLE_XET=1`` makes uploads use the
    Git-LFS protocol instead of Xet).

Fetching and publishing stay one module (about 700 lines) because both sides of a release
share the Hub settings read at call time, the mapping of the Hub's errors to `HubUnavailable`
and the manifest checks; splitting them would put those in a third module both must import.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
)
from tqdm.auto import tqdm as _tqdm

try:  # huggingface_hub >= 0.23
    from huggingface_hub import errors as _hf_errors
except ImportError:  # pragma: no cover - very old huggingface_hub
    from huggingface_hub import utils as _hf_errors  # type: ignore[no-redef]

from .. import strict_json
from ..constants import CLASSES, DATA_FORMAT_VERSION
from ..store import (
    MANIFEST,
    IntegrityError,
    atomic_file,
    atomic_write_bytes,
    build_lock,
    data_dir,
    is_complete,
    load_array,
    publish,
    read_manifest,
    sha256_file,
    staging_folder,
    validate_manifest,
    verify_folder,
)
from ..variants import VariantSpec, parse_variant
from .card import dataset_card
from .parquet import ParquetSplit, require_pyarrow, write_release_parquet

logger = logging.getLogger(__name__)

#: Dataset repository of the official release. NOTE: no public release exists yet; until one is
#: published there, :func:`fetch_variant` raises :class:`HubUnavailable` (build locally instead).
DEFAULT_REPO_ID = "cifar10s/CIFAR-10-S"
#: Revision the package fetches: the release tag until a commit sha is pinned here.
DEFAULT_REVISION = "v1"
REPO_TYPE = "dataset"
CARD = "README.md"

_HfHubHTTPError = _hf_errors.HfHubHTTPError
_RepositoryNotFoundError = _hf_errors.RepositoryNotFoundError
_RevisionNotFoundError = _hf_errors.RevisionNotFoundError
_EntryNotFoundError = _hf_errors.EntryNotFoundError
_LocalEntryNotFoundError = _hf_errors.LocalEntryNotFoundError
_RemoteEntryNotFoundError = getattr(_hf_errors, "RemoteEntryNotFoundError", _hf_errors.EntryNotFoundError)
_OfflineModeIsEnabled = _hf_errors.OfflineModeIsEnabled
# The Hub's "not found" answers; caught before the generic HTTP error they derive from.
_NOT_FOUND_ERRORS = (_RevisionNotFoundError, _RepositoryNotFoundError, _RemoteEntryNotFoundError, _EntryNotFoundError)

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
_SAFE_FOLDER = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_TRUE = {"1", "ON", "YES", "TRUE"}


class HubUnavailable(RuntimeError):
    """The Hub (or the requested release, revision or file) cannot be reached; build locally instead."""


# --------------------------------------------------------------------------------------------
# Settings resolved at call time
# --------------------------------------------------------------------------------------------


def _resolve_endpoint(endpoint: str | None) -> str:
    """Explicit argument > ``HF_ENDPOINT`` now > what huggingface_hub read at import."""
    value = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    return value.rstrip("/")


def _resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> str | None:
    if cache_dir is not None:
        return str(Path(cache_dir).expanduser())
    if os.environ.get("HF_HUB_CACHE"):
        return str(Path(os.path.expandvars(os.environ["HF_HUB_CACHE"])).expanduser())
    if os.environ.get("HF_HOME"):
        return str(Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub")
    return None  # huggingface_hub's default (constants.HF_HUB_CACHE)


def _offline_mode() -> bool:
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    is_offline = getattr(constants, "is_offline_mode", None)
    hub_says = is_offline() if callable(is_offline) else bool(getattr(constants, "HF_HUB_OFFLINE", False))
    return bool(hub_says) or env.upper() in _TRUE


def _etag_timeout() -> float:
    raw = os.environ.get("HF_HUB_ETAG_TIMEOUT")
    try:
        if raw:
            return float(raw)
    except ValueError:
        pass
    return float(getattr(constants, "HF_HUB_ETAG_TIMEOUT", 10))


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level failures (refused, timed out, offline) for every HTTP stack hf may use."""
    errs: list[type[BaseException]] = [OSError, _OfflineModeIsEnabled]
    for module in ("httpx2", "httpx"):
        try:
            errs.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def _supports(func: Any, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


# --------------------------------------------------------------------------------------------
# Names and messages
# --------------------------------------------------------------------------------------------


def _folder_name(variant: str) -> str:
    """``ops`` -> ``ops-k1``; folder names such as ``ops-k3-paper-eq3`` are taken as they are."""
    v = str(variant).strip()
    try:
        return parse_variant(v).folder_name
    except ValueError:
        pass
    if _SAFE_FOLDER.fullmatch(v):
        return v
    raise ValueError(f"{variant!r} is not a variant or variant folder name (e.g. clean, ops-k1, cifar10s)")


def _build_hint(root: Path, name: str) -> str:
    try:
        command = VariantSpec.from_folder_name(name).build_command(root)
    except ValueError:
        command = f"cifar10s build --variant {name} --root {root} --cifar10 PATH"
    return (
        f"Build it locally instead: `{command}` (PATH = the official cifar-10-python.tar.gz or an "
        "extracted cifar-10-batches-py folder; or --download to fetch CIFAR-10 from its authors' "
        "site), or pass download=True to CIFAR10S to build it."
    )


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _check_manifest(manifest: Any, where: str, expected_folder: str) -> dict[str, Any]:
    """A downloaded manifest (parsed with json only, never unpickled): the store's schema and
    meaning checks, before anything it lists is downloaded, and that it describes this folder."""
    manifest = validate_manifest(manifest, where)
    variant = manifest.get("variant")
    if isinstance(variant, dict):
        try:
            folder = VariantSpec(**variant).folder_name
        except (TypeError, ValueError) as exc:
            raise IntegrityError(f"{where}: unreadable variant record {variant!r}") from exc
        if folder != expected_folder:
            raise IntegrityError(f"{where}: describes variant {folder!r}, not {expected_folder!r}")
    return manifest


# --------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------


@dataclass
class _Remote:
    """One fetch session against one repo@revision; remembers the commit it resolved to."""

    root: Path
    repo_id: str
    revision: str
    endpoint: str
    cache_dir: str | None
    token: str | None
    progress: bool
    offline: bool = False
    commit: str | None = None
    probed: bool = False
    unreachable: str | None = None  # why we fell back to the cache, if we did

    def _where(self) -> str:
        return f"{self.repo_id}@{self.revision} on {self.endpoint}"

    def _unavailable(self, name: str, reason: str) -> HubUnavailable:
        return HubUnavailable(
            f"cannot fetch variant {name!r} from the Hugging Face Hub ({self._where()}): {reason}. "
            + ("(No public CIFAR-10-S release has been published there yet.) " if self.repo_id == DEFAULT_REPO_ID
               else "")
            + _build_hint(self.root, name)
        )

    def _not_found(self, exc: BaseException, filename: str) -> str:
        """Say which part of ``repo@revision:filename`` the Hub reported missing."""
        if isinstance(exc, _RevisionNotFoundError):
            return f"revision {self.revision!r} does not exist"
        if isinstance(exc, _RepositoryNotFoundError):
            return "repository not found (or private without a token)"
        return f"{filename} is not in this release"

    def _download(self, name: str, filename: str, *, local_only: bool) -> Path:
        kwargs: dict[str, Any] = dict(
            repo_type=REPO_TYPE,
            revision=self.commit or self.revision,
            endpoint=self.endpoint,
            cache_dir=self.cache_dir,
            token=self.token,
            local_files_only=local_only,
            library_name="cifar10s",
        )
        from ..version import __version__

        kwargs["library_version"] = __version__
        if not local_only:
            kwargs["etag_timeout"] = _etag_timeout()
        if not self.progress and _supports(hf_hub_download, "tqdm_class"):
            kwargs["tqdm_class"] = _SilentTqdm
        try:
            return Path(hf_hub_download(self.repo_id, filename, **kwargs))
        except _LocalEntryNotFoundError as exc:
            why = (f"the Hub could not be reached ({self.unreachable})" if self.unreachable
                   else "offline mode (HF_HUB_OFFLINE) is on" if self.offline else "the file could not be fetched")
            raise self._unavailable(name, f"{why} and {filename} is not in the local Hugging Face cache "
                                          f"({exc.__class__.__name__})") from exc
        except _NOT_FOUND_ERRORS as exc:
            raise self._unavailable(name, self._not_found(exc, filename)) from exc
        except _HfHubHTTPError as exc:
            raise self._unavailable(name, f"HTTP error while downloading {filename}: {exc}") from exc
        except _network_errors() as exc:
            raise self._unavailable(name, f"downloading {filename} failed: {exc!r}") from exc

    def _probe(self, name: str, filename: str) -> None:
        """One quick HEAD without retries, so an unreachable Hub is detected in one timeout.

        (hf_hub_download alone retries with exponential back-off for ~23 s before giving up when
        nothing is cached.) On a network failure we fall back to the cache, as hf_hub_download does.
        """
        if self.offline or self.probed:
            return
        self.probed = True
        if _COMMIT_SHA.fullmatch(self.revision):  # pinned commit already cached => no request at all
            try:
                self._download(name, filename, local_only=True)
                return
            except HubUnavailable:
                pass
        url = hf_hub_url(self.repo_id, filename, repo_type=REPO_TYPE, revision=self.revision, endpoint=self.endpoint)
        try:
            meta = get_hf_file_metadata(url, token=self.token, timeout=_etag_timeout())
        except _NOT_FOUND_ERRORS as exc:
            raise self._unavailable(name, self._not_found(exc, filename)) from exc
        except _HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status is not None and status < 500 and status not in (408, 429):
                raise self._unavailable(name, f"HTTP error: {exc}") from exc
            self._fall_back(f"HTTP {status}")
        except _network_errors() as exc:
            self._fall_back(repr(exc))
        else:
            if getattr(meta, "commit_hash", None) is None:
                self._fall_back("the endpoint does not answer like a Hugging Face Hub (no X-Repo-Commit)")

    def _fall_back(self, reason: str) -> None:
        logger.warning("Hugging Face Hub unreachable (%s): %s; using the local cache only", self._where(), reason)
        self.offline = True
        self.unreachable = reason

    def manifest(self, name: str) -> dict[str, Any]:
        filename = f"{name}/{MANIFEST}"
        self._probe(name, filename)
        path = self._download(name, filename, local_only=self.offline)
        if self.commit is None:
            # <cache>/datasets--org--name/snapshots/<commit>/<name>/manifest.json
            parents = path.parents
            if len(parents) > 2 and parents[2].name == "snapshots" and _COMMIT_SHA.fullmatch(parents[1].name):
                self.commit = parents[1].name
        where = f"{self.repo_id}@{self.commit or self.revision}:{filename}"
        try:
            raw = strict_json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            _purge_cached(path)
            raise IntegrityError(f"{where}: unreadable manifest ({exc})") from exc
        manifest = _check_manifest(raw, where, name)
        if manifest.get("format_version") != DATA_FORMAT_VERSION:
            raise self._unavailable(
                name, f"the release has data format {manifest.get('format_version')!r}, this version of "
                      f"cifar10s reads format {DATA_FORMAT_VERSION} (upgrade cifar10s or pin another revision)"
            )
        return manifest

    def files(self, name: str, manifest: Mapping[str, Any]) -> dict[str, Path]:
        """Download every listed file into the HF cache and check size + sha256 there."""
        paths: dict[str, Path] = {}
        for fname, entry in sorted(manifest["files"].items()):
            path = self._download(name, f"{name}/{fname}", local_only=self.offline)
            _check_file(path, entry, f"{self.repo_id}@{self.commit or self.revision}:{name}/{fname}")
            paths[fname] = path
        return paths

    def provenance(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "endpoint": self.endpoint}


class _SilentTqdm(_tqdm):
    """Progress bar class handed to hf_hub_download when ``progress=False``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        kwargs.pop("name", None)
        super().__init__(*args, **kwargs)


def _purge_cached(path: Path) -> None:
    """Drop a bad file from the HF cache (snapshot link and blob) so a retry downloads it again."""
    try:
        real = path.resolve()
        path.unlink(missing_ok=True)
        if real != path:
            real.unlink(missing_ok=True)
    except OSError:  # pragma: no cover - read-only cache: nothing more we can do
        logger.warning("could not remove corrupt cached file %s", path)


def _check_file(path: Path, entry: Mapping[str, Any], label: str) -> None:
    size = path.stat().st_size
    if size != entry["bytes"]:
        _purge_cached(path)
        raise IntegrityError(f"{label}: {size} bytes, the manifest says {entry['bytes']}; nothing was installed")
    got = sha256_file(path)
    if got != entry["sha256"]:
        _purge_cached(path)
        raise IntegrityError(
            f"{label}: sha256 {got[:16]}... does not match the manifest's {entry['sha256'][:16]}...; the "
            "file is corrupt (on the Hub or in transit). Nothing was installed and the cached copy was removed."
        )


def _copy_checked(src: Path, dst: Path, entry: Mapping[str, Any], label: str) -> None:
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(4 << 20), b""):
            h.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    if h.hexdigest() != entry["sha256"] or dst.stat().st_size != entry["bytes"]:
        _purge_cached(src)
        raise IntegrityError(f"{label}: changed while being installed (sha256 mismatch); nothing was installed")


def _up_to_date(folder: Path, manifest: Mapping[str, Any]) -> bool:
    if not is_complete(folder):
        return False
    try:
        local = read_manifest(folder)
        if local.get("files") != manifest["files"]:
            return False
        verify_folder(folder, check_hashes=True)
    except (IntegrityError, OSError, KeyError):
        return False
    return True


def fetch_variant(
    root: str | os.PathLike[str],
    variant: str,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str = DEFAULT_REVISION,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``variant`` from a Hub release into ``<root>/cifar10s-v1/<folder>`` and return that folder.

    The variant's ``manifest.json`` is fetched first, then every file it lists, through
    ``hf_hub_download`` (so the Hugging Face cache is used and ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``,
    ``HF_HOME`` are honoured; an explicit ``endpoint`` wins over ``HF_ENDPOINT``). Every file is
    checked against the manifest's size and sha256 before anything is installed; the folder is then
    installed atomically under the build lock. ``clean`` (which holds the clean test split) is
    fetched too when ``variant`` is another one and ``clean`` is not under ``root`` yet. A variant
    already installed with the same files is left alone (only its manifest is downloaded).

    Raises:
        IntegrityError: a downloaded file does not match the manifest (nothing is installed, the
            bad cached copy is dropped so a retry downloads it again).
        HubUnavailable: offline with nothing cached, Hub unreachable, or repository / revision /
            file missing. The message says how to build the variant locally instead.
    """
    root = Path(root).expanduser()
    name = _folder_name(variant)
    remote = _Remote(
        root=root, repo_id=repo_id, revision=revision, endpoint=_resolve_endpoint(endpoint),
        cache_dir=_resolve_cache_dir(cache_dir), token=token, progress=progress, offline=_offline_mode(),
    )
    names = [name]
    if name != "clean" and not is_complete(data_dir(root) / "clean"):
        names.append("clean")
    manifests = {n: remote.manifest(n) for n in names}  # fails fast before any large download
    fingerprints = {str((m.get("source") or {}).get("fingerprint")) for m in manifests.values()}
    if len(fingerprints) > 1:
        raise IntegrityError(f"{remote._where()}: {', '.join(names)} were built from different CIFAR-10 sources")
    todo = {n: m for n, m in manifests.items() if not _up_to_date(data_dir(root) / n, m)}
    cached = {n: remote.files(n, m) for n, m in todo.items()}  # every hash checked before installing
    with build_lock(root):
        for n in sorted(todo, key=lambda n: n != "clean"):  # clean first
            manifest, final = todo[n], data_dir(root) / n
            if _up_to_date(final, manifest):  # installed meanwhile by another process
                continue
            with staging_folder(root, n) as staging:
                for fname, entry in manifest["files"].items():
                    _copy_checked(cached[n][fname], staging / fname, entry, f"{remote._where()}:{n}/{fname}")
                publish(staging, final, {**manifest, "fetched_from": remote.provenance()})
    clean_dir = data_dir(root) / "clean"
    if name != "clean" and is_complete(clean_dir):
        try:
            clean_fp = read_manifest(clean_dir).get("source", {}).get("fingerprint")
        except IntegrityError:
            clean_fp = None
        if clean_fp != (manifests[name].get("source") or {}).get("fingerprint"):
            warnings.warn(
                f"{clean_dir} was built from a different CIFAR-10 source than the fetched {name!r}; "
                f"fetch 'clean' from the same release (fetch_variant(root, 'clean')) or rebuild locally, "
                "so that train and test come from the same data.",
                stacklevel=2,
            )
    return data_dir(root) / name


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------


def _public_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as uploaded: no local paths of the publisher's machine, no fetch record."""
    out = copy.deepcopy(dict(manifest))
    out.pop("fetched_from", None)
    source = out.get("source")
    if isinstance(source, dict) and isinstance(source.get("origin"), str):
        source["origin"] = Path(source["origin"]).name or source["origin"]
    return out


def _verified_manifests(root: Path, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Every folder checked against its manifest (sha256 of every file); one CIFAR-10 source for all."""
    manifests: dict[str, dict[str, Any]] = {}
    for n in names:
        folder = data_dir(root) / n
        if not is_complete(folder):
            raise FileNotFoundError(f"{folder} is not built; build it first ({_build_hint(root, n)})")
        manifest = verify_folder(folder, check_hashes=True)
        _check_manifest(manifest, str(folder / MANIFEST), n)
        manifests[n] = manifest
    fingerprints = {str((m.get("source") or {}).get("fingerprint")) for m in manifests.values()}
    if len(fingerprints) != 1:
        raise ValueError(f"{', '.join(names)} were built from different CIFAR-10 sources; rebuild them from one")
    return manifests


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


def _write_parquet(
    root: Path, names: Sequence[str], manifests: Mapping[str, Mapping[str, Any]], workdir: Path
) -> dict[str, dict[str, ParquetSplit]]:
    """The ``datasets`` copy of the release, written under ``workdir`` from the verified arrays."""
    from ..release.builders import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

    def arrays(n: str, images: str, labels: str) -> tuple[Any, Any]:
        folder = data_dir(root) / n
        return load_array(folder, images, manifests[n]), load_array(folder, labels, manifests[n])

    train = {n: arrays(n, TRAIN_IMAGES, TRAIN_LABELS) for n in names}
    return write_release_parquet(workdir, train, arrays("clean", TEST_IMAGES, TEST_LABELS),
                                 class_names=_class_names(manifests["clean"]))


def _release_files(
    root: Path, names: Sequence[str], workdir: Path, *, repo_id: str, parquet: bool
) -> dict[str, Path | bytes]:
    """Every file of the release by its path in the repository (call under the build lock).

    The card, each variant's arrays and public manifest, and (with ``parquet``) the Parquet copy,
    written into ``workdir``.
    """
    manifests = _verified_manifests(root, names)
    public = {n: _public_manifest(m) for n, m in manifests.items()}
    splits = _write_parquet(root, names, manifests, workdir) if parquet else None
    files: dict[str, Path | bytes] = {CARD: dataset_card(public, splits, repo_id=repo_id).encode("utf-8")}
    for n in names:
        folder = data_dir(root) / n
        for fname in sorted(manifests[n]["files"]):
            files[f"{n}/{fname}"] = folder / fname
        files[f"{n}/{MANIFEST}"] = _json_bytes(public[n])
    for config in (splits or {}).values():
        for split in config.values():
            files[split.path] = workdir / split.path
    return files


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
) -> Path:
    """Write into ``dest`` (new or empty) exactly the files :func:`publish_release` uploads.

    The result can be inspected, loaded with ``datasets.load_dataset(str(dest), name=VARIANT)``, or
    uploaded by other means. ``repo_id`` only fills in the card's loading examples.
    """
    root, dest = Path(root).expanduser(), Path(dest).expanduser()
    names = _release_names(variants)
    if parquet:
        require_pyarrow()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not an empty folder; pass a new one")
    dest.mkdir(parents=True, exist_ok=True)
    with build_lock(root):
        files = _release_files(root, names, dest, repo_id=repo_id, parquet=parquet)
        for path_in_repo, content in files.items():
            target = dest / path_in_repo
            if isinstance(content, bytes):
                atomic_write_bytes(target, content)
            elif content != target:  # the Parquet files are already in place
                with open(content, "rb") as fin, atomic_file(target) as fout:
                    shutil.copyfileobj(fin, fout, 4 << 20)
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
