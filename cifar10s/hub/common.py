"""What fetching and publishing a Hub release share: where the release lives, the Hub settings
read at call time, the Hub's errors as :class:`HubUnavailable`, variant names and manifest checks.

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
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import constants

try:  # huggingface_hub >= 0.23
    from huggingface_hub import errors as _hf_errors
except ImportError:  # pragma: no cover - very old huggingface_hub
    from huggingface_hub import utils as _hf_errors  # type: ignore[no-redef]

from ..errors import ActionableError, Remedy
from ..store import IntegrityError, validate_manifest
from ..variants import VariantSpec, parse_variant

#: One logger for the Hub modules (fetch and publish alike).
logger = logging.getLogger("cifar10s.hub")

#: Dataset repository of the official release. NOTE: no public release exists yet; until one is
#: published there, :func:`fetch_variant` raises :class:`HubUnavailable` (build locally instead).
DEFAULT_REPO_ID = "cifar10s/CIFAR-10-S"
#: Revision the package fetches: the release tag until a commit sha is pinned here.
DEFAULT_REVISION = "v1"
REPO_TYPE = "dataset"

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


class HubUnavailable(ActionableError):
    """The Hub (or the requested release, revision or file) cannot be reached; build locally instead.

    A ``RuntimeError``; ``problem`` says what could not be fetched, the remedies how to build it."""


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


def build_remedies(root: Path, name: str) -> list[Remedy]:
    """How to build variant folder ``name`` under ``root`` instead of fetching it."""
    try:
        command = VariantSpec.from_folder_name(name).build_command(root)
    except ValueError:
        command = f"cifar10s build --variant {name} --root {root} --cifar10 PATH"
    return [
        Remedy("build it locally instead (PATH = the official cifar-10-python.tar.gz or an extracted "
               "cifar-10-batches-py folder; add --download to fetch CIFAR-10 from its authors' site)", command=command),
        Remedy("or build it here, downloading CIFAR-10 if no copy is under the root", api={"download": True},
               where="CIFAR10S"),
    ]


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
