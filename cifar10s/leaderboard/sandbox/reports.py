"""The fixed schema of what a child reports: known keys, types, ranges, bounded inert strings.

A child's report is someone else's JSON. Nothing of it reaches a signed result unless it passes
here: an unknown key (a copied key file in ``records[0].note``, say), a string where a number
belongs, a number out of its range or an overlong string fails the run with the field named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .failures import WorkerFailed
from .inert import inert_text

__all__ = ["ENVELOPE", "check_keys", "epoch_record", "train_result"]

#: keys every report carries besides its task's own
ENVELOPE = frozenset({"nonce", "task", "ok"})
_MAX_TEXT = 200


def _fail(label: str, field: str, why: str) -> WorkerFailed:
    return WorkerFailed(f"{label}: the child's report has {field} {why}; nothing it reported is used")


def check_keys(obj: Any, allowed: set[str] | frozenset[str], label: str, where: str,
               required: set[str] | frozenset[str] = frozenset()) -> Mapping[str, Any]:
    """``obj`` is a JSON object with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(obj, dict):
        raise _fail(label, where or "its top level", "that is not a JSON object")
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise _fail(label, f"{where}.{inert_text(unknown[0])[:60]}" if where else inert_text(unknown[0])[:60],
                    "as a field it may not report")
    missing = sorted(required - set(obj))
    if missing:
        raise _fail(label, f"{where}.{missing[0]}" if where else missing[0], "missing")
    return obj


def _num(lo: float, hi: float, *, integer: bool = False, none: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if v is None:
            return none
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            return False
        return math.isfinite(v) and lo <= v <= hi
    return ok


_EPOCH: dict[str, Callable[[Any], bool]] = {
    "epoch": _num(1, 100_000, integer=True),
    "lr": _num(0.0, 1e6),
    "train_loss": _num(-1e12, 1e12, none=True),  # a diverged run's NaN arrives as null
    "train_acc": _num(0.0, 1.0, none=True),
    "evaluated": lambda v: isinstance(v, bool),
    "param_distance": _num(0.0, 1e12, none=True),
    "train_time": _num(0.0, 1e8),
    "eval_time": _num(0.0, 1e8),
    "images_per_sec": _num(0.0, 1e12),
    "elapsed": _num(0.0, 1e9),
}

#: the training result's own fields the scorer uses (numbers checked), and those it accepts but
#: never copies into a result (the child's own view of its config and environment)
_RESULT: dict[str, Callable[[Any], bool]] = {
    "final_train_acc": _num(0.0, 1.0, none=True),
    "num_train": _num(1, 10_000_000, integer=True),
    "param_count": _num(1, 1e11, integer=True),
    "total_time": _num(0.0, 1e9),
    "resumed_from_epoch": _num(0, 100_000, integer=True, none=True),
    "completed": lambda v: isinstance(v, bool),
    "world_size": _num(1, 1_000_000, integer=True),
    "device": lambda v: isinstance(v, str) and len(v) <= _MAX_TEXT,
    "preset": lambda v: v is None or (isinstance(v, str) and len(v) <= _MAX_TEXT),
    "param_distance_definition": lambda v: isinstance(v, str) and len(v) <= 2000,
}
_RESULT_UNUSED = frozenset({"config", "preset_diff", "environment", "precision", "records"})


def epoch_record(raw: Any, label: str, where: str) -> dict[str, Any]:
    """One epoch's record, every field present and in range."""
    rec = check_keys(raw, frozenset(_EPOCH), label, where, required=frozenset(_EPOCH))
    for key, ok in _EPOCH.items():
        if not ok(rec[key]):
            raise _fail(label, f"{where}.{key}", f"= {inert_text(repr(rec[key]))[:60]}, outside its type or range")
    return {k: rec[k] for k in _EPOCH}


def train_result(raw: Any, label: str) -> dict[str, Any]:
    """A training child's ``result``: its checked fields (``device`` made inert), ``records`` checked
    one by one; the config, environment and precision it echoes are not copied (precision is
    checked by the caller)."""
    res = check_keys(raw, frozenset(_RESULT) | _RESULT_UNUSED, label, "result",
                     required=frozenset({"records", "num_train", "param_count", "total_time", "precision"}))
    out: dict[str, Any] = {}
    for key, ok in _RESULT.items():
        if key in res:
            if not ok(res[key]):
                raise _fail(label, f"result.{key}", f"= {inert_text(repr(res[key]))[:60]}, outside its type or range")
            out[key] = inert_text(res[key])[:_MAX_TEXT] if isinstance(res[key], str) else res[key]
    records = res["records"]
    if not isinstance(records, list) or len(records) > 100_000:
        raise _fail(label, "result.records", "that is not a list of epochs")
    out["records"] = [epoch_record(r, label, f"result.records[{i}]") for i, r in enumerate(records)]
    out["precision"] = res["precision"]
    return out
