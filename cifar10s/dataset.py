"""``CIFAR10S``: the dataset class, a drop-in for ``torchvision.datasets.CIFAR10``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from torchvision.datasets import VisionDataset

from .folder import VariantFolder, not_built, open_folder, require_same_source
from .release.builders import build_variant
from .store import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IntegrityError,
    clean_folder,
    is_complete,
    variant_folder,
)
from .variants import VariantSpec, parse_variant


class CIFAR10S(VisionDataset):
    """CIFAR-10-S and its sibling variants, loaded like ``torchvision.datasets.CIFAR10``.

    Args:
        root: folder holding ``cifar10s-v1/`` (built or downloaded data) and, optionally, a
            CIFAR-10 copy (``cifar-10-python.tar.gz`` or ``cifar-10-batches-py/``).
        train: the (perturbed) training split if True; otherwise the clean CIFAR-10 test split,
            whatever the variant.
        transform / target_transform: applied to the PIL image / the int label.
        download: build whatever is missing, fetching the official CIFAR-10 archive if no copy is
            found under ``root`` (or given as ``cifar10``).
        variant: ``"cifar10s"`` (EM + OPS), ``"ops"`` (OPS only; ``"ops-k3"`` or ``pixels=3`` for
            the multi-pixel shortcut), ``"em"`` (EM noise only) or ``"clean"``.
        pixels / objective: OPS parameters (see :mod:`cifar10s.onepixel`).
        cifar10: explicit CIFAR-10 source (archive or folder) to build from.
        verify: check every array's sha256 against the manifest on load (default). With False
            only sizes, shapes and dtypes are checked.
        mmap: memory-map the arrays (default, copy-on-write: writes to ``data`` stay in memory)
            instead of reading them into memory.
        repo_id / revision: the Hub release ``download=True`` tries first (default: the package's
            pinned release); pin a release by its commit sha.
        allow_slow: let ``download=True`` build EM noise even if a short probe expects it to take
            more than an hour on this machine (otherwise that build stops at once with a
            :class:`~cifar10s.em.SlowBuildError` saying what to do instead).

    Attributes match torchvision's CIFAR10: ``data`` (N, 32, 32, 3) uint8, ``targets`` (list of
    int), ``classes``, ``class_to_idx``; plus ``manifest`` (provenance of the loaded data) and
    ``variant`` (a :class:`~cifar10s.variants.VariantSpec`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
        download: bool = False,
        variant: str | VariantSpec = "cifar10s",
        *,
        pixels: int | None = None,
        objective: str | None = None,
        cifar10: str | os.PathLike[str] | None = None,
        verify: bool = True,
        mmap: bool = True,
        repo_id: str | None = None,
        revision: str | None = None,
        allow_slow: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        self.variant = variant if isinstance(variant, VariantSpec) else parse_variant(
            variant, pixels=pixels, objective=objective
        )
        wanted = self.variant if train else VariantSpec("clean")
        folder = variant_folder(self.root, wanted)
        if download and not is_complete(folder) and self._hub_first(wanted, cifar10):
            self._fetch_release(wanted, repo_id, revision)
        if download and (not is_complete(folder) or self._other_source(folder, cifar10)):
            build_variant(self.root, wanted, cifar10=cifar10, download=True, allow_slow=allow_slow)
        if not is_complete(folder):
            raise not_built(wanted, self.root, f"variant {wanted.folder_name!r} is not built under {folder.parent}")
        self.folder: VariantFolder = open_folder(folder, check_hashes=verify)
        self.manifest = dict(self.folder.manifest)
        if train:
            images_name, labels_name = TRAIN_IMAGES, TRAIN_LABELS
        else:
            images_name, labels_name = TEST_IMAGES, TEST_LABELS
        self.data: np.ndarray = self.folder.load(images_name, mmap=mmap)
        labels = np.asarray(self.folder.load(labels_name, mmap=False))
        self.targets: list[int] = labels.tolist()
        if train and wanted.kind != "clean" and is_complete(clean_folder(self.root)):
            require_same_source(self.folder, open_folder(clean_folder(self.root), check_hashes=False))
        self.classes: list[str] = self.folder.classes
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def _hub_first(self, spec: VariantSpec, cifar10: str | os.PathLike[str] | None) -> bool:
        """Whether to try the pinned Hub release before building.

        Not when a CIFAR-10 copy was given (the user wants data built from it), nor when a copy
        sits under ``root`` and the variant needs no EM (a local build takes seconds).
        """
        if cifar10 is not None:
            return False
        from .sources.cifar10 import find_cifar10

        return spec.kind in ("em", "cifar10s") or find_cifar10(self.root) is None

    def _fetch_release(self, spec: VariantSpec, repo_id: str | None, revision: str | None) -> None:
        """Try the Hub release first; if it cannot be had, say so in one line and build locally."""
        from .hub.client import DEFAULT_REPO_ID, DEFAULT_REVISION, HubUnavailable, fetch_variant

        repo_id, revision = repo_id or DEFAULT_REPO_ID, revision or DEFAULT_REVISION
        try:
            fetch_variant(self.root, spec.folder_name, repo_id=repo_id, revision=revision)
        except HubUnavailable as exc:  # its problem names the release, the full address and why, on one line
            slow = " (EM noise: hours on a GPU)" if spec.uses_em else ""
            warnings.warn(f"{' '.join(exc.problem.split()).rstrip('.')}; building {spec.folder_name} locally "
                          f"instead{slow}", stacklevel=3)

    @staticmethod
    def _other_source(folder: Path, cifar10: str | os.PathLike[str] | None) -> bool:
        """True if an explicit ``cifar10`` path is not the one ``folder`` was built from."""
        if cifar10 is None:
            return False
        try:
            origin = open_folder(folder, check_hashes=False).source.origin
        except (IntegrityError, OSError):
            return True
        return str(Path(cifar10).expanduser().resolve()) != origin

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = Image.fromarray(np.asarray(self.data[index]))
        target = self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self.data)

    def extra_repr(self) -> str:
        split = "Train" if self.train else "Test (clean CIFAR-10)"
        return "\n".join(
            [
                f"Split: {split}",
                f"Variant: {self.variant.folder_name}",
                f"Source: {self.folder.source.short()}",
            ]
        )
