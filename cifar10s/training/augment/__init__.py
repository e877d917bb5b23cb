"""On-device batch augmentations: the pipeline the trainer builds, and each augmentation in its module.

* :mod:`.pipeline`: :func:`build_augmentation` (the Table 4 names), :class:`AugmentationPipeline`,
  random crop + flip, Cutout, Mixup;
* :mod:`.authors` and :mod:`.authors_ops`: the OPS authors' RandAugment (their op list and magnitudes);
* :mod:`.randaugment_tv`: torchvision's RandAugment, batched on the device;
* :mod:`.draws`: the random draws and input checks they share.

See docs/augmentations.md.
"""

from __future__ import annotations

from . import pipeline as _pipeline
from .pipeline import *  # noqa: F403 - the package's names are the pipeline's (which imports the RandAugments)

__all__ = list(_pipeline.__all__)
