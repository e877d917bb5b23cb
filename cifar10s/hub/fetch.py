"""Fetch one variant of a Hub release into a data root, checked file by file, installed atomically.

:func:`fetch_variant` downloads the variant's manifest, then every file it lists, through
``huggingface_hub``'s cache; checks each against the sha256 in the manifest; and installs the folder
under the build lock exactly as a local build would have. It never reads the Parquet copy.
Settings (endpoint, cache, offline mode, timeouts) are read at call time, see :mod:`.common`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
from tqdm.auto import tqdm as _tqdm

from .. import strict_json
from ..constants import DATA_FORMAT_VERSION
from ..folder import FileEntry, files_of, open_folder, source_of
from ..store import MANIFEST, IntegrityError, build_lock, data_dir, is_complete, publish, sha256_file, staging_folder
from .common import (
    _COMMIT_SHA,
    _NOT_FOUND_ERRORS,
    DEFAULT_REPO_ID,
    DEFAULT_REVISION,
    REPO_TYPE,
    HubUnavailable,
    _check_manifest,
    _etag_timeout,
    _folder_name,
    _HfHubHTTPError,
    _LocalEntryNotFoundError,
    _network_errors,
    _offline_mode,
    _RepositoryNotFoundError,
    _resolve_cache_dir,
    _resolve_endpoint,
    _RevisionNotFoundError,
    _supports,
    build_remedies,
    logger,
)

__all__ = ["fetch_variant"]



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
            f"cannot fetch variant {name!r} of {self.repo_id}@{self.revision} from {self.endpoint}: {reason}.",
            build_remedies(self.root, name),
        )

    def _not_found(self, exc: BaseException, filename: str) -> str:
        """Say which part of ``repo@revision:filename`` the Hub reported missing."""
        unpublished = " (no CIFAR-10-S release has been published there yet)" if self.repo_id == DEFAULT_REPO_ID else ""
        if isinstance(exc, _RevisionNotFoundError):
            return f"revision {self.revision!r} does not exist{unpublished}"
        if isinstance(exc, _RepositoryNotFoundError):
            return f"repository not found (or private without a token){unpublished}"
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
            raise self._unavailable(name, f"{why} and {filename} is not in the local Hugging Face cache") from exc
        except _NOT_FOUND_ERRORS as exc:
            raise self._unavailable(name, self._not_found(exc, filename)) from exc
        except _HfHubHTTPError as exc:
            raise self._unavailable(name, f"HTTP error while downloading {filename}: {exc}") from exc
        except _network_errors() as exc:
            raise self._unavailable(name, f"downloading {filename} failed ({_short(exc)})") from exc

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
            self._fall_back(_short(exc))
        else:
            if getattr(meta, "commit_hash", None) is None:
                self._fall_back("the endpoint does not answer like a Hugging Face Hub (no X-Repo-Commit)")

    def _fall_back(self, reason: str) -> None:
        # info, not a warning: a cached release is still checked file by file, and when the cache
        # lacks it, the HubUnavailable raised says why in one message
        logger.info("Hugging Face Hub unreachable (%s): %s; using the local cache only", self._where(), reason)
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

    def files(self, name: str, manifest: dict[str, Any]) -> dict[str, Path]:
        """Download every listed file into the HF cache and check size + sha256 there."""
        paths: dict[str, Path] = {}
        for fname, entry in sorted(files_of(manifest).items()):
            path = self._download(name, f"{name}/{fname}", local_only=self.offline)
            _check_file(path, entry, f"{self.repo_id}@{self.commit or self.revision}:{name}/{fname}")
            paths[fname] = path
        return paths

    def provenance(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "endpoint": self.endpoint}


def _short(exc: BaseException) -> str:
    """``ConnectError: [Errno 111] Connection refused``: an error's type and the first line of its text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:150]}" if text else type(exc).__name__


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


def _check_file(path: Path, entry: FileEntry, label: str) -> None:
    size = path.stat().st_size
    if size != entry.bytes:
        _purge_cached(path)
        raise IntegrityError(f"{label}: {size} bytes, the manifest says {entry.bytes}; nothing was installed")
    got = sha256_file(path)
    if got != entry.sha256:
        _purge_cached(path)
        raise IntegrityError(
            f"{label}: sha256 {got[:16]}... does not match the manifest's {entry.sha256[:16]}...; the "
            "file is corrupt (on the Hub or in transit). Nothing was installed and the cached copy was removed."
        )


def _copy_checked(src: Path, dst: Path, entry: FileEntry, label: str) -> None:
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(4 << 20), b""):
            h.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    if h.hexdigest() != entry.sha256 or dst.stat().st_size != entry.bytes:
        _purge_cached(src)
        raise IntegrityError(f"{label}: changed while being installed (sha256 mismatch); nothing was installed")


def _up_to_date(folder: Path, manifest: dict[str, Any]) -> bool:
    """Installed already: the same files listed, and every one of them intact."""
    if not is_complete(folder):
        return False
    try:
        return files_of(open_folder(folder, check_hashes=True).manifest) == files_of(manifest)
    except (IntegrityError, OSError, KeyError):
        return False


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
    fingerprints = {source_of(m).fingerprint for m in manifests.values()}
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
                for fname, entry in files_of(manifest).items():
                    _copy_checked(cached[n][fname], staging / fname, entry, f"{remote._where()}:{n}/{fname}")
                publish(staging, final, {**manifest, "fetched_from": remote.provenance()})
    clean_dir = data_dir(root) / "clean"
    if name != "clean" and is_complete(clean_dir):
        try:
            clean_fp: str | None = open_folder(clean_dir, check_hashes=False).source.fingerprint
        except (IntegrityError, OSError):
            clean_fp = None
        if clean_fp != source_of(manifests[name]).fingerprint:
            warnings.warn(
                f"{clean_dir} was built from a different CIFAR-10 source than the fetched {name!r}; "
                f"fetch 'clean' from the same release (fetch_variant(root, 'clean')) or rebuild locally, "
                "so that train and test come from the same data.",
                stacklevel=2,
            )
    return data_dir(root) / name
