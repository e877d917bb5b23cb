"""One strict JSON reader for every file the harness reads that someone else may have written.

Python's ``json`` module keeps the *last* of two equal keys, reads ``NaN``, ``Infinity`` and
``1e400`` (as infinity), and turns a 4000-digit literal into an integer that later breaks
``float()``. A file with two ``"entry"`` keys then reads one way to a reviewer and another to the
program. :func:`loads` refuses all of these, at any depth, with a :class:`StrictJSONError` that
says where; :func:`read_file` also bounds the size and requires UTF-8.

Used for ``submission.json``, result files, data manifests (local and downloaded), the test-split
pins, the paper's baselines, recipes and work-folder stamps.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any
from .errors import Cifar10sError

__all__ = ["MAX_INT_DIGITS", "StrictJSONError", "loads", "read_file"]

#: integer literals longer than this are refused (2**64 has 20 digits; nothing the harness reads needs more)
MAX_INT_DIGITS = 20


class StrictJSONError(Cifar10sError, ValueError):
    """The text is not JSON this harness accepts; the message says why and where."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key[:80]!r} in one object (a JSON reader may keep either "
                                  "value; write each key once)")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON value (numbers must be finite)")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise StrictJSONError(f"an integer with {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"the number {text[:40]} is out of range (numbers must be finite)")
    return value


def loads(text: str | bytes) -> Any:
    """Parse JSON, refusing duplicate keys, NaN/Infinity, out-of-range floats and huge integers.

    Bytes must be UTF-8. Every failure (syntax, nesting too deep, encoding) is a
    :class:`StrictJSONError`.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int,
                          parse_float=_float)
    except StrictJSONError:
        raise
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise StrictJSONError("JSON nested too deeply") from None
    except ValueError as exc:  # anything else the decoder refuses
        raise StrictJSONError(f"invalid JSON ({str(exc)[:200]})") from None


def read_file(path: str | os.PathLike[str], *, max_bytes: int) -> Any:
    """:func:`loads` of a regular file of at most ``max_bytes`` bytes (OSError passes through)."""
    path = Path(path)
    if not path.is_file():  # before opening: a FIFO would block the reader
        raise StrictJSONError("not a regular file")
    with path.open("rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise StrictJSONError(f"larger than the {max_bytes} bytes such a file may have")
    return loads(raw)
