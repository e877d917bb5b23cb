"""The audit's decision thresholds, each placed between measured clean and measured shortcut values.

``benchmarks/audit_calibration.py`` measures every statistic on the calibration sets (the CIFAR-10
subset and its JPEG-compressed, blurred and noised forms; OPS, k-pixel OPS, EM and CIFAR-10-S built
by the package; planted class-wise noise, patches and pixels) and prints the largest value seen
without a shortcut and the smallest with one. Each threshold below sits between the two (see
``docs/audit.md`` for the numbers and the held-out detection table). The thresholds of partial
pixels, recurring windows and second-order noise come from ``audit_calibration.py --v2`` (sets made
from the subset; AR noise and the other held-out kinds were not used to set them). Change one only
with a new calibration run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CLEAN_PROBE_CURVE", "DEFAULT_THRESHOLDS", "Thresholds"]

#: Held-out accuracy per epoch of the linear probe (high-pass features, seed 0) on the clean
#: CIFAR-10 subset (10,000 images), as the calibration script prints it: the clean curve drawn
#: when no reference is given.
CLEAN_PROBE_CURVE = (0.1552, 0.159, 0.1644, 0.1602, 0.1654, 0.1608)


@dataclass(frozen=True)
class Thresholds:
    # pixel shortcuts: share of the class carrying its modal colour at a position, and that share
    # minus the same colour's share at that position in the other classes
    pixel_share: float = 0.5
    pixel_strength: float = 0.4
    # classes need this many images before a pixel is claimed, and before a pattern or patch is:
    # class means of fewer natural images are too noisy (random 50-per-class subsets of CIFAR-10
    # reached pattern effects of 1.2 grey levels; 200 per class at most 0.75)
    min_class_images: int = 20
    pattern_min_class_images: int = 200
    # class-wise pattern: RMS size (grey levels) of the class's mean high-pass residual outside
    # explained pixels and its best window
    pattern_effect: float = 1.0
    # patch: RMS size (grey levels) inside the best 6x6 window and the share of the class's excess
    # energy in it
    patch_effect: float = 2.5
    patch_share: float = 0.4
    # both sizes are taken after subtracting what they reach under random relabellings of the same
    # images: the null's mean plus this many of its standard deviations
    null_margin: float = 4.0
    # sample-wise noise: held-out accuracy of the linear model on high-pass features
    separability: float = 0.5
    # with a paired clean reference: held-out accuracy of the linear model on the perturbation
    perturbation_separability: float = 0.5
    # with clean test images: (reference - set) accuracy on them after the same short training
    learnability_gap: float = 0.1
    # shares relative to what clean images show (partial poisoning): a class's share minus the other
    # classes' share, less ``share_z`` standard errors of that difference, of images carrying
    # an isolated exact pixel colour at a position / an exact recurring 3x3 window anywhere
    share_z: float = 4.0
    isolated_excess: float = 0.04
    window_excess: float = 0.04
    # second-order noise: held-out accuracy of the local-correlation classifier (ten balanced
    # classes; scaled to other chance levels like the linear probe), which must also pass the
    # relabelled null's mean plus ``null_margin`` standard deviations
    second_order: float = 0.5
    # optional network baseline (UDP, AAAI 2024): a set whose training accuracy passes this is flagged
    network_train_accuracy: float = 0.7

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_THRESHOLDS = Thresholds()
