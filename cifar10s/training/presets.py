"""Named training presets, resolved per model, and the record of how a run differs from the paper.

``paper`` is Wu et al. (ICLR 2023), Section 5 / Appendix, with the authors' code where the paper is
silent (see docs/training.md for each value and its source):

=================  ========================================  ========================================
                   CNNs (LeNet, ResNet-18, DenseNet-121,     compact transformers (CCT-7/3x1, CVT-7/4)
                   WRN-28-10)
=================  ========================================  ========================================
optimizer          SGD, lr 0.1, momentum 0.9, wd 5e-4        AdamW, lr 5e-4, betas (0.9, 0.999), wd 3e-2
schedule           x0.1 at epochs/2 and 3*epochs/4           cosine to 1e-5 (code), no warm-up
epochs             200                                       200
batch size         128 (64 for WRN-28-10)                    128
augmentation       standard (crop 4 + flip)                  standard
=================  ========================================  ========================================

Short presets change only what they must (epochs, subset sizes, ...); every run's
:class:`~cifar10s.training.trainer.TrainResult` stores the preset name and
:func:`diff_from_paper`'s output, so a number produced with ``gpu-quick`` can never pass for a
paper-setting number.

Table 4's training methods are available as ``method=`` overrides (:data:`METHODS`); their
augmentations are the variants the authors' released code runs (``mixup`` without crop+flip,
``randaugment`` = the authors' RandAugment, see docs/augmentations.md). The other variants
(``standard+mixup``, ``randaugment-tv``) count as a difference from the paper.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..checks import check_choice
from .adversarial import AdversarialConfig
from .config import TrainConfig

__all__ = [
    "METHODS",
    "PRESETS",
    "diff_from_paper",
    "model_family",
    "paper_config",
    "paper_method",
    "resolve_preset",
]

Family = str  # "cnn" | "transformer"

_TRANSFORMER_HINT = re.compile(r"^(cct|cvt|vit)", re.IGNORECASE)
_WRN_28_10 = re.compile(r"^(wrn|wide[-_]?resnet)[-_]?28[-_]10$", re.IGNORECASE)


def model_family(model_name: str | None) -> Family:
    """``"cnn"`` or ``"transformer"`` via ``cifar10s.models.model_family``; unknown names fall
    back to a prefix rule (cct/cvt/vit -> transformer). ``None`` -> ``"cnn"``."""
    if model_name is None:
        return "cnn"
    try:
        from cifar10s.models import model_family as registry_family

        return registry_family(model_name)
    except (ImportError, ValueError):
        return "transformer" if _TRANSFORMER_HINT.match(model_name.strip()) else "cnn"


def _paper_batch_size(model_name: str | None) -> int:
    # Paper: "batch size 128 for all models except WRN-28-10, for which it is 64".
    if model_name and _WRN_28_10.match(model_name.strip()):
        return 64
    return 128


def paper_config(model_name: str | None = None, method: str = "standard") -> TrainConfig:
    """The paper's training settings for ``model_name`` trained with a Table 4 ``method``.

    The model's family decides the optimiser; the method decides the augmentation and whether
    PGD adversarial training is on (see :data:`METHODS`).
    """
    family = model_family(model_name)
    mkey = _method_key(method)
    common: dict[str, Any] = dict(
        epochs=200,
        batch_size=_paper_batch_size(model_name),
        augmentation=METHODS[mkey]["augmentation"],
        adversarial=METHODS[mkey]["adversarial"],
        defense=None,
        drop_last=False,
        warmup_epochs=0,
        preset="paper",
        model_name=model_name,
    )
    if family == "transformer":
        return TrainConfig(
            optimizer="adamw", lr=5e-4, betas=(0.9, 0.999), weight_decay=3e-2,
            schedule="cosine", eta_min=1e-5, **common,
        )
    return TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4,
        schedule="multistep", milestones=(0.5, 0.75), gamma=0.1, **common,
    )


def _cpu_smoke(model_name: str | None) -> dict[str, Any]:
    return dict(epochs=2, batch_size=64, train_subset=1024, eval_subset=500, amp=False,
                compile=False, channels_last=False)


def _gpu_quick(model_name: str | None) -> dict[str, Any]:
    return dict(epochs=30, amp=True, channels_last=True, deterministic=False)


#: preset name -> function(model_name) -> overrides of :func:`paper_config`
PRESETS: dict[str, Callable[[str | None], dict[str, Any]]] = {
    "paper": lambda model_name: {},
    "cpu-smoke": _cpu_smoke,
    "gpu-quick": _gpu_quick,
}

_AT = AdversarialConfig()  # 10 steps, 2/255, eps 8/255, random start

#: Table 4 training methods -> (augmentation, adversarial). "at" uses the standard augmentation.
#: The augmentation names are the authors' variants (cifar10s.training.augment.build_augmentation).
METHODS: dict[str, dict[str, Any]] = {
    "standard": {"augmentation": "standard", "adversarial": None},
    "mixup": {"augmentation": "mixup", "adversarial": None},
    "cutout": {"augmentation": "cutout", "adversarial": None},
    "randaugment": {"augmentation": "randaugment", "adversarial": None},
    "at": {"augmentation": "standard", "adversarial": _AT},
    "at+mixup": {"augmentation": "mixup", "adversarial": _AT},
    "at+cutout": {"augmentation": "cutout", "adversarial": _AT},
    "at+randaugment": {"augmentation": "randaugment", "adversarial": _AT},
}


#: Other variants of a Table 4 augmentation -> the Table 4 augmentation they stand in for.
_VARIANT_OF: dict[str, str] = {"standard+mixup": "mixup", "randaugment-tv": "randaugment"}


def _method_key(method: str) -> str:
    return check_choice("method", str(method).strip().lower(), METHODS)


def _normalise_adversarial(value: Any) -> dict[str, Any] | None:
    if value is None or value is False:
        return None
    if value is True:
        return AdversarialConfig().to_dict()
    if isinstance(value, AdversarialConfig):
        return value.to_dict()
    if isinstance(value, dict):
        return AdversarialConfig(**value).to_dict()
    raise TypeError(f"adversarial must be None, True, a dict or AdversarialConfig, got {type(value).__name__}")


def resolve_preset(name: str, model_name: str | None = None, **overrides: Any) -> TrainConfig:
    """``paper_config(model_name)`` + the preset's changes + ``overrides`` (TrainConfig fields).

    ``method="at+mixup"`` (a :data:`METHODS` key) sets ``augmentation`` and ``adversarial``;
    ``adversarial`` accepts ``True`` (paper AT), a dict, an :class:`AdversarialConfig` or ``None``.
    """
    key = check_choice("preset", name.strip().lower(), PRESETS)
    overrides = dict(overrides)
    method = overrides.pop("method", None)
    d = paper_config(model_name, "standard" if method is None else method).to_dict()
    d.update(PRESETS[key](model_name))
    d.update(overrides)
    d["adversarial"] = _normalise_adversarial(d.get("adversarial"))
    d["preset"] = key
    d["model_name"] = model_name
    return TrainConfig.from_dict(d)


# Fields that describe the run rather than change what is trained.
_BOOKKEEPING = frozenset({"preset", "model_name", "eval_every", "eval_batch_size", "checkpoint_every", "progress"})


def paper_method(config: TrainConfig) -> str:
    """The Table 4 method a config trains with: its augmentation, with PGD AT if it is on.

    Another variant of a Table 4 augmentation (``standard+mixup``, ``randaugment-tv``) counts as
    the method it varies, any other augmentation as ``standard``; either way the augmentation
    shows up as a difference from the paper's settings.
    """
    table4 = {m["augmentation"] for m in METHODS.values()}
    aug = config.augmentation
    base = aug if aug in table4 else _VARIANT_OF.get(aug, "standard")
    if config.adversarial is None:
        return base
    return "at" if base == "standard" else f"at+{base}"


def diff_from_paper(
    config: TrainConfig, model_name: str | None = None, method: str | None = None
) -> dict[str, dict[str, Any]]:
    """Every TrainConfig value that differs from the paper's settings for this model and method.

    ``method`` defaults to :func:`paper_method` (the Table 4 method the config's augmentation and
    AT switch select), so a ``paper``-preset RandAugment or AT run has no differences, while
    changed PGD settings or a non-Table-4 augmentation do show up.

    Returns ``{field: {"paper": value, "used": value}}``; bookkeeping fields (preset name,
    evaluation/checkpoint cadence) are left out. Implementation switches that do not change the
    training maths in exact arithmetic (``amp``, ``channels_last``, ``compile``,
    ``deterministic``) are included, because they change the floating-point result.
    """
    name = model_name if model_name is not None else config.model_name
    paper = paper_config(name, method if method is not None else paper_method(config)).to_dict()
    used = config.to_dict()
    out: dict[str, dict[str, Any]] = {}
    for k in paper:
        if k in _BOOKKEEPING:
            continue
        if paper[k] != used.get(k):
            out[k] = {"paper": paper[k], "used": used.get(k)}
    return out
