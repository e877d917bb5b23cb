"""Public names imported on first use, so importing a package face stays cheap.

``cifar10s``, ``cifar10s.training``, ``cifar10s.hub``, the leaderboard and its sandbox each list
their public names and the module that defines each one; the first attribute access imports that
module (torch, torchvision or huggingface_hub come in only then) and caches the value on the
package. This module imports nothing heavy itself.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``names`` maps each public name to the module
    that defines it, relative to the package (``".dataset"``, ``"..paper"``)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
