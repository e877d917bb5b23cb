"""The paper's Tables 1-5 (``cifar10s/paper/baselines.json``): completeness, shapes, lookups."""

from __future__ import annotations

import copy
import math

import pytest

from cifar10s.cli.main import main as lb_main
from cifar10s.paper import (
    CLEAN_TEST,
    compare,
    format_comparison,
    format_tables,
    load_baselines,
    lookup,
    rows,
    tables,
    train_set_name,
    validate_baselines,
)
from cifar10s.models import PAPER_PARAM_COUNTS
from cifar10s.training.presets import METHODS
from cifar10s.variants import VariantSpec, parse_variant

EXPECTED_NUMBERS = {"table1": 11, "table2": 24, "table3": 12, "table4": 32, "table5": 20}


def _table(name: str):
    (t,) = [t for t in tables() if t.name == name]
    return t


# ------------------------------------------------------------------------------------------------
# the data


def test_every_table_is_complete_with_a_source_per_number():
    doc = load_baselines()
    assert doc["source"]["venue"] == "ICLR 2023" and doc["source"]["arxiv"] == "2205.12141"
    assert [t.name for t in tables()] == list(EXPECTED_NUMBERS)
    for t in tables():
        assert len(t.cells) == EXPECTED_NUMBERS[t.name], t.name
        grid = {(r, c) for r in t.row_keys for c in t.column_keys}
        reported = {(c.row, c.column) for c in t.cells}
        assert reported | {(r, c) for r, c, _ in t.not_reported} == grid
        for c in t.cells:
            assert isinstance(c.value, float) and math.isfinite(c.value)
            assert c.source.table == t.title and c.source.row and c.source.column
    # no accuracy anywhere is null, and there is one per accuracy cell
    accs = rows()
    assert len(accs) == sum(EXPECTED_NUMBERS.values()) - 12  # 12 parameter counts in Tables 2 and 3
    assert all(r.accuracy is not None and 0 < r.accuracy <= 100 for r in accs)
    # only Table 1 has cells printed as "-": the EM model on OPS data and the OPS model on EM data
    assert {(r, c) for r, c, _ in _table("table1").not_reported} == {
        ("em", "ops-train"), ("em", "shuffled-ops-train"), ("ops", "em-train"), ("ops", "shuffled-em-train")}
    assert all(not t.not_reported for t in tables() if t.name != "table1")
    raw = load_baselines()["tables"]
    for t in raw.values():
        assert "note" not in t and "status" not in t


def test_table_shapes_follow_the_paper():
    t1 = _table("table1")
    assert t1.printed_transposed and t1.row_meaning == "model trained on"
    assert t1.row_keys == ["clean", "em", "ops"]
    assert t1.column_keys == ["clean-train", "em-train", "ops-train", "shuffled-em-train", "shuffled-ops-train"]
    assert [r["printed"] for r in t1.rows] == ["Normal-ResNet-18", "EM-ResNet-18", "OPS-ResNet-18"]
    # Table 1 is stored transposed: the printed row of a cell is its evaluation set
    cell = t1.cell("em", "shuffled-em-train")
    assert (cell.source.row, cell.source.column, cell.value) == ("Shuffled EM Training", "EM-ResNet-18", 48.97)

    t2 = _table("table2")
    assert t2.row_keys == ["lenet5", "cvt7-4", "cct7-3x1", "densenet121", "resnet18", "wrn28-10"]
    assert t2.column_keys == ["size", "clean", "em", "ops"]  # no CIFAR-10-S column in Table 2

    t3 = _table("table3")
    assert t3.row_keys == ["size", "test-acc"]
    assert t3.column_keys == [f"wrn28-{k}" for k in (1, 2, 4, 8, 16, 20)]

    t4 = _table("table4")
    assert t4.row_keys == list(METHODS)[:8] == [
        "standard", "mixup", "cutout", "randaugment", "at", "at+mixup", "at+cutout", "at+randaugment"]
    assert t4.column_keys == ["clean", "em", "ops", "cifar10s"]

    t5 = _table("table5")
    assert t5.row_keys == ["standard", "mixup", "cutout", "randaugment"]
    assert [c["pixels"] for c in t5.columns] == [0, 1, 2, 3, 4]
    assert [c["train_set"] for c in t5.columns] == ["clean", "ops", "ops-k2", "ops-k3", "ops-k4"]


@pytest.mark.parametrize(("table", "row", "column", "value"), [
    ("table1", "clean", "clean-train", 99.96),
    ("table1", "ops", "shuffled-ops-train", 72.43),
    ("table2", "lenet5", "ops", 22.19),
    ("table2", "wrn28-10", "size", 36.49),
    ("table3", "size", "wrn28-8", 23.36),
    ("table3", "test-acc", "wrn28-20", 18.04),
    ("table4", "at", "em", 83.02),
    ("table4", "at", "cifar10s", 10.61),
    ("table4", "at+randaugment", "cifar10s", 46.23),
    ("table5", "standard", "3", 9.74),
    ("table5", "randaugment", "2", 46.45),
])
def test_spot_values(table, row, column, value):
    assert _table(table).cell(row, column).value == value


def test_the_same_setting_has_the_same_number_in_every_table():
    seen: dict[tuple, dict[str, float]] = {}
    for r in rows():
        seen.setdefault((r.model, r.method, r.train_set, r.evaluated_on), {})[r.table] = r.accuracy
    shared = {k: v for k, v in seen.items() if len(v) > 1}
    assert shared[("resnet18", "standard", "ops", CLEAN_TEST)] == {"table2": 15.56, "table4": 15.56, "table5": 15.56}
    assert shared[("resnet18", "cutout", "clean", CLEAN_TEST)] == {"table4": 94.77, "table5": 94.77}
    for key, by_table in shared.items():
        assert len(set(by_table.values())) == 1, key


def test_parameter_counts_agree_with_the_model_registry():
    sizes = {c.attributes["model"]: (t.title, c.value) for t in tables() for c in t.cells if c.quantity == "params_m"}
    assert sizes == {name: (entry.table, entry.millions) for name, entry in PAPER_PARAM_COUNTS.items()}


def test_names_are_the_package_names():
    for r in rows():
        assert r.method in METHODS and r.model in PAPER_PARAM_COUNTS
        if r.evaluated_on == CLEAN_TEST:
            assert train_set_name(parse_variant(r.train_set)) == r.train_set


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda d: d["tables"]["table4"]["cells"][0].update(value=None), "has no number"),
    (lambda d: d["tables"]["table5"]["cells"].pop(), "cells missing"),
    (lambda d: d["tables"]["table2"]["cells"][1]["source"].update(column="EM [11]"), "expected Table 2, row"),
    (lambda d: d["tables"]["table3"]["cells"].append(d["tables"]["table3"]["cells"][0]), "appears twice"),
    (lambda d: d["tables"]["table4"]["cells"][0].update(value=194.01), "not a percentage"),
    (lambda d: d["tables"]["table1"]["not_reported"].pop(), "cells missing"),
    (lambda d: d.update(format_version=1), "version"),
])
def test_validation_rejects_incomplete_or_misplaced_cells(break_it, message):
    doc = copy.deepcopy(load_baselines())
    break_it(doc)
    with pytest.raises(ValueError, match=message):
        validate_baselines(doc)


# ------------------------------------------------------------------------------------------------
# lookups and comparisons


def test_train_set_names():
    assert train_set_name("ops") == "ops" and train_set_name("ops-k3") == "ops-k3"
    assert train_set_name("cifar10s") == "cifar10s" and train_set_name("clean") == "clean"
    assert train_set_name(VariantSpec("ops", objective="paper-eq3")) is None
    assert train_set_name(VariantSpec("cifar10s", pixels=3)) is None


def test_compare_table2_model():
    (c,) = compare("densenet121", "standard", VariantSpec("ops"), [0.12, 0.13])
    assert c.row.table == "table2" and c.row.accuracy == 11.45 and c.row.params_m == 6.96
    assert c.ours_mean == pytest.approx(12.5) and c.difference == pytest.approx(1.05) and c.exact
    (line,) = format_comparison([c])
    assert line.startswith("paper Table 2 (densenet121, standard, ops): 11.45% [row 'DenseNet-121 [55]', column 'OPS(Ours)']")
    assert "12.50% ± 0.71 (2 seeds)" in line and "difference +1.05 pp" in line


def test_format_comparison_prints_a_number_once_and_no_difference_when_not_comparable():
    # ResNet-18, standard training, OPS: 15.56 is printed in Tables 2, 4 and 5: one line naming them
    comparisons = compare("resnet18", "standard", VariantSpec("ops"), [0.20])
    assert len(comparisons) == 3
    (line,) = format_comparison(comparisons)
    assert line.startswith("paper Tables 2, 4 and 5 (resnet18, standard, ops): 15.56% [Table 2 row ")
    assert line.count("15.56") == 1 and "difference +4.44 pp" in line
    # a shortened preset: the paper's number, and why there is no difference, never a difference
    (line,) = format_comparison(comparisons, not_comparable="preset cpu-smoke differs from the paper's settings")
    assert "difference" not in line.replace("no difference shown", "")
    assert "(no difference shown: preset cpu-smoke differs from the paper's settings)" in line


def test_compare_table3_wrn():
    (c,) = compare("WRN_28_16", "standard", VariantSpec("ops"), [0.20])
    assert (c.row.table, c.row.model, c.row.accuracy, c.row.params_m) == ("table3", "wrn28-16", 15.36, 93.35)
    assert c.difference == pytest.approx(4.64)
    assert "paper Table 3 (wrn28-16, standard, ops): 15.36%" in format_comparison([c])[0]
    assert compare("wrn-28-8", "standard", "ops", [0.18])[0].row.accuracy == 18.01
    # Table 3 is OPS only; WRN-28-16 on clean data is not in the paper
    assert compare("wrn28-16", "standard", "clean", [0.9]) == []


def test_compare_table4_method():
    (c,) = compare("resnet18", "at+cutout", VariantSpec("cifar10s"), [0.2278, 0.2478])
    assert (c.row.table, c.row.accuracy) == ("table4", 23.78)
    assert c.difference == pytest.approx(0.0, abs=1e-9)
    d = c.to_dict()
    assert d["test_acc"] == 23.78 and d["exact_match"] is True and d["difference_pp"] == pytest.approx(0.0, abs=1e-9)
    assert d["source"] == {"table": "Table 4", "row": "L∞ AT + Cutout", "column": "CIFAR-10-S"}
    # the same setting printed in Tables 2, 4 and 5 gives one row per table
    assert [x.row.table for x in compare("resnet18", "standard", "ops", [0.15])] == ["table2", "table4", "table5"]


def test_compare_table5_pixels():
    (c,) = compare("resnet18", "cutout", VariantSpec("ops", pixels=3), [0.30])
    assert (c.row.table, c.row.pixels, c.row.accuracy) == ("table5", 3, 25.42)
    assert c.difference == pytest.approx(4.58)
    assert "paper Table 5 (resnet18, cutout, ops-k3): 25.42%" in format_comparison([c])[0]
    assert [r.accuracy for r in lookup("resnet18", "mixup", parse_variant("ops-k4"))] == [10.02]
    # a variant's folder name finds the same rows as the table's name for it
    assert lookup("resnet18", "mixup", "ops-k1") == lookup("resnet18", "mixup", "ops") != []
    assert lookup("resnet18", "mixup", "ops-k4") == lookup("resnet18", "mixup", parse_variant("ops-k4"))


def test_custom_model_gets_the_resnet18_reference_row():
    (c,) = compare(None, "randaugment", "cifar10s", [0.40])
    assert not c.exact and c.row.model == "resnet18" and c.row.accuracy == 39.62
    line = format_comparison([c])[0]
    assert "reference row" in line and "+0.38 pp" in line


@pytest.mark.parametrize(("model", "method", "variant"), [
    ("lenet5", "randaugment", VariantSpec("ops")),         # Table 2 is standard training only
    ("resnet18", "at", VariantSpec("ops", pixels=2)),       # Table 5 has no adversarial training
    ("resnet18", "standard", VariantSpec("cifar10s", pixels=3)),
    ("resnet18", "standard", VariantSpec("ops", objective="paper-eq3")),
    ("cct7-3x1", "standard", VariantSpec("cifar10s")),     # Table 2 has no CIFAR-10-S column
    ("resnet18", "grayscale", VariantSpec("cifar10s")),
])
def test_no_row_for_combinations_the_paper_does_not_report(model, method, variant):
    assert compare(model, method, variant, [0.5]) == []
    assert format_comparison(compare(model, method, variant, [0.5])) == []


def test_table1_is_reached_by_evaluation_set_and_never_by_default():
    (c,) = compare("resnet18", "standard", "ops", [0.70], evaluated_on="shuffled-ops-train")
    assert (c.row.table, c.row.accuracy, c.row.test_acc) == ("table1", 72.43, None)
    assert c.difference == pytest.approx(-2.43)
    assert "trained on ops, evaluated on shuffled-ops-train" in format_comparison([c])[0]
    assert c.to_dict()["test_acc"] is None and c.to_dict()["accuracy"] == 72.43
    assert all(r.table != "table1" for r in lookup("resnet18", "standard", "em"))
    assert lookup("resnet18", "standard", "em", evaluated_on="ops-train") == []  # printed "-"


def test_shuffle_settings():
    plain = compare("resnet18", "standard", "ops", [0.15])
    unshuffled = compare("resnet18", "standard", "ops", [0.15], setting="unshuffled")
    assert [c.row for c in unshuffled] == [c.row for c in plain]
    assert unshuffled[0].to_dict()["setting"] == "unshuffled" and "setting" not in plain[0].to_dict()
    # the paper trains no model on shuffled data
    assert compare("resnet18", "standard", "ops", [0.15], setting="shuffled") == []
    with pytest.raises(ValueError, match="unknown setting"):
        lookup("resnet18", "standard", "ops", setting="sorted")


# ------------------------------------------------------------------------------------------------
# printing


def test_format_tables_prints_every_number(capsys):
    text = format_tables()
    assert "ICLR 2023, arXiv 2205.12141" in text
    for t in tables():
        one = format_tables(t.name)
        assert f"{t.title}: {t.caption}" in one
        assert one.split("\n", 1)[1] in text  # the same block as in the full print-out
        for c in t.cells:
            shown = f"{c.value:.2f}M" if c.quantity == "params_m" else f"{c.value:.2f}"
            assert shown in one, (t.name, c.row, c.column)
        for r in t.rows:
            assert r["printed"] in one
        for col in t.columns:
            assert col["printed"] in one
    grid = format_tables("table1").splitlines()
    (em_row,) = [line for line in grid if line.strip().startswith("EM-ResNet-18")]
    assert [v.strip() for v in em_row.split("|")[1:]] == ["25.16", "99.99", "-", "48.97", "-"]
    with pytest.raises(ValueError, match="unknown table"):
        format_tables("table6")
    assert lb_main(["baselines", "--table", "table5"]) == 0
    out = capsys.readouterr().out
    assert "Table 5: Effectiveness of Multi-Pixel Shortcut" in out and "33.51" in out and "Table 4:" not in out
