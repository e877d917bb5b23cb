"""The result file: its fields and types, writing it signed, reading it strictly, checking its shape.

The scorer builds a :class:`ResultRecord` and writes it with :func:`write_result`; the board reads
files with :func:`read_result` and checks them with :func:`validate_result` before
:mod:`.results` turns them into table rows. This module imports no torch, so rendering the board
does not either.

Format versions: 1 (unsigned, no ``sandbox``; the committed examples) and 2 (every field of
:class:`ResultRecord` required, signed). A file of either version is read; only a signature by a
trusted key (:mod:`.signing`) makes the board rank it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ... import strict_json
from ...constants import CIFAR10_OFFICIAL_CONTENT, DEFAULT_RECIPE
from ...store import atomic_write_bytes
from .result_schema import (
    RESULT_FORMAT,
    RESULT_FORMAT_VERSION,
    SANDBOX_NONE,
    V1_FIELDS,
    MalformedResult,
    ResultRecord,
    check_record,
    from_json,
    kind_of,
    to_json,
)
from .signing import SIGNATURE_FIELD, SigningKey, load_signing_key, sign_record

__all__ = [
    "MAX_FILE_BYTES",
    "RESULT_FORMAT",
    "RESULT_FORMAT_VERSION",
    "SANDBOX_NONE",
    "MalformedResult",
    "ResultRecord",
    "data_caveats",
    "SOURCE_KINDS",
    "data_source",
    "kind_of",
    "read_result",
    "sandbox_label",
    "typed_record",
    "validate_result",
    "write_result",
]

#: result files larger than this are skipped unread (real ones are well under 1 MiB)
MAX_FILE_BYTES = 16 * 2**20


def validate_result(data: Any) -> dict[str, Any]:
    """Check the shape of a result record: format, version and the JSON type of every field
    (generated from :class:`ResultRecord`'s types, nested records included).

    Returns the record; raises :class:`MalformedResult` naming the first field that is wrong.
    The values the board shows are checked in depth by :func:`.results.parse_result`.
    """
    if not isinstance(data, dict):
        raise MalformedResult(f"the file must be an object, got {kind_of(data)}")
    if data.get("format") != RESULT_FORMAT:
        shown = data.get("format") if isinstance(data.get("format"), str) else kind_of(data.get("format"))
        raise MalformedResult(f"not a {RESULT_FORMAT} file (format = {str(shown)[:60]!r})")
    version = data.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise MalformedResult(f"format_version must be an integer, got {kind_of(version)}")
    if version > RESULT_FORMAT_VERSION:
        raise MalformedResult(f"format_version {version} is newer than this renderer reads "
                              f"({RESULT_FORMAT_VERSION}); update cifar10s")
    every = [f for f in ResultRecord.__dataclass_fields__]
    check_record(data, ResultRecord, required=every if version >= 2 else V1_FIELDS)
    sandbox = data.get("sandbox")
    if isinstance(sandbox, str) and sandbox != SANDBOX_NONE:
        raise MalformedResult(f"sandbox must be an object describing the sandbox, or {SANDBOX_NONE!r}")
    if isinstance(sandbox, dict) and not sandbox:
        raise MalformedResult("sandbox is an empty object (it describes the sandbox, or is 'none')")
    if version >= 2 and SIGNATURE_FIELD not in data:
        raise MalformedResult(f"format version {version} results are signed, and this one has no signature")
    return data


def typed_record(data: Any) -> ResultRecord:
    """The typed :class:`ResultRecord` of a result object (checked first by :func:`validate_result`)."""
    record: ResultRecord = from_json(ResultRecord, validate_result(data))
    return record


def sandbox_label(data: Mapping[str, Any]) -> str | None:
    """A short name of the sandbox a result ran in (``"bubblewrap 0.9.0"``), or None when it ran in none.

    A result without a ``sandbox`` field (format version 1) counts as run in none.
    """
    sandbox = data.get("sandbox")
    if not isinstance(sandbox, dict) or not sandbox:
        return None
    tool, version = sandbox.get("tool"), sandbox.get("version")
    label = tool if isinstance(tool, str) and tool else "sandbox"
    return f"{label} {version}" if isinstance(version, str) and version else label


#: the source kinds a dataset record names (:func:`cifar10s.sources.cifar10.source_kind`)
SOURCE_KINDS = ("official", "official-content", "full-copy", "subset")


def _content(dataset: Mapping[str, Any]) -> dict[str, str] | None:
    content = dataset.get("source_content_fingerprint")
    if isinstance(content, Mapping) and all(isinstance(content.get(k), str) for k in ("train", "test")):
        return {"train": content["train"], "test": content["test"]}
    return None


def _matches_official(content: dict[str, str] | None) -> bool | None:
    """Whether a copy's content equals the official archive's: None while the official content
    fingerprint is not pinned (:data:`cifar10s.constants.CIFAR10_OFFICIAL_CONTENT`)."""
    if CIFAR10_OFFICIAL_CONTENT is None or content is None:
        return None
    return content == dict(CIFAR10_OFFICIAL_CONTENT)


def data_caveats(dataset: Mapping[str, Any]) -> list[str]:
    """Why a result's training data is not the data the paper trained on (empty when it is).

    Reads a result's ``dataset`` record. Not comparable: a subset of CIFAR-10, a full-size copy
    whose content is known to differ from the official archive's, EM noise from another recipe
    than the release's. A full-size copy whose content is not yet known to differ is comparable
    (training shuffles the images and accuracy does not depend on their order, so only the images
    and labels matter; :func:`data_source` says it is not the official archive). Results written
    before ``source_kind`` existed are judged by ``official_cifar10`` alone.
    """
    out: list[str] = []
    kind = dataset.get("source_kind")
    num_train = dataset.get("num_train", "?")
    if kind is None:
        if not dataset.get("official_cifar10", False):
            out.append(f"built from a CIFAR-10 copy that is not the official release ({num_train} training images)")
    elif kind == "subset":
        out.append(f"built from a subset of CIFAR-10 ({num_train} training images), not the whole training set")
    elif kind == "full-copy" and _matches_official(_content(dataset)) is False:
        out.append("built from a full-size CIFAR-10 copy whose images or labels differ from the official archive's")
    elif kind not in SOURCE_KINDS:
        out.append(f"built from a CIFAR-10 copy of unknown kind {str(kind)[:40]!r}")
    recipe = dataset.get("recipe")
    if recipe is not None and recipe != DEFAULT_RECIPE:
        out.append(f"EM noise from recipe {recipe!r}, not the release recipe {DEFAULT_RECIPE!r}")
    return out


def data_source(dataset: Mapping[str, Any]) -> tuple[str, str | None]:
    """What CIFAR-10 copy a result was trained on: a short label and, where it needs one, a note.

    ``("official archive", None)``; ``("full-size copy", "full-size copy, not the official archive:
    content fingerprint ...")``; ``("subset", ...)``. Never calls a copy the official archive:
    a full-size copy's equality with it is stated as unverified until the official content
    fingerprint is pinned. Results written before ``source_kind`` existed get the label their
    ``official_cifar10`` flag gives, with no note.
    """
    kind = dataset.get("source_kind")
    content = _content(dataset)
    ident = (f"content fingerprint train {content['train'][:16]}…, test {content['test'][:16]}…"
             if content else "no content fingerprint recorded")
    if kind is None:
        return ("official archive" if dataset.get("official_cifar10") is True else "not the official release"), None
    if kind == "official":
        return "official archive", None
    if kind == "official-content":
        return "official content, another copy", (
            f"training data: the official archive's images and labels from another copy (not the official "
            f"archive's files; {ident}, equal to the official archive's)")
    if kind == "full-copy":
        same = _matches_official(content)
        verdict = {None: "whether its images and labels equal the official archive's is unverified (the official "
                         "content fingerprint is not yet pinned in cifar10s/constants.py)",
                   True: "its images and labels equal the official archive's (content fingerprints match)",
                   False: "its images or labels differ from the official archive's"}[same]
        return "full-size copy", (f"training data: full-size copy, not the official archive: all "
                                  f"{dataset.get('num_train', '?')} training and {dataset.get('num_test', '?')} "
                                  f"test images of CIFAR-10 from another copy ({ident}); {verdict}")
    if kind == "subset":
        return "subset", None  # data_caveats says why it is not comparable
    return "unknown source", None


# ------------------------------------------------------------------------------------------------
# writing and reading


def _plain(value: Any) -> Any:
    """JSON data as a reader will see it: tuples as lists, keys as strings, non-finite floats as null.

    A diverged run's loss (NaN) has no JSON spelling; it is written as null.
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"a result holds only JSON data, not {type(value).__name__}")


def write_result(path: str | os.PathLike[str], record: ResultRecord | Mapping[str, Any],
                 key: SigningKey | None = None) -> dict[str, Any]:
    """Sign ``record`` with ``key`` (default: this installation's, created on first use) and write it
    atomically to ``path``; return the record as written (what a reader will load)."""
    data = record.to_dict() if isinstance(record, ResultRecord) else to_json(dict(record))
    data = _plain({k: v for k, v in data.items() if not str(k).startswith("_") and k != SIGNATURE_FIELD})
    validate_result({**data, SIGNATURE_FIELD: {}})  # the scorer never writes a file the board refuses
    signed = sign_record(data, key or load_signing_key())
    text = json.dumps(signed, indent=2, sort_keys=True, allow_nan=False) + "\n"
    if strict_json.loads(text) != signed:  # what is signed is exactly what will be read back
        raise ValueError("the result does not survive a JSON round trip unchanged")
    atomic_write_bytes(path, text.encode("utf-8"))
    return signed


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The record in a result file, read strictly; raises :class:`MalformedResult` (or OSError).

    Refused: not a regular file, more than :data:`MAX_FILE_BYTES`, not UTF-8, not JSON, duplicate
    keys at any depth, NaN/Infinity, integers of more than 20 digits, top-level keys starting with
    ``_`` (the harness's own in-memory keys), and anything :func:`validate_result` refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise MalformedResult("not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise MalformedResult(f"{size} bytes, more than the {MAX_FILE_BYTES} a result file may have")
    try:
        data = strict_json.read_file(path, max_bytes=MAX_FILE_BYTES)
    except strict_json.StrictJSONError as exc:
        raise MalformedResult(str(exc)) from None
    validate_result(data)
    private = sorted(k for k in data if k.startswith("_"))
    if private:
        raise MalformedResult(f"top-level key {private[0][:40]!r}: keys starting with '_' are not part of a result")
    return data
