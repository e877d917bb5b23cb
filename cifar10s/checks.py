"""One way to refuse a value that is not among the valid ones, with a message that lists them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

__all__ = ["check_choice"]

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
