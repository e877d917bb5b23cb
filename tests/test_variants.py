"""VariantSpec: names, folder names and the build command, in both directions."""

from __future__ import annotations

import pytest

from cifar10s.variants import VariantSpec, parse_variant


@pytest.mark.parametrize(
    "spec",
    [VariantSpec("clean"), VariantSpec("em"), VariantSpec("ops"), VariantSpec("ops", 3),
     VariantSpec("ops", 1, "paper-eq3"), VariantSpec("cifar10s"), VariantSpec("cifar10s", 2, "paper-eq3")],
)
def test_folder_name_round_trip(spec):
    assert VariantSpec.from_folder_name(spec.folder_name) == spec


@pytest.mark.parametrize("bad", ["ops", "cifar10s-k1", "ops-kx", "../clean", "mystery"])
def test_from_folder_name_refuses_names_that_are_not_folders(bad):
    with pytest.raises(ValueError):
        VariantSpec.from_folder_name(bad)


def test_build_command_selects_the_same_variant():
    spec = VariantSpec("ops", 3, "paper-eq3")
    cmd = spec.build_command("data")
    assert cmd.startswith("cifar10s build --variant ops --pixels 3 --objective paper-eq3 --root data")
    flags = cmd.split()
    parsed = parse_variant(flags[flags.index("--variant") + 1], pixels=int(flags[flags.index("--pixels") + 1]),
                           objective=flags[flags.index("--objective") + 1])
    assert parsed == spec
    assert VariantSpec("cifar10s").cli_args() == "--variant cifar10s"


def test_one_message_shape_for_unknown_choices():
    from cifar10s.checks import check_choice
    from cifar10s.models import build_model
    from cifar10s.training.defenses import build_defense
    from cifar10s.training.presets import resolve_preset

    assert check_choice("colour", "red", ("red", "blue")) == "red"
    cases = [(lambda: VariantSpec("zz"), "unknown variant 'zz'; valid: clean, ops, em, cifar10s"),
             (lambda: build_defense("x"), "unknown defense 'x'; valid: "),
             (lambda: resolve_preset("fast"), "unknown preset 'fast'; valid: paper"),
             (lambda: build_model("nope"), "unknown model 'nope'; valid: ")]
    for make, start in cases:
        with pytest.raises(ValueError) as exc:
            make()
        assert str(exc.value).startswith(start)
