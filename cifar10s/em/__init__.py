"""Error-minimizing noise (Huang et al., "Unlearnable Examples", ICLR 2021), the base of CIFAR-10-S.

Public API::

    from cifar10s.em import EMConfig, generate_em_noise, quantize_noise, apply_noise

    result = generate_em_noise(images_uint8_nhwc, labels, EMConfig(seed=0), workdir=Path("out/em"))
    result.noise      # (N, 32, 32, 3) int8, units of 1/255, |noise| <= 8, SIGNED
    result.perturbed  # (N, 32, 32, 3) uint8 == images + noise

The signed noise is added to the images (the authors' dataset code drops its negative values, an
acknowledged bug; the One-Pixel Shortcut authors add the signed noise). See docs/em.md.

A run whose probed time on the device is over an hour raises :class:`SlowBuildError` unless
``allow_slow=True``; :func:`cifar10s.release.builders.build_variant` raises
:class:`UnconvergedEMError` for noise that reached ``max_rounds`` unless ``allow_unconverged=True``.
"""

from cifar10s.em.budget import EMTimeEstimate, estimate_em_time, probe_em
from cifar10s.em.config import EMConfig
from cifar10s.em.errors import SlowBuildError, UnconvergedEMError
from cifar10s.em.generate import EMResult, generate_em_noise
from cifar10s.em.run import build_generator, pgd_min
from cifar10s.em.quantize import apply_noise, quantize_noise

__all__ = [
    "EMConfig",
    "EMResult",
    "EMTimeEstimate",
    "SlowBuildError",
    "UnconvergedEMError",
    "apply_noise",
    "build_generator",
    "estimate_em_time",
    "generate_em_noise",
    "pgd_min",
    "probe_em",
    "quantize_noise",
]
