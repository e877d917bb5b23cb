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

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import strict_json
from ...constants import DEFAULT_RECIPE
from ...store import atomic_write_bytes
from .signing import SIGNATURE_FIELD, SigningKey, load_signing_key, sign_record
from ...errors import Cifar10sError

__all__ = [
    "MAX_FILE_BYTES",
    "RESULT_FORMAT",
    "RESULT_FORMAT_VERSION",
    "SANDBOX_NONE",
    "MalformedResult",
    "ResultRecord",
    "data_caveats",
    "kind_of",
    "read_result",
    "sandbox_label",
    "validate_result",
    "write_result",
]

RESULT_FORMAT = "cifar10s-leaderboard-result"
RESULT_FORMAT_VERSION = 2
#: the ``sandbox`` value of a result scored without the OS sandbox
SANDBOX_NONE = "none"
#: result files larger than this are skipped unread (real ones are well under 1 MiB)
MAX_FILE_BYTES = 16 * 2**20


class MalformedResult(Cifar10sError, ValueError):
    """A result record the board cannot show; the message names the field and what is wrong."""


@dataclass(frozen=True)
class ResultRecord:
    """Every top-level field of a result file (format version 2), as the scorer fills them in.

    ``sandbox`` describes the OS sandbox the submission's code ran in (tool, version, namespaces,
    limits), or is :data:`SANDBOX_NONE`. ``accuracy`` values are fractions in [0, 1].
    """

    created_utc: str
    submission: dict[str, Any]
    dataset: dict[str, Any]
    test_set: dict[str, Any]
    code: dict[str, Any]
    preset: str
    preset_diff: dict[str, Any]
    paper_setting: bool
    config: dict[str, Any]
    seeds: list[int]
    device: str
    precision: dict[str, Any]
    environment: dict[str, Any]
    wall_time_s: float
    train_time_s: float
    eval: dict[str, Any]
    isolation: str
    sandbox: dict[str, Any] | str
    integrity: dict[str, Any]
    per_seed: list[dict[str, Any]]
    summary: dict[str, Any]
    paper: list[dict[str, Any]]
    format: str = RESULT_FORMAT
    format_version: int = RESULT_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


#: JSON type(s) of each field; (types, may be null). Checked for every field present; in
#: version 2 every field must be present.
_OBJECT, _LIST, _TEXT, _NUMBER = (dict,), (list,), (str,), (int, float)
FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "created_utc": (_TEXT, False), "submission": (_OBJECT, False), "dataset": (_OBJECT, False),
    "test_set": (_OBJECT, False), "code": (_OBJECT, False), "preset": (_TEXT, False),
    "preset_diff": (_OBJECT, False), "paper_setting": ((bool,), False), "config": (_OBJECT, False),
    "seeds": (_LIST, False), "device": (_TEXT, False), "precision": (_OBJECT, False),
    "environment": (_OBJECT, False), "wall_time_s": (_NUMBER, False), "train_time_s": (_NUMBER, False),
    "eval": (_OBJECT, False), "isolation": (_TEXT, False), "sandbox": ((dict, str), False),
    "integrity": (_OBJECT, False), "per_seed": (_LIST, False), "summary": (_OBJECT, False),
    "paper": (_LIST, False), "format": (_TEXT, False), "format_version": ((int,), False),
}
#: fields the board needs in every version (version 1 files were written without the others)
_ALWAYS = ("format", "submission", "dataset", "summary", "preset")
_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
          float: "a number"}


def kind_of(value: Any) -> str:
    """``"an object"``, ``"a list"``... for messages; ``"nothing (missing or null)"`` for None."""
    return "nothing (missing or null)" if value is None else _NAMES.get(type(value), type(value).__name__)


def _expected(types: tuple[type, ...]) -> str:
    if types == _NUMBER:
        return "a number"
    return " or ".join(_NAMES[t] for t in types)


def validate_result(data: Any) -> dict[str, Any]:
    """Check the shape of a result record: format, version and the JSON type of every field.

    Returns the record; raises :class:`MalformedResult` naming the first field that is wrong.
    The fields the board shows are checked in depth by :func:`.results.parse_result`.
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
    required = set(FIELD_TYPES) if version >= 2 else set(_ALWAYS)
    for name, (types, nullable) in FIELD_TYPES.items():
        value = data.get(name)
        if value is None and (name not in required or (nullable and name in data)):
            continue
        bad_bool = isinstance(value, bool) and bool not in types
        if bad_bool or not isinstance(value, types):
            raise MalformedResult(f"{name} must be {_expected(types)}, got {kind_of(value)}")
        if name in ("wall_time_s", "train_time_s") and not math.isfinite(float(value)):
            raise MalformedResult(f"{name} is not a finite number")
    sandbox = data.get("sandbox")
    if isinstance(sandbox, str) and sandbox != SANDBOX_NONE:
        raise MalformedResult(f"sandbox must be an object describing the sandbox, or {SANDBOX_NONE!r}")
    if isinstance(sandbox, dict) and not sandbox:
        raise MalformedResult("sandbox is an empty object (it describes the sandbox, or is 'none')")
    if version >= 2 and SIGNATURE_FIELD not in data:
        raise MalformedResult(f"format version {version} results are signed, and this one has no signature")
    return data


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


def data_caveats(dataset: Mapping[str, Any]) -> list[str]:
    """Why a result's training data is not the data the paper trained on (empty when it is).

    Reads a result's ``dataset`` record: a non-official CIFAR-10 copy (e.g. a subset) or EM noise
    from another recipe than the release's make a number incomparable with the paper's, whatever
    the training settings.
    """
    out: list[str] = []
    if not dataset.get("official_cifar10", False):
        out.append(f"built from a CIFAR-10 copy that is not the official release "
                   f"({dataset.get('num_train', '?')} training images)")
    recipe = dataset.get("recipe")
    if recipe is not None and recipe != DEFAULT_RECIPE:
        out.append(f"EM noise from recipe {recipe!r}, not the release recipe {DEFAULT_RECIPE!r}")
    return out


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
    data = record.to_dict() if isinstance(record, ResultRecord) else dict(record)
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
