"""cifar10s: the CIFAR-10-S unlearnable benchmark (One-Pixel Shortcut on error-minimizing noise).

Load it like torchvision's CIFAR10::

    from cifar10s import CIFAR10S
    train = CIFAR10S("data", train=True, download=True)

The names below are imported on first use, so ``cifar10s --version`` and the light modules do not
pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports
from .version import __version__  # noqa: F401 - the public version

__all__ = ["CIFAR10S", "CLASSES", "Cifar10sError", "IntegrityError", "NotBuiltError", "VariantSpec", "__version__", "audit"]

_LAZY = {"CIFAR10S": ".dataset", "CLASSES": ".constants", "Cifar10sError": ".errors", "IntegrityError": ".store",
         "NotBuiltError": ".store", "VariantSpec": ".variants", "audit": ".auditing"}

if TYPE_CHECKING:
    from .auditing import audit
    from .constants import CLASSES
    from .dataset import CIFAR10S
    from .errors import Cifar10sError
    from .store import IntegrityError, NotBuiltError
    from .variants import VariantSpec

__getattr__ = lazy_exports(__name__, _LAZY)
