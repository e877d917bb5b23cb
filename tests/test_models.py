"""Tests for cifar10s.models: shapes, gradients, parameter counts vs the paper, the registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cifar10s.models as models_pkg
from cifar10s.models import MODELS, build_model, count_parameters, model_family, resnet18
from cifar10s.models.registry import PAPER_PARAM_COUNTS
from cifar10s.models.wideresnet import WideResNet

TRANSFORMERS = {"cct7-3x1", "cvt7-4"}


def _millions(n: int) -> float:
    return round(n / 1e6, 2)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    model.train()
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 10)
    loss = nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient reached {pname}"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_transformer_eval_is_deterministic(name: str) -> None:
    # Attention dropout and stochastic depth must switch off in eval mode.
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


# The paper prints sizes in millions with 2 decimals, so the tolerance is that rounding: the exact
# count, rounded to 2 decimals in millions, must equal the printed number (i.e. within ±0.005M).
_WRN_WIDTHS = {"wrn28-1", "wrn28-2", "wrn28-4", "wrn28-8", "wrn28-10", "wrn28-16", "wrn28-20"}


def _count(name: str, **kwargs: object) -> int:
    """Parameters of a registered model; WRNs are built on the meta device (shapes only), so the
    145M-parameter WRN-28-20 costs no memory or initialisation time."""
    if name in _WRN_WIDTHS:
        with torch.device("meta"):
            return count_parameters(build_model(name, **kwargs))
    return count_parameters(build_model(name, **kwargs))


def test_meta_device_count_equals_real_count() -> None:
    assert _count("wrn28-2") == count_parameters(build_model("wrn28-2"))
    assert _count("wrn28-2", conv_bias=False) == count_parameters(build_model("wrn28-2", conv_bias=False))


@pytest.mark.parametrize("name", sorted(PAPER_PARAM_COUNTS))
def test_parameter_counts_match_paper(name: str) -> None:
    assert _millions(_count(name)) == PAPER_PARAM_COUNTS[name].millions


def test_paper_counts_cover_tables_2_and_3() -> None:
    table2 = {"lenet5", "resnet18", "densenet121", "wrn28-10", "cct7-3x1", "cvt7-4"}
    table3 = {"wrn28-1", "wrn28-2", "wrn28-4", "wrn28-8", "wrn28-16", "wrn28-20"}
    assert {n for n, e in PAPER_PARAM_COUNTS.items() if e.table == "Table 2"} == table2
    assert {n for n, e in PAPER_PARAM_COUNTS.items() if e.table == "Table 3"} == table3
    # WRN-28-8 is printed as 23.36M in Table 3, which the biased WRN matches exactly
    assert PAPER_PARAM_COUNTS["wrn28-8"].millions == 23.36


def test_exact_parameter_counts() -> None:
    # Exact values pin the architectures (e.g. CCT's bias-free tokenizer vs CVT's biased one).
    assert count_parameters(build_model("lenet5")) == 62_006
    assert count_parameters(resnet18()) == 11_173_962
    assert count_parameters(build_model("densenet121")) == 6_956_298
    assert count_parameters(build_model("cct7-3x1")) == 3_760_139
    assert count_parameters(build_model("cvt7-4")) == 3_716_619
    assert _count("wrn28-1") == 370_506
    assert _count("wrn28-8") == 23_362_922
    assert _count("wrn28-10") == 36_489_290
    assert _count("wrn28-16") == 93_354_218
    assert _count("wrn28-20") == 145_835_690


def test_bias_free_wrn_misses_the_printed_counts() -> None:
    # Why conv_bias=True is the default: without conv biases the wider WRNs fall below the paper.
    assert _count("wrn28-1", conv_bias=False) == 369_498
    assert _count("wrn28-8", conv_bias=False) == 23_354_842
    missed = {"wrn28-8": 23.35, "wrn28-10": 36.48, "wrn28-16": 93.34, "wrn28-20": 145.82}
    for name, millions in missed.items():
        assert _millions(_count(name, conv_bias=False)) == millions != PAPER_PARAM_COUNTS[name].millions


def test_sine_positional_embedding_is_not_trained() -> None:
    learnable = count_parameters(build_model("cct7-3x1"))
    sine = build_model("cct7-3x1", positional_embedding="sine")
    assert count_parameters(sine) == learnable - 256 * 256
    assert count_parameters(sine, trainable_only=False) == learnable


@pytest.mark.parametrize("name", ["lenet5", "wrn28-1", "cvt7-4"])
def test_num_classes(name: str) -> None:
    model = build_model(name, num_classes=100).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


@pytest.mark.parametrize(
    ("name", "depth", "width"),
    [
        ("wrn28-4", 28, 4),
        ("wrn-28-4", 28, 4),
        ("WRN_28_4", 28, 4),
        ("wrn28-10", 28, 10),
        ("wrn-16-2", 16, 2),
    ],
)
def test_wrn_name_parsing(name: str, depth: int, width: int) -> None:
    model = build_model(name)
    assert isinstance(model, WideResNet)
    assert (model.depth, model.widen_factor) == (depth, width)
    assert model.linear.out_features == 10
    assert model_family(name) == "cnn"


def test_wrn_parsed_matches_registered() -> None:
    assert count_parameters(build_model("wrn-28-10")) == count_parameters(MODELS["wrn28-10"]())


@pytest.mark.parametrize("name", ["wrn-27-4", "wrn28-0"])
def test_invalid_wrn_configs(name: str) -> None:
    with pytest.raises(ValueError, match="WideResNet"):
        build_model(name)


@pytest.mark.parametrize("name", ["resnet19", "vit", "", "wrn28", "wrn-28-x"])
def test_unknown_name_lists_valid_names(name: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        build_model(name)
    message = str(excinfo.value)
    assert "unknown model" in message
    for valid in MODELS:
        assert valid in message
    with pytest.raises(ValueError, match="unknown model"):
        model_family(name)


def test_model_family() -> None:
    for name in MODELS:
        assert model_family(name) == ("transformer" if name in TRANSFORMERS else "cnn")
    assert model_family("CCT7_3x1") == "transformer"


def test_registry_names_and_exports() -> None:
    assert set(MODELS) == {"lenet5", "resnet18", "densenet121", "wrn28-10", "cct7-3x1", "cvt7-4"}
    for name in MODELS:
        assert name in PAPER_PARAM_COUNTS
        assert PAPER_PARAM_COUNTS[name].table.startswith("Table")
    for attr in ("build_model", "MODELS", "count_parameters", "resnet18", "model_family"):
        assert hasattr(models_pkg, attr)
    assert models_pkg.resnet18 is resnet18
