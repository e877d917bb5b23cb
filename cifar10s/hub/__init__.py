"""Hugging Face Hub releases: sha256-checked fetch (:mod:`.fetch`), publish (:mod:`.publish`), and
the generated dataset card (:mod:`.card`).

The public names (those of :mod:`.client`) are imported on first use, so importing the package
does not import ``huggingface_hub``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CARD", "DEFAULT_REPO_ID", "DEFAULT_REVISION", "REPO_TYPE", "HubUnavailable", "dataset_card",
           "fetch_variant", "pinning_hint", "publish_release", "write_release"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module(f"{__name__}.client"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
