"""The result file's schema, written once: typed records, and the checks generated from their types.

:class:`ResultRecord` is the top level of a result file; below it the parts the board reads are
typed too (:class:`DatasetRecord`, :class:`TestSetRecord`, :class:`SeedRecord` with its
:class:`EpochRecord` curve, :class:`Summary`). :func:`check_record` walks the dataclasses' type
hints to check a JSON object's fields (so there is no second table of field types to keep in
step), and :func:`from_json` builds the typed record from an object that passed the check.

Nested fields with a default are optional (older files were written without them); a field
without a default is required. Unknown fields are ignored by both. Parts the board only shows
or passes on (``config``, ``environment``, ``sandbox``, ``integrity``...) stay JSON objects.
This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from collections.abc import Iterable
from functools import cache
from typing import Any, Union
from ...errors import Cifar10sError

__all__ = [
    "RESULT_FORMAT",
    "RESULT_FORMAT_VERSION",
    "SANDBOX_NONE",
    "AccuracySummary",
    "ContentFingerprint",
    "DatasetRecord",
    "EpochRecord",
    "MalformedResult",
    "ResultRecord",
    "SeedRecord",
    "Summary",
    "TestSetRecord",
    "check_record",
    "from_json",
    "kind_of",
    "to_json",
]

RESULT_FORMAT = "cifar10s-leaderboard-result"
RESULT_FORMAT_VERSION = 2
#: the ``sandbox`` value of a result scored without the OS sandbox
SANDBOX_NONE = "none"


class MalformedResult(Cifar10sError, ValueError):
    """A result record the board cannot show; the message names the field and what is wrong."""


# ------------------------------------------------------------------------------------------------
# the records


@dataclass(frozen=True)
class ContentFingerprint:
    """The order-free content fingerprint of a CIFAR-10 copy, per split (sha256 hex digests)."""

    train: str
    test: str


@dataclass(frozen=True)
class DatasetRecord:
    """The training data a result was scored on (``dataset``)."""

    variant: str
    paper_train_set: str | None = None
    spec: dict[str, Any] | None = None
    manifest_sha256: str | None = None
    train_images_sha256: str | None = None
    train_labels_sha256: str | None = None
    num_train: int | None = None
    num_test: int | None = None
    source_fingerprint: str | None = None
    #: ``official``, ``official-content``, ``full-copy`` or ``subset``; None in older results
    source_kind: str | None = None
    source_content_fingerprint: ContentFingerprint | None = None
    official_cifar10: bool = False
    recipe: str | None = None
    built_with_cifar10s: str | None = None


@dataclass(frozen=True)
class TestSetRecord:
    """The held-out clean test set the scorer evaluated on (``test_set``)."""

    folder: str | None = None
    manifest_sha256: str | None = None
    test_images_sha256: str | None = None
    test_labels_sha256: str | None = None
    num_test: int | None = None
    source_fingerprint: str | None = None
    content_fingerprint: str | None = None  # of the test images the scorer held
    source_kind: str | None = None
    official_cifar10: bool | None = None
    verification: dict[str, Any] | None = None


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a seed's training curve (accuracies are fractions; a diverged loss is null)."""

    epoch: int
    train_loss: float | None = None
    train_acc: float | None = None
    test_acc: float | None = None
    lr: float | None = None
    evaluated: bool | None = None


@dataclass(frozen=True)
class SeedRecord:
    """One seed's run (``per_seed[i]``): its accuracies and, when recorded, its curve."""

    seed: int | None = None
    final_test_acc: float | None = None
    best_test_acc: float | None = None
    best_epoch: int | None = None
    flipped_test_acc: float | None = None
    final_train_acc: float | None = None
    records: list[EpochRecord] | None = None


@dataclass(frozen=True)
class AccuracySummary:
    """Mean, sample std and values over seeds of one accuracy (fractions)."""

    mean: float | None = None
    std: float | None = None
    n: int | None = None
    values: list[float | None] | None = None


@dataclass(frozen=True)
class Summary:
    """The result's accuracies over seeds (``summary``)."""

    final_test_acc: AccuracySummary
    best_test_acc: AccuracySummary | None = None
    flipped_test_acc: AccuracySummary | None = None
    std_definition: str | None = None


@dataclass(frozen=True)
class ResultRecord:
    """Every top-level field of a result file (format version 2), as the scorer fills them in.

    ``sandbox`` describes the OS sandbox the submission's code ran in (tool, version, namespaces,
    limits), or is :data:`SANDBOX_NONE`. ``accuracy`` values are fractions in [0, 1]. The scorer
    may give the typed parts as plain JSON objects; :func:`to_json` writes either.
    """

    created_utc: str
    submission: dict[str, Any]
    dataset: DatasetRecord
    test_set: TestSetRecord
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
    per_seed: list[SeedRecord]
    summary: Summary
    paper: list[dict[str, Any]]
    format: str = RESULT_FORMAT
    format_version: int = RESULT_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = to_json(self)
        assert isinstance(out, dict)
        return out


#: top-level fields a version-1 file (unsigned, written before the others existed) must have
V1_FIELDS = ("format", "submission", "dataset", "summary", "preset")


# ------------------------------------------------------------------------------------------------
# checks generated from the type hints


_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
          float: "a number"}


def kind_of(value: Any) -> str:
    """``"an object"``, ``"a list"``... for messages; ``"nothing (missing or null)"`` for None."""
    return "nothing (missing or null)" if value is None else _NAMES.get(type(value), type(value).__name__)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _options(hint: Any) -> tuple[list[Any], bool]:
    """The non-None alternatives of a type hint and whether None is allowed."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = typing.get_args(hint)
        return [a for a in args if a is not type(None)], type(None) in args
    return [hint], hint is Any


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint) or hint
    if dataclasses.is_dataclass(origin) or origin is dict:
        return "an object"
    if origin is float:
        return "a number"
    return _NAMES.get(origin, str(hint))


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the JSON type of ``hint`` (its contents are checked by :func:`_check`)."""
    origin = typing.get_origin(hint) or hint
    if hint is Any:
        return True
    if isinstance(value, bool):
        return origin is bool
    if origin is float:
        return isinstance(value, (int, float))
    if origin is int:
        return isinstance(value, int)
    if dataclasses.is_dataclass(origin):
        return isinstance(value, dict)
    return isinstance(value, origin)


def _check(value: Any, hint: Any, where: str) -> None:
    options, nullable = _options(hint)
    if value is None:
        if nullable:
            return
        raise MalformedResult(f"{where} must be {' or '.join(map(_describe, options))}, got {kind_of(value)}")
    match = next((h for h in options if _matches(value, h)), None)
    if match is None:
        raise MalformedResult(f"{where} must be {' or '.join(map(_describe, options))}, got {kind_of(value)}")
    origin = typing.get_origin(match) or match
    if origin is float and not math.isfinite(float(value)):
        raise MalformedResult(f"{where} is {value}, not a finite number")
    if dataclasses.is_dataclass(origin):
        check_record(value, origin, where)
    elif origin is list:
        (item,) = typing.get_args(match) or (Any,)
        for i, v in enumerate(value):
            _check(v, item, f"{where}[{i}]")


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def check_record(data: Any, cls: type, where: str = "", *, required: Iterable[str] | None = None) -> None:
    """Check that ``data`` is an object with the fields of dataclass ``cls``, each of its JSON type.

    Required: the fields named in ``required``, else every field without a default. Unknown
    fields are ignored. Raises :class:`MalformedResult` naming the first field that is wrong.
    """
    if not isinstance(data, dict):
        raise MalformedResult(f"{where or 'the file'} must be an object, got {kind_of(data)}")
    hints = _hints(cls)
    must = set(required) if required is not None else {f.name for f in dataclasses.fields(cls) if not _has_default(f)}
    for f in dataclasses.fields(cls):
        name = f"{where}.{f.name}" if where else f.name
        value = data.get(f.name)
        if value is None and f.name not in data and f.name not in must:
            continue
        _check(value, hints[f.name], name)


def _build(value: Any, hint: Any) -> Any:
    if value is None:
        return None
    options, _ = _options(hint)
    match = next((h for h in options if _matches(value, h)), Any)
    origin = typing.get_origin(match) or match
    if dataclasses.is_dataclass(origin):
        return from_json(origin, value)
    if origin is list:
        (item,) = typing.get_args(match) or (Any,)
        return [_build(v, item) for v in value]
    if origin is float:
        return float(value)
    return value


def from_json(cls: type, data: dict[str, Any]) -> Any:
    """The typed record of an object that passed :func:`check_record` for ``cls`` (unknown fields
    dropped; a missing optional field takes its default, a missing required one is None)."""
    hints = _hints(cls)
    kwargs = {f.name: _build(data[f.name], hints[f.name]) for f in dataclasses.fields(cls) if f.name in data}
    for f in dataclasses.fields(cls):
        if f.name not in kwargs and not _has_default(f):
            kwargs[f.name] = None  # version-1 files lack most top-level fields
    return cls(**kwargs)


def to_json(value: Any) -> Any:
    """A typed record (or plain JSON data holding some) as JSON data: dataclasses become objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value

