"""One way to refuse a value that is not among the valid ones, with a message that lists them."""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["check_choice", "check_type"]

T = TypeVar("T")


def check_choice(what: str, value: T, valid: Iterable[T], hint: str = "") -> T:
    """Return ``value`` if it is one of ``valid``; else raise ``ValueError("unknown WHAT 'x'; valid: a, b")``.

    ``hint`` is appended to the message (e.g. how to spell a family of names).
    """
    options = list(valid)
    if value in options:
        return value
    listed = ", ".join(str(v) for v in options)
    raise ValueError(f"unknown {what} {value!r}; valid: {listed}" + (f" {hint}" if hint else ""))


def _conforms(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple or origin is list:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        if origin is tuple:
            return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
        return all(_conforms(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if isinstance(hint, type):
        return isinstance(value, (hint, dict))  # a nested config may come as its dict
    return True


def _describe(hint: Any) -> str:
    text = str(hint).replace("typing.", "").replace("NoneType", "None")
    return text if not isinstance(hint, type) else hint.__name__


def check_type(what: str, value: T, hint: Any) -> T:
    """Return ``value`` if it fits the annotation ``hint`` (finite numbers only); else raise
    ``ValueError`` naming the setting, the value and the expected type. Settings come from JSON
    files and command lines, so a wrong type fails here, not deep inside a run."""
    if _conforms(value, hint):
        return value
    raise ValueError(f"{what} must be {_describe(hint)}, got {value!r}")
