"""Releases of built variants on the Hugging Face Hub: the names of earlier versions, in one place.

Fetching lives in :mod:`.fetch`, publishing in :mod:`.publish`, what both share (the release's
place, Hub settings read at call time, :class:`HubUnavailable`) in :mod:`.common`; this module
re-exports their public names so ``from cifar10s.hub.client import fetch_variant`` keeps working.

No public release exists yet: :data:`DEFAULT_REPO_ID` and :data:`DEFAULT_REVISION` name where the
official one will live. Until it does (or without network), build locally instead::

    cifar10s build --variant ops --root data --cifar10 cifar-10-python.tar.gz
"""

from __future__ import annotations

from .card import dataset_card
from .common import DEFAULT_REPO_ID, DEFAULT_REVISION, REPO_TYPE, HubUnavailable
from .fetch import fetch_variant
from .publish import CARD, pinning_hint, publish_release, write_release

__all__ = [
    "CARD",
    "DEFAULT_REPO_ID",
    "DEFAULT_REVISION",
    "REPO_TYPE",
    "HubUnavailable",
    "dataset_card",
    "fetch_variant",
    "pinning_hint",
    "publish_release",
    "write_release",
]
