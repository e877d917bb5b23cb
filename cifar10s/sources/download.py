"""Fetch a file over HTTP(S) the way a dataset package should.

* resumes a partial download (``<file>.part`` + an HTTP ``Range`` request),
* retries transient failures (connection errors, 5xx, truncated bodies) with backoff,
* checks the md5 before the file gets its final name (``os.replace`` of the finished part),
* shows a tqdm progress bar,
* and, when the network is unreachable, says how to supply a local copy instead.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import requests
from tqdm.auto import tqdm

from ..constants import CIFAR10_FILENAME, CIFAR10_MD5, CIFAR10_URL
from ..errors import Cifar10sError


class DownloadError(Cifar10sError, RuntimeError):
    """The file could not be fetched; the message says what to do instead."""


class ChecksumError(DownloadError):
    """The fetched bytes do not match the expected md5."""


def file_md5(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """md5 of a file, read in chunks (md5 identifies, it does not protect: sha256 does that)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _offline_hint(url: str, dest: Path) -> str:
    return (
        f"could not download {url}. If this machine is offline, fetch the file elsewhere and "
        f"either copy it to {dest} or pass its path (an archive or an extracted "
        f"'cifar-10-batches-py' folder) as cifar10=PATH."
    )


def _name_not_resolved(exc: BaseException) -> bool:
    """True when the host name could not be resolved: offline, so retrying cannot help."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return True
        stack += [e.__cause__, e.__context__, *[a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    md5: str | None,
    *,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    session: requests.Session | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``; a valid existing file is kept as is.

    A leftover ``dest.part`` from an interrupted run is continued, not restarted, when the server
    honours range requests. ``md5=None`` skips the check (only for files without a published sum).
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or file_md5(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    http = session or requests.Session()
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            if _fetch_into(http, url, part, timeout, chunk_size, progress):
                break
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                raise DownloadError(f"{url} answered HTTP {status}; " + _offline_hint(url, dest)) from exc
            last_error = exc
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            if _name_not_resolved(exc):
                raise DownloadError("the download server's name could not be resolved (no network?); "
                                    + _offline_hint(url, dest)) from exc
            last_error = exc
    else:
        kept = (f"partial data kept in {part} and will be resumed next time. "
                if part.is_file() and part.stat().st_size > 0 else "")
        raise DownloadError(
            f"gave up after {retries + 1} attempts ({last_error}); " + kept + _offline_hint(url, dest)
        ) from last_error
    if md5 is not None:
        got = file_md5(part)
        if got != md5:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{url}: md5 {got} does not match the expected {md5}; the corrupt download was "
                "deleted. Try again, or supply a verified local copy."
            )
    os.replace(part, dest)
    return dest


def _fetch_into(
    http: requests.Session, url: str, part: Path, timeout: float, chunk_size: int, progress: bool
) -> bool:
    """One attempt: append to ``part`` from where it stopped. True once the body is complete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with http.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416:  # nothing left past ``have``: the part is already whole
            return True
        resp.raise_for_status()
        if resp.status_code == 206:
            mode = "ab"
        else:  # server ignored the range: start over
            have, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        written = 0
        with open(part, mode) as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5],
            disable=not progress, leave=False,
        ) as bar:
            for chunk in resp.iter_content(chunk_size):
                f.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
            f.flush()
            os.fsync(f.fileno())
        if length is not None and written < int(length):
            raise requests.exceptions.ChunkedEncodingError(
                f"connection closed after {written} of {length} bytes"
            )
    return True


def download_cifar10(
    root: str | os.PathLike[str],
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    progress: bool = True,
    **kwargs: object,
) -> Path:
    """Download the official ``cifar-10-python.tar.gz`` into ``root`` (md5-checked)."""
    return download_file(url, Path(root) / CIFAR10_FILENAME, md5, progress=progress, **kwargs)  # type: ignore[arg-type]
