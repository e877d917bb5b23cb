"""Hugging Face Hub releases: sha256-checked fetch (:mod:`.fetch`), publish or export to a folder
(:mod:`.publish`), the generated dataset card (:mod:`.card`) and Croissant metadata (:mod:`.croissant`).

The public names (those of :mod:`.client`) are imported on first use, so importing the package
does not import ``huggingface_hub``.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = ["CARD", "DEFAULT_REPO_ID", "DEFAULT_REVISION", "REPO_TYPE", "HubUnavailable", "dataset_card",
           "fetch_variant", "pinning_hint", "publish_release", "write_release"]

__getattr__ = lazy_exports(__name__, {name: ".client" for name in __all__})
