"""Leaderboard rendering: layout, paper rows, links, malformed result files and escaping.

Everything here is built from the committed example results in ``leaderboard/examples/cpu-demo``
(real ``score_submission`` output) and edited copies of them; nothing trains a model. The
examples predate signed results, so the layout tests sign their records with a key of their own
(as a trusted, sandboxed scorer would) and render with that key trusted; signatures themselves
are tested in test_result_signing.py.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import data_caveats, write_leaderboard
from cifar10s.leaderboard.board import render as render_mod
from cifar10s.leaderboard.board import result_file
from cifar10s.leaderboard.board import results as results_mod
from cifar10s.leaderboard.board.result_file import read_result
from cifar10s.leaderboard.board.results import MalformedResult, load_results, parse_result
from cifar10s.leaderboard.board.signing import (
    SigningKey,
    TrustedKeys,
    default_trusted_keys,
    load_signing_key,
    load_trusted_keys,
    sign_record,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "leaderboard" / "examples" / "cpu-demo"
SVG = "{http://www.w3.org/2000/svg}"
#: what a sandboxed scorer records (the sandbox's own fields are its module's business)
SANDBOX = {"tool": "bubblewrap", "version": "0.0-test"}


#: the key of a trusted, sandboxed scorer, made for this module (held in memory only)
KEY = SigningKey(Ed25519PrivateKey.generate(), Path("test-scorer.pem"))
TRUSTED = TrustedKeys.of(KEY.public_raw, where="the test's key")


def signed(records: list) -> list:
    """Every record signed by :data:`KEY` (one that is not JSON data, e.g. holding a NaN, stays
    unsigned; it is refused anyway)."""
    out = []
    for r in records:
        try:
            out.append(sign_record(r, KEY) if isinstance(r, dict) else r)
        except (TypeError, ValueError):
            out.append(r)
    return out


def render_markdown(records: list, **kw) -> str:
    return render_mod.render_markdown(signed(records), trusted_keys=kw.pop("trusted_keys", TRUSTED), **kw)


def render_html(records: list, **kw) -> str:
    return render_mod.render_html(signed(records), trusted_keys=kw.pop("trusted_keys", TRUSTED), **kw)


def render_svg(records: list) -> str:
    return render_mod.render_svg(signed(records), trusted_keys=TRUSTED)


def checked_entries(records: list, skipped=()):
    return results_mod.checked_entries(signed(records), skipped, TRUSTED)


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory) -> Path:
    """A trusted-keys folder listing :data:`KEY`."""
    folder = tmp_path_factory.mktemp("trusted-keys")
    (folder / "test-scorer.pub").write_text(KEY.public_line() + "\n")
    return folder


def demo_records(*, defenses: bool = False) -> list[dict]:
    """The committed examples of the LeNet-5 grid (without the defense runs unless ``defenses``)."""
    records = [read_result(p) for p in sorted(DEMO.glob("*.json"))]
    return [r for r in records if defenses or not r["submission"].get("defense")]


@pytest.fixture(scope="module")
def demo() -> list[dict]:
    """The committed examples as a sandboxed, trusted scorer would have written them."""
    return [sign_record({**r, "sandbox": SANDBOX}, KEY) for r in demo_records()]


def signed_json(record: dict) -> str:
    return json.dumps(sign_record(record, KEY))


def example(demo: list[dict], method: str = "standard", train_set: str = "cifar10s") -> dict:
    r = next(r for r in demo if r["submission"]["method"] == method and r["dataset"]["paper_train_set"] == train_set)
    return copy.deepcopy(r)


def paper_run(demo: list[dict], *, model: str | None = "resnet18", method: str = "at", train_set: str = "cifar10s",
              accs: tuple[float, ...] = (0.1261,), name: str = "ResNet-18 AT, full protocol") -> dict:
    """A record as the harness writes it for a ``paper``-preset run on the official data."""
    r = example(demo, "at" if method == "at" else "standard", "cifar10s")
    r["submission"].update(name=name, model=model, method=method, slug=re.sub(r"\W+", "-", name.lower()))
    if model is None:
        r["submission"]["entry"] = "model.py"
    r["dataset"].update(variant=train_set if train_set != "ops" else "ops-k1", paper_train_set=train_set,
                        official_cifar10=True, num_train=50000,
                        recipe="v1" if train_set in ("em", "cifar10s") else None)
    r.update(preset="paper", preset_diff={}, paper_setting=True, seeds=list(range(len(accs))))
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else 0.0
    r["summary"]["final_test_acc"] = {"mean": mean, "std": std, "n": len(accs), "values": list(accs)}
    best = [min(1.0, a + 0.01) for a in accs]
    r["summary"]["best_test_acc"] = {"mean": sum(best) / len(best), "std": 0.0, "n": len(best), "values": best}
    return r


def sections(page: str) -> dict[str, str]:
    """HTML of each <section>, keyed by its <h2> title."""
    out = {}
    for chunk in page.split("<section>")[1:]:
        title = re.search(r"<h2>(.*?)</h2>", chunk).group(1)
        out[title] = chunk.split("</section>")[0]
    return out


def detail(md: str) -> str:
    """The Markdown board without its overviews (by model, defenses): the per-training-set tables."""
    parts = md_sections(md)
    return "".join(v for k, v in parts.items() if k not in ("By model and method", "Defenses vs CIFAR-10-S"))


def md_sections(md: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", md, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


# ------------------------------------------------------------------------------------------------
# the committed examples and the empty board


def test_committed_cpu_demo_results_still_load_and_render(demo, tmp_path, capsys):
    """The example board in leaderboard/examples/cpu-demo stays readable by the current renderer,
    and each of its results carries the caveats that keep it from passing for a paper number."""
    # as committed: signed in the sandbox by the demonstration's scorers, whose keys the project trusts
    # (leaderboard/trusted-keys/), which is the default: no flag needed
    files = sorted(DEMO.glob("*.json"))
    assert lb_main(["leaderboard", "--results", str(DEMO), "--out", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert f"rendered {len(files)} verified result(s)" in out and "skipped" not in out
    assert f"from {REPO / 'leaderboard' / 'trusted-keys'}" in out
    assert not (DEMO / "trusted-keys").exists()  # no key sits beside the results it signed
    checked, skipped = load_results(DEMO, load_trusted_keys(REPO / "leaderboard" / "trusted-keys"))
    assert len(checked) == len(files) >= 12 and skipped == []
    assert all(c.record.sandbox["tool"] == "bubblewrap" for c in checked)
    # without those keys nothing of theirs is ranked: a signature alone proves nothing
    assert lb_main(["leaderboard", "--results", str(DEMO), "--out", str(tmp_path / "bare"),
                    "--trusted-keys", str(tmp_path / "no-keys")]) == 0
    out = capsys.readouterr().out
    assert "rendered 0 verified result(s)" in out
    raw = md_sections((tmp_path / "bare" / "leaderboard.md").read_text("utf-8"))
    assert list(raw) == ["Unverified files"] and raw["Unverified files"].count("which is not a trusted key") == len(files)
    assert "| lenet5 |" not in "".join(raw.values())

    # signed by a trusted, sandboxed scorer, they make the board below
    assert len(demo) == 12
    assert {(r["submission"]["method"], r["dataset"]["paper_train_set"]) for r in demo} == {
        (m, v) for m in ("standard", "randaugment", "at") for v in ("clean", "em", "ops", "cifar10s")}
    for r in demo:
        assert r["paper_setting"] is False and r["preset_diff"]["lr"] == {"paper": 0.1, "used": 0.05}
        # normalised inputs are an explicit difference from the paper, never silent
        assert r["preset_diff"]["normalize"] == {"paper": False, "used": True}
        assert "adversarial" not in r["preset_diff"] and "augmentation" not in r["preset_diff"]
        has_em = r["dataset"]["paper_train_set"] in ("em", "cifar10s")
        assert r["dataset"]["recipe"] == ("cpu-demo" if has_em else None)
        assert len(data_caveats(r["dataset"])) == (2 if has_em else 1)
    md = render_markdown(demo)
    # twelve reproduced rows, plus the paper's Table 2 LeNet-5 rows where a training set matches
    parts = md_sections(md)
    detail = parts["Comparable with the paper"] + parts["Not comparable with the paper"]
    assert detail.count("| lenet5 |") == 12 + 3 and md.count("| reported |") == 3 and "recipe 'cpu-demo'" in md
    # first on the page: one row per model and method across the four training sets, with the drop
    # from clean to CIFAR-10-S and the paper's number in the cells where Table 2 prints one
    assert list(parts)[:2] == ["By model and method", "Defenses vs CIFAR-10-S"]
    overview = [line for line in parts["By model and method"].splitlines() if "| lenet5 |" in line]
    assert [line.split(" | ")[2] for line in overview] == ["standard", "randaugment", "at"]
    assert ("| 54.62 ± 1.80 (2 seeds); paper 70.27 (Table 2, reported) | 21.98 ± 0.32 (2 seeds); paper 26.98 "
            "(Table 2, reported) | 20.40 ± 1.91 (2 seeds); paper 22.19 (Table 2, reported) | 18.73 ± 0.18 (2 seeds) "
            "| +35.90 |") in overview[0]
    assert "reported" not in overview[1] and "| no |" in overview[1]
    assert "No defense has been scored on CIFAR-10-S yet" in parts["Defenses vs CIFAR-10-S"]
    # all twelve are cpu-smoke runs on a subset: none lands in the comparable part, nor do the paper rows
    assert "No result yet was scored with the paper preset" in parts["Comparable with the paper"]
    assert "| reported |" not in parts["Comparable with the paper"]
    assert parts["Not comparable with the paper"].count("| lenet5 |") == 12 + 3
    # the paper has LeNet-5 numbers for standard training only (Table 2: clean, EM, OPS; no CIFAR-10-S)
    reported = [line for line in md.splitlines() if "| reported |" in line]
    assert [re.search(r"\| reported \| ([\d.]+) \|", line).group(1) for line in reported] == ["70.27", "26.98", "22.19"]
    assert all("One-Pixel Shortcut, Table 2 " in line and "| lenet5 | standard |" in line for line in reported)
    # Δ for the matching standard runs only: 54.625 - 70.27, 21.975 - 26.98, 20.40 - 22.19
    # no Δ: a shortened run on a subset is not comparable with the paper's number, whatever it is
    assert re.findall(r"\| reproduced \| [\d.]+ ± [\d.]+ \| ([-+][\d.]+) \|", md) == []
    assert len(re.findall(r"\| reproduced \| [\d.]+ ± [\d.]+ \| – \|", md)) == 12
    # identical notes share one number: one settings note (every row trained the same way), two
    # data notes and the chance note of the PGD AT rows, for the whole board
    assert re.findall(r"^- †(\d+):", md, flags=re.MULTILINE) == ["1", "2", "3", "4"] * 2  # overview, detail
    assert "normalize=true \\(paper false\\)" in md.split("- †1:")[1].split("- †2:")[0]
    assert "seed 1 never left chance" in md.split("- †4:")[1]


def test_a_freshly_scored_result_passes_the_checks(tmp_path, built_root, one_thread):
    """What the scorer writes today is what the board reads (the committed examples are older):
    signed by this installation's key, it is verified once that key is trusted."""
    sub = tmp_path / "lenet"
    sub.mkdir()
    (sub / "submission.json").write_text(json.dumps({
        "name": "LeNet-5 | fresh", "authors": ["A. Tester"], "link": "https://example.org/paper",
        "model": "lenet5", "method": "standard"}))
    out = tmp_path / "results"
    assert lb_main(["score", str(sub), "--root", str(built_root), "--variant", "ops", "--preset", "cpu-smoke",
                    "--seeds", "0", "--device", "cpu", "--out", str(out), "--quiet", "--set", "epochs=1"]) == 0
    md_path, _, n, skipped = write_leaderboard(out, tmp_path / "site", trusted_keys=TrustedKeys({}))
    assert n == 0 and len(skipped) == 1 and "which is not a trusted key" in skipped[0]
    scorer = TrustedKeys.of(load_signing_key(create=False).public_raw)
    md_path, _, n, skipped = write_leaderboard(out, tmp_path / "site", trusted_keys=scorer)
    assert (n, skipped) == (1, [])
    (result,) = load_results(out, scorer)[0]
    final = 100 * result.record.summary.final_test_acc.mean
    # ranked only when its code ran in the sandbox; a --no-sandbox result is shown apart, unranked
    sandboxed = result.record.sandbox != "none"
    part = "Not comparable with the paper" if sandboxed else "Scored without a sandbox (not ranked)"
    md = md_sections(md_path.read_text("utf-8"))[part]
    rank = "1" if sandboxed else "–"
    assert f"| {rank} | LeNet-5 \\| fresh [link](https://example.org/paper) | A. Tester | lenet5 | standard |" in md
    # the paper's LeNet-5 on OPS (Table 2): 22.19%, shown beside it; no Δ for a 1-epoch run on a subset
    assert f"| reproduced | {final:.2f} | – |" in md and "epochs=1 \\(paper 200\\)" in md
    assert "training data: built from a subset of CIFAR-10 \\(10000 training images\\)" in md
    assert md.count("| reported |") == 1 and "| reported | 22.19 | – |" in md and "Shortcut, Table 2 " in md
    assert "FLAGGED" not in md  # an honest model's flip gap is small

    # the same result with its integrity flag raised (as for a model that memorised the labels)
    flagged = json.loads((out / "lenet--ops-k1--cpu-smoke.json").read_text())
    flagged["integrity"].update(suspicious=True, flip_gap=0.62, caveats=["test split not pinned"])
    flagged["preset"], flagged["preset_diff"] = "paper", {}
    flagged["dataset"]["official_cifar10"] = True
    (out / "lenet--ops-k1--cpu-smoke.json").write_text(json.dumps(flagged))
    _, _, n, skipped = write_leaderboard(out, tmp_path / "site2", trusted_keys=scorer)
    assert n == 0 and "bad signature" in skipped[0]  # edited after signing
    (out / "lenet--ops-k1--cpu-smoke.json").write_text(json.dumps(sign_record(flagged, load_signing_key())))
    md_path, _, n, skipped = write_leaderboard(out, tmp_path / "site2", trusted_keys=scorer)
    parts = md_sections(md_path.read_text("utf-8"))
    assert (n, skipped) == (1, []) and "FLAGGED" in parts[part]
    assert "+62.0 points" in parts[part] and "test split not pinned" in md_path.read_text()


def test_render_empty(tmp_path):
    assert "No results yet" in render_markdown([]) and "No results yet" in render_html([])
    results, skipped = load_results(tmp_path)
    assert results == [] and skipped == []
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")


# ------------------------------------------------------------------------------------------------
# layout: comparable vs not, reported vs reproduced, ranking, paper rows, chart


def test_comparable_results_and_paper_rows_in_their_own_table(demo):
    ours = paper_run(demo)  # ResNet-18, PGD AT, CIFAR-10-S: the paper reports 10.61%
    page = render_html(demo + [ours])
    comparable, other = sections(page)["Comparable with the paper"], sections(page)["Not comparable with the paper"]
    assert "ResNet-18 AT, full protocol" in comparable and "ResNet-18 AT, full protocol" not in other
    assert "cpu-smoke" not in comparable and other.count("cpu-smoke") == 12
    # the paper's row sits in the same table, marked reported, with its own link; ours is reproduced
    rows = re.findall(r'<tr class="(\w+)">(.*?)</tr>', comparable)
    assert [c for c, _ in rows] == ["reproduced", "reported"]  # ranked by final accuracy: 12.61 > 10.61
    assert ">12.61<" in rows[0][1] and ">+2.00<" in rows[0][1]  # Δ = ours - paper, in points
    assert ">10.61<" in rows[1][1] and "One-Pixel Shortcut, Table 4" in rows[1][1]
    assert 'href="https://arxiv.org/abs/2205.12141"' in rows[1][1]
    # beside the LeNet-5 runs, only the paper's own LeNet-5 rows (Table 2, standard training):
    # none for AT or RandAugment, none from another model, none in the comparable part
    reported = re.findall(r'<tr class="reported">(.*?)</tr>', other)
    assert len(reported) == 3
    assert all("<td>lenet5</td><td>standard</td>" in r and "Shortcut, Table 2<" in r for r in reported)

    md = md_sections(render_markdown(demo + [ours]))
    table = md["Comparable with the paper"]
    assert "| reproduced | 12.61 | +2.00 |" in table and "| reported | 10.61 | – |" in table
    assert table.count("| reported |") == 1
    assert md["Not comparable with the paper"].count("| reported |") == 3
    assert "10.61" not in md["Not comparable with the paper"]


def test_a_setting_printed_in_several_tables_is_one_paper_row(demo):
    """ResNet-18 standard training is printed in Tables 2, 4 and 5 (clean 94.01, OPS 15.56): one
    row each, naming the tables. Table 1 (accuracy on training sets) never gives a row, and
    Table 5's k-pixel numbers only sit beside a result trained with that many pixels."""
    ops = paper_run(demo, method="standard", train_set="ops", accs=(0.20,), name="R18 on OPS")
    clean = paper_run(demo, method="standard", train_set="clean", accs=(0.93,), name="R18 on clean")
    k3 = paper_run(demo, method="standard", train_set="ops-k3", accs=(0.10,), name="R18 on 3 pixels")
    md = md_sections(render_markdown([ops, clean, k3]))["Comparable with the paper"]
    reported = [line for line in md.splitlines() if "| reported |" in line]
    assert len(reported) == 3
    assert "Wu et al., One-Pixel Shortcut, Tables 2, 4 and 5 " in reported[0] and "| reported | 94.01 |" in reported[0]
    assert "Wu et al., One-Pixel Shortcut, Tables 2, 4 and 5 " in reported[1] and "| reported | 15.56 |" in reported[1]
    assert "Wu et al., One-Pixel Shortcut, Table 5 " in reported[2] and "| reported | 9.74 |" in reported[2]
    assert "| ops-k3 |" in reported[2] and "### Training set: OPS only \\(3 pixels\\)" in md
    assert "| reproduced | 20.00 | +4.44 |" in md and "| reproduced | 93.00 | -1.01 |" in md
    assert "| reproduced | 10.00 | +0.26 |" in md
    # Table 1's ResNet-18 numbers (99.96 clean / 15.48 OPS-trained on clean training data, ...) and the
    # 2- and 4-pixel numbers of Table 5 (15.24, 9.71) appear nowhere
    for absent in ("Table 1", "99.96", "15.48", "99.97", "15.24", "9.71"):
        assert absent not in md, absent
    # without a 3-pixel result, no 3-pixel paper row
    assert "9.74" not in render_markdown([ops, clean])


def test_a_data_caveat_alone_makes_a_paper_preset_result_not_comparable(demo):
    subset = paper_run(demo, name="paper preset on a subset")
    subset["dataset"].update(official_cifar10=False, num_train=10000)
    md = md_sections(render_markdown([subset]))
    assert "paper preset on a subset" in md["Not comparable with the paper"]
    assert "paper preset on a subset" not in md["Comparable with the paper"]
    assert "not the official release \\(10000 training images\\)" in md["Not comparable with the paper"]


def test_ranked_by_final_accuracy_never_by_best_epoch(demo):
    # A has the better best-epoch number (selected on the test set), B the better final one
    a = paper_run(demo, name="A", method="standard", train_set="clean", accs=(0.30,))
    a["summary"]["best_test_acc"] = {"mean": 0.90, "std": 0.0, "n": 1, "values": [0.90]}
    b = paper_run(demo, name="B", method="randaugment", train_set="clean", accs=(0.40,))
    md = render_markdown([a, b])
    assert md.index("| 1 | B ") < md.index("| 2 | A ")
    page = sections(render_html([a, b]))["Comparable with the paper"]
    assert "Best epoch, selected on test (%)" in md
    assert page.index(">B<") < page.index(">A<")
    page = render_html([a, b])
    heads = re.findall(r'<th data-key="(\w+)"[^>]*?( aria-sort="\w+")?>', page)
    assert [k for k, sort in heads if sort] == ["final"]  # the default order, shown on its column only
    assert "selected on test" in page and "never used for ranking" in page


def test_chart_puts_paper_points_only_beside_the_same_model(demo):
    resnet = paper_run(demo)  # ResNet-18 / at / CIFAR-10-S: paper value exists
    lenet = paper_run(demo, model="lenet5", name="LeNet-5 AT")  # same method and data, another model
    custom = paper_run(demo, model=None, name="Custom AT")  # own code: no paper number at all
    svg = ET.fromstring(render_svg([resnet, lenet, custom]))
    groups = {g.get("data-model"): g for g in svg.iter(f"{SVG}g") if g.get("class") == "group"}
    assert set(groups) == {"resnet18", "lenet5", "custom (model.py)"}
    for model, g in groups.items():
        bars = [r for r in g.iter(f"{SVG}rect") if r.get("class") == "bar"]
        diamonds = [p for p in g.iter(f"{SVG}path") if p.get("class") == "paper"]
        assert len(bars) == 1 and f": {model}, at, CIFAR-10-S" in bars[0].find(f"{SVG}title").text
        if model != "resnet18":
            assert diamonds == []
            continue
        # the paper's ResNet-18 AT numbers (Table 4): CIFAR-10-S on our bar, the others in their own slots
        titles = sorted(p.find(f"{SVG}title").text for p in diamonds)
        assert titles == ["paper (resnet18, at, CIFAR-10-S (EM + OPS)): 10.61%", "paper (resnet18, at, EM noise only): 83.02%",
                          "paper (resnet18, at, OPS only (1 pixel)): 11.08%", "paper (resnet18, at, clean CIFAR-10): 82.72%"]
        centre = float(bars[0].get("x")) + float(bars[0].get("width")) / 2
        on_bar = next(p for p in diamonds if "10.61" in p.find(f"{SVG}title").text)
        assert float(re.match(r"M([\d.]+) ", on_bar.get("d")).group(1)) == centre
    assert len([p for p in svg.iter(f"{SVG}path") if p.get("class") == "paper"]) == 4
    # and the table gives the other models no Δ and no paper row
    md = render_markdown([lenet, custom])
    assert "| reported |" not in md and "+2.00" not in md

    # where the paper has both models (Table 2, standard training), each group gets its own model's points
    r18 = paper_run(demo, method="standard", name="ResNet-18 standard")
    le5 = paper_run(demo, model="lenet5", method="standard", name="LeNet-5 standard")
    svg = ET.fromstring(render_svg([r18, le5]))
    points = {g.get("data-model"): sorted(p.find(f"{SVG}title").text for p in g.iter(f"{SVG}path")
                                          if p.get("class") == "paper")
              for g in svg.iter(f"{SVG}g") if g.get("class") == "group"}
    assert points == {
        "resnet18": ["paper (resnet18, standard, CIFAR-10-S (EM + OPS)): 16.67%",
                     "paper (resnet18, standard, EM noise only): 19.58%",
                     "paper (resnet18, standard, OPS only (1 pixel)): 15.56%",
                     "paper (resnet18, standard, clean CIFAR-10): 94.01%"],
        "lenet5": ["paper (lenet5, standard, EM noise only): 26.98%", "paper (lenet5, standard, OPS only (1 pixel)): 22.19%",
                   "paper (lenet5, standard, clean CIFAR-10): 70.27%"],
    }


def test_links_paper_code_and_only_http(demo):
    r = paper_run(demo)
    r["submission"].update(link="https://github.com/someone/entry", paper="https://arxiv.org/abs/1234.5678")
    page, md = render_html([r]), render_markdown([r])
    assert '<a href="https://arxiv.org/abs/1234.5678" rel="nofollow noopener noreferrer">paper</a>' in page
    assert '<a href="https://github.com/someone/entry" rel="nofollow noopener noreferrer">code</a>' in page
    assert "[paper](https://arxiv.org/abs/1234.5678)" in md and "[code](https://github.com/someone/entry)" in md
    for bad in ("javascript:alert(1)", "data:text/html,<b>x</b>", "//evil.example/x", "https://a b/c",
                "https://x.example/\"onmouseover=alert(1)", "ftp://x.example/f"):
        r["submission"].update(link=bad, paper=None)
        page, md = render_html([r]), render_markdown([r])
        hrefs = re.findall(r'href="([^"]*)"', page)
        assert all(h.startswith(("https://arxiv.org/", "https://github.com/cychomatica/", "#fn-"))
                   or re.fullmatch(r"curves-[a-z0-9-]+\.png", h) for h in hrefs), hrefs  # + the curves' PNGs
        links = re.findall(r"(?<!\\)\]\((.*?)\)", md)  # only the paper row's two links are left
        assert sorted(links) == ["https://arxiv.org/abs/2205.12141", "https://github.com/cychomatica/One-Pixel-Shotcut"]


def test_footnotes_are_on_the_page_not_only_on_hover(demo):
    page = render_html(demo)
    notes = re.findall(r'<li id="fn-(\d+)" value="\d+">(.*?)</li>', page)
    assert [k for k, _ in notes] == ["1", "2", "3", "4"]  # each note the target of its links once
    assert [k for k in re.findall(r'<li value="(\d+)">', page)] == ["1", "2", "3", "4"]  # listed again below
    assert "settings differ from the paper&#x27;s: epochs=20 (paper 200), lr=0.05 (paper 0.1), normalize=true" in notes[0][1]
    assert "EM noise from recipe" in notes[2][1] and "seed 1 never left chance" in notes[3][1]
    assert " title=" not in page.split("<svg")[0]  # nothing hidden in tooltips above the chart
    # every demo row points at its settings note and the subset note, the EM-trained ones at the
    # recipe note, and the four PGD AT rows (a seed at chance) at the chance note
    # (and the three by-model rows at the notes of theirs)
    assert page.count('<a href="#fn-1">†1</a>') == 12 + 3 and page.count('<a href="#fn-2">†2</a>') == 12 + 3
    assert page.count('<a href="#fn-3">†3</a>') == 6 + 3 and page.count('<a href="#fn-4">†4</a>') == 4 + 1


# ------------------------------------------------------------------------------------------------
# malformed and hostile result files: skipped with a note, never fatal


def _set(path: str, value):
    def edit(r: dict) -> dict:
        *parents, last = path.split(".")
        d = r
        for p in parents:
            d = d[p]
        d[last] = value
        return r
    return edit


def _drop(path: str):
    def edit(r: dict) -> dict:
        *parents, last = path.split(".")
        d = r
        for p in parents:
            d = d[p]
        del d[last]
        return r
    return edit


# (id, bytes or an edit of a good record, what the skip note must say)
MALFORMED = [
    ("invalid-json", b'{"format": "cifar10s-leaderboard-result",', "invalid JSON"),
    ("empty-file", b"", "invalid JSON"),
    ("not-utf8", b'{"format": "cifar10s-leaderboard-result", "x": "\xff\xfe"}', "not UTF-8"),
    ("utf16", '{"format": 1}'.encode("utf-16"), "not UTF-8"),
    ("nan", lambda r: json.dumps(_set("summary.final_test_acc.mean", float("nan"))(r)), "NaN is not a JSON value"),
    ("infinity", lambda r: json.dumps(_set("summary.final_test_acc.std", float("inf"))(r)), "Infinity is not a JSON"),
    ("float-overflow", lambda r: json.dumps(r).replace('"n": 2,', '"n": 1e400,', 1), "1e400 is out of range"),
    ("deep-nesting", b"[" * 200_000 + b"]" * 200_000, "JSON"),
    ("huge-int", lambda r: json.dumps(r).replace('"num_train": 10000', '"num_train": ' + "9" * 5000),
     "an integer with 5000 digits"),
    ("flip-gap-400-digits", lambda r: json.dumps(r).replace('"format"', '"flip_gap": ' + "9" * 400 + ', "format"', 1),
     "an integer with 400 digits"),
    ("duplicate-key", lambda r: json.dumps(r).replace('"format"', '"preset": "paper", "format"', 1),
     "duplicate key 'preset'"),
    ("nested-duplicate", lambda r: json.dumps(r).replace('"mean"', '"mean": 0.99, "mean"', 1), "duplicate key 'mean'"),
    ("private-key", lambda r: {**r, "_verified": True}, "keys starting with '_' are not part of a result"),
    ("list-top-level", lambda r: [r], "the file must be an object, got a list"),
    ("string-top-level", lambda r: json.dumps("a result"), "must be an object, got a string"),
    ("wrong-format", _set("format", "something-else"), "not a cifar10s-leaderboard-result file"),
    ("no-format", _drop("format"), "not a cifar10s-leaderboard-result file"),
    ("newer-version", _set("format_version", 99), "newer than this renderer reads"),
    ("missing-submission", _drop("submission"), "submission must be an object, got nothing"),
    ("submission-list", _set("submission", ["name"]), "submission must be an object, got a list"),
    ("missing-name", _drop("submission.name"), "submission.name must be a string"),
    ("name-number", _set("submission.name", 42), "submission.name must be a string, got an integer"),
    ("name-empty", _set("submission.name", "  \n "), "submission.name is empty"),
    ("name-huge", _set("submission.name", "x" * 100_000), "submission.name is 100000 characters long"),
    ("authors-string", _set("submission.authors", "A. Author"), "submission.authors must be a list"),
    ("author-dict", _set("submission.authors", [{"name": "A"}]), "submission.authors[0] must be a string"),
    ("method-missing", _drop("submission.method"), "submission.method must be a string"),
    ("missing-dataset", _drop("dataset"), "dataset must be an object"),
    ("variant-list", _set("dataset.variant", ["cifar10s"]), "dataset.variant must be a string, got a list"),
    ("official-string", _set("dataset.official_cifar10", "yes"), "dataset.official_cifar10 must be a boolean, got a string"),
    ("missing-summary", _drop("summary"), "summary must be an object"),
    ("missing-final", _drop("summary.final_test_acc"), "summary.final_test_acc must be an object"),
    ("mean-missing", _drop("summary.final_test_acc.mean"), "summary.final_test_acc.mean is missing or null"),
    ("mean-string", _set("summary.final_test_acc.mean", "0.47"), "summary.final_test_acc.mean must be a number"),
    ("mean-bool", _set("summary.final_test_acc.mean", True), "must be a number, got a boolean"),
    ("mean-percent", _set("summary.final_test_acc.mean", 47.05), "is outside [0, 1]"),
    ("mean-negative", _set("summary.final_test_acc.mean", -0.1), "is outside [0, 1]"),
    ("mean-above-one", _set("summary.final_test_acc.mean", 1.0000001), "is outside [0, 1]"),
    ("value-above-one", _set("summary.final_test_acc.values", [0.5, 2.0]), "values[1] = 2.0 is outside [0, 1]"),
    ("best-outside", _set("summary.best_test_acc.mean", 3.0), "summary.best_test_acc.mean = 3.0 is outside"),
    ("mean-disagrees", _set("summary.final_test_acc.mean", 0.99), "mean does not match the mean of"),
    ("n-disagrees", _set("summary.final_test_acc.n", 5), "n = 5 but 2 values are given"),
    ("std-string", _set("summary.final_test_acc.std", "small"), "summary.final_test_acc.std must be a number"),
    ("values-dict", _set("summary.final_test_acc.values", {"0": 0.5}), "values must be a list"),
    ("preset-missing", _drop("preset"), "preset must be a string"),
    ("preset-dict", _set("preset", {"name": "paper"}), "preset must be a string, got an object"),
    ("preset-diff-list", _set("preset_diff", ["epochs"]), "preset_diff must be an object, got a list"),
    ("preset-diff-value", _set("preset_diff", {"epochs": 20}), "preset_diff.epochs must be an object"),
    ("seeds-dict", _set("seeds", {"0": 0}), "seeds must be a list"),
    ("seed-string", _set("seeds", ["0"]), "seeds[0] must be an integer"),
    ("code-list", _set("code", ["0.1.0"]), "code must be an object"),
    ("created-number", _set("created_utc", 20261125), "created_utc must be a string"),
]


@pytest.mark.parametrize("case,bad,reason", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_file_is_skipped_with_a_note_naming_it(tmp_path, demo, keys_dir, case, bad, reason, capsys):
    good = example(demo)
    (tmp_path / "good.json").write_text(json.dumps(good))
    if callable(bad):
        bad = bad(copy.deepcopy(good))
        bad = (bad if isinstance(bad, str) else json.dumps(bad)).encode("utf-8")
    (tmp_path / f"bad-{case}.json").write_bytes(bad)

    results, skipped = load_results(tmp_path, TRUSTED)
    assert [c.file for c in results] == ["good.json"]
    assert len(skipped) == 1 and skipped[0].startswith(f"bad-{case}.json: ") and reason in skipped[0], skipped

    site = tmp_path / "site"
    assert lb_main(["leaderboard", "--results", str(tmp_path), "--out", str(site), "--trusted-keys", str(keys_dir)]) == 0
    assert f"skipped bad-{case}.json: " in capsys.readouterr().out
    md, page = (site / "leaderboard.md").read_text("utf-8"), (site / "index.html").read_text("utf-8")
    assert detail(md).count("| lenet5 |") == 1 and f"bad\\-{case}.json" not in md.split("## Unverified files")[0]
    assert f"bad-{case}.json" in md.split("## Unverified files")[1].replace("\\", "")
    assert f"bad-{case}.json" in sections(page)["Unverified files"] and page.count('<tr class="reproduced">') == 1


def test_files_that_are_not_plain_small_files(tmp_path, demo, monkeypatch):
    good = json.dumps(example(demo))
    (tmp_path / "good.json").write_text(good)
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere")
    (tmp_path / "big.json").write_text(good + " " * 5000)
    (tmp_path / "notes.txt").write_text("not a .json: ignored")
    monkeypatch.setattr(result_file, "MAX_FILE_BYTES", len(good) + 100)
    results, skipped = load_results(tmp_path, TRUSTED)
    assert [c.file for c in results] == ["good.json"]
    too_big = f"big.json: {len(good) + 5000} bytes, more than the {len(good) + 100} a result file may have"
    assert sorted(skipped) == [too_big, "dangling.json: not a regular file", "folder.json: not a regular file"]


def test_file_names_are_shown_safely(tmp_path, demo):
    good = json.dumps(example(demo))
    (tmp_path / "good.json").write_text(good)
    (tmp_path / "<img src=x onerror=alert(1)> | [a](javascript:x).json").write_text("{}")
    with open(bytes(tmp_path) + b"/caf\xe9.json", "wb") as fh:  # a name that is not UTF-8 (Latin-1 bytes)
        fh.write(b"[]")
    md_path, page_path, n, skipped = write_leaderboard(tmp_path, tmp_path / "site", trusted_keys=TRUSTED)
    assert n == 1 and len(skipped) == 2 and any(s.startswith("caf\ufffd.json: ") for s in skipped)
    page, md = page_path.read_text("utf-8"), md_path.read_text("utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    assert "&lt;img src=x onerror=alert\\(1\\)&gt; \\| \\[a\\]\\(javascript:x\\).json" in md


def test_renderers_check_records_given_directly(demo):
    good = example(demo)
    bad = copy.deepcopy(good)
    bad["summary"]["final_test_acc"]["mean"] = float("nan")
    records = [good, bad, "not a record", None, {**good, "_file": "named.json", "preset": 7}]
    entries, skipped = checked_entries(records)
    assert len(entries) == 1
    assert skipped == ["result #2: summary.final_test_acc.mean is nan, not a finite number",
                       "result #3: the file must be an object, got a string",
                       "result #4: the file must be an object, got nothing (missing or null)",
                       "result #5: preset must be a string, got an integer"]
    md, page = render_markdown(records), render_html(records)
    assert detail(md).count("| lenet5 |") == 1 and page.count('<tr class="reproduced">') == 1
    assert "result \\#2: summary.final\\_test\\_acc.mean is nan" in md and "result #5: preset" in page
    assert len(ET.fromstring(render_svg(records)).findall(f".//{SVG}rect[@class='bar']")) == 1


def test_random_corruption_never_escapes_as_another_error(demo):
    """Seeded fuzzing: replace random parts of a real record with junk; the checker must accept
    the record or refuse it with MalformedResult, and the renderers must still produce a page."""
    rng = random.Random(20230501)
    junk = [None, "", "x" * 300, "<b>|</b>\n", -1, 2**70, 1e308, -0.5, 1.5, True, [], {}, [None], {"a": []},
            float("nan"), float("inf"), "\udcff", 0.5]
    base = example(demo)
    base.pop("signature")  # the renderers' wrapper signs each record as it is after the edits

    def paths(obj, prefix=()):
        yield prefix
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj[:3]):
                yield from paths(v, prefix + (i,))

    all_paths = [p for p in paths(base) if p and p[0] not in ("per_seed", "environment", "config", "test_set")]
    accepted = refused = unsignable = 0
    records = []
    for _ in range(400):
        r = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(all_paths)
            d = r
            try:
                for p in path[:-1]:
                    d = d[p]
                d[path[-1]] = copy.deepcopy(rng.choice(junk))
            except (KeyError, IndexError, TypeError):
                continue
        records.append(r)
        try:  # a NaN or infinity cannot be signed: such a record stays unsigned, and is refused
            json.dumps(r, allow_nan=False)
        except ValueError:
            unsignable += 1
            continue
        try:
            parse_result(signed([r])[0])
            accepted += 1
        except MalformedResult:
            refused += 1
    assert accepted > 20 and refused > 100 and unsignable > 5  # every outcome was exercised
    entries, skipped = checked_entries(records)
    assert len(entries) == accepted and len(skipped) == refused + unsignable
    page, md = render_html(records), render_markdown(records)
    page.encode("utf-8"), md.encode("utf-8")  # no lone surrogates left anywhere
    assert page.count("<script>") == 1


# ------------------------------------------------------------------------------------------------
# escaping


HOSTILE = ("<script>alert(1)</script> | cell\n## heading\r\n![x](http://evil.example/p.png) "
           "[click](javascript:alert(1)) <img src=x onerror=alert(1)> `tick` **bold** &amp; \u202e\u2028$x$")


def hostile_record(demo: list[dict]) -> dict:
    r = example(demo)
    r["submission"].update(name=HOSTILE[:190], authors=["A | B", "<i>C</i>\n- item"], method="at|<b>x</b>",
                           model="lenet5</td><td>", defense="jpeg\n|", defense_kwargs={"q|<x>": "</script>"},
                           link="javascript:alert(1)")
    r["dataset"].update(variant="cifar10s\n# injected <h1>", paper_train_set="weird | set\n## x")
    r["preset"] = "cpu|smoke <b>"
    r["preset_diff"] = {"<i>k</i>|": {"paper": "</script><script>alert(2)</script>", "used": "|\n|"}}
    r["code"] = {"cifar10s": "0.1 | <b>", "git_commit": "not-a-sha <x>"}
    r["created_utc"] = "<b>2026</b>|"
    return r


def test_markdown_escapes_every_field(demo):
    in_overview = hostile_record(demo)  # the same text on a training set the by-model table shows
    in_overview["dataset"]["paper_train_set"] = "cifar10s"
    md = render_markdown([hostile_record(demo), in_overview, example(demo)],
                         skipped=["x.json: <img src=y> | ![a](http://e/i)"])
    assert "<" not in md and ">" not in md.replace("&gt;", "")  # no raw HTML at all
    assert "![" not in md  # no image, remote or not
    assert "\u202e" not in md and "\u2028" not in md and "\r" not in md
    links = re.findall(r"(?<!\\)\]\((.*?)\)", md)
    assert all(link.startswith("https://") for link in links), links
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert all(re.fullmatch(r"# CIFAR-10-S leaderboard|## (Not c|C)omparable with the paper|### Training set: .*"
                            r"|## Unverified files|## By model and method|## Defenses vs CIFAR-10-S", h)
               for h in headings), headings
    # every line of a table has its table's columns: no pipe broke out of a cell
    overview = [line for line in md_sections(md)["By model and method"].splitlines() if line.startswith("|")]
    assert {len(re.findall(r"(?<!\\)\|", line)) for line in overview} == {13} and len(overview) == 2 + 2
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt; \\| cell" in overview[2] + overview[3]
    table_lines = [line for line in detail(md).splitlines() if line.startswith("|")]
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in table_lines}
    assert cells == {17}, cells  # 16 columns on every line
    row = next(line for line in table_lines if "alert" in line)
    assert "\\<" not in row and "&lt;script&gt;alert\\(1\\)&lt;/script&gt; \\| cell \\#\\# heading" in row
    assert "\\!\\[x\\]\\(http://evil.example/p.png\\)" in row and "\\*\\*bold\\*\\*" in row and "\\`tick\\`" in row


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "div", "label", "input",
                "span", "section", "table", "thead", "tbody", "tr", "th", "td", "button", "small", "a", "ol", "li",
                "ul", "i", "b", "code", "svg", "g", "text", "line", "rect", "path", "script",
                "figure", "figcaption", "polyline", "polygon"}  # the learning curves


def test_html_escapes_everything_and_runs_only_its_own_script(demo):
    page = render_html([hostile_record(demo), example(demo), paper_run(demo)],
                       skipped=["x.json: <img src=y onerror=alert(3)>"])
    parser = _Tags()
    parser.feed(page)
    names = [t for t, _ in parser.tags]
    assert set(names) <= ALLOWED_TAGS, set(names) - ALLOWED_TAGS
    assert names.count("script") == 1 and names.count("h1") == 1 and "img" not in names
    for tag, attrs in parser.tags:
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)
        assert "src" not in attrs and "style" not in attrs
        if tag == "a":
            assert attrs["href"].startswith(("https://", "#fn-")) or re.fullmatch(r"curves-[a-z0-9-]+\.png",
                                                                                   attrs["href"]), attrs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "alert(2)" in page  # shown, as text
    # the one script is the renderer's, and the Content-Security-Policy admits exactly it
    (script,) = parser.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = next(a["content"] for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "alert" not in script
    # self-contained: nothing is loaded from anywhere
    assert "<link" not in page and "@import" not in page and "url(" not in page


# ------------------------------------------------------------------------------------------------
# the source of the data: the official archive, a full-size copy, a subset


FULL_COPY = {"train": "a1" * 32, "test": "b2" * 32}


def paper_scale(demo: list[dict], train_set: str, accs: tuple[float, ...], *, kind: str = "full-copy",
                stuck_seed: int | None = None) -> dict:
    """LeNet-5, standard training, the paper preset on all of CIFAR-10 from a copy of kind ``kind``
    (as leaderboard/paper-scale-cpu.sh scores it), optionally with a seed that never left chance."""
    r = paper_run(demo, model="lenet5", method="standard", train_set=train_set, accs=accs,
                  name="LeNet-5, standard training (paper baseline)")
    n_train, n_test = (50000, 10000) if kind != "subset" else (10000, 2000)
    r["dataset"].update(source_kind=kind, source_content_fingerprint=FULL_COPY, official_cifar10=kind == "official",
                        num_train=n_train, num_test=n_test)
    r["test_set"].update(source_kind=kind, content_fingerprint=FULL_COPY["test"], num_test=n_test)
    if stuck_seed is not None:
        for rec in r["per_seed"][stuck_seed]["records"]:
            rec.update(train_loss=2.3026, train_acc=0.1, test_acc=0.1)
    return r


def test_a_paper_scale_folder_on_a_full_size_copy_is_comparable_and_names_its_source(demo, tmp_path):
    """What leaderboard/examples/paper-scale-cpu/ will hold: LeNet-5 on all 50,000 images of a copy
    that is not the official archive. Comparable (only images and labels matter), labelled as a
    full-size copy with its content fingerprint, never as the official archive; the paper's 70.27
    (clean) and 22.19 (OPS) beside it with the difference; a seed at chance footnoted."""
    folder = tmp_path / "paper-scale-cpu"
    folder.mkdir()
    for train_set, accs, stuck in (("clean", (0.6950, 0.7080), None), ("ops", (0.2310, 0.1000), 1)):
        r = sign_record(paper_scale(demo, train_set, accs, stuck_seed=stuck), KEY)
        (folder / f"lenet5-standard--{r['dataset']['variant']}--paper.json").write_text(json.dumps(r))
    md_path, page_path, n, skipped = write_leaderboard(folder, tmp_path / "site", trusted_keys=TRUSTED)
    assert (n, skipped) == (2, [])
    md = md_sections(md_path.read_text("utf-8"))
    comparable = md["Comparable with the paper"].replace("\\", "")
    assert "Not comparable with the paper" not in md
    assert "| reproduced | 70.15 ± 0.92 | -0.12 |" in comparable and "| reported | 70.27 | – |" in comparable
    assert "| reproduced | 16.55 ± 9.26 | -5.64 |" in comparable and "| reported | 22.19 | – |" in comparable
    assert comparable.count("clean (full-size copy)") == 1 and comparable.count("ops-k1 (full-size copy)") == 1
    note = "training data: full-size copy, not the official archive: all 50000 training and 10000 test images"
    assert note in comparable
    assert "content fingerprint train a1a1a1a1a1a1a1a1…, test b2b2b2b2b2b2b2b2…" in comparable
    assert "unverified (the official content fingerprint is not yet pinned in cifar10s/constants.py)" in comparable
    assert "seed 1 never left chance" in comparable
    # never called the official archive, in a row or a note
    shown = "\n".join(line for line in comparable.splitlines() if line.startswith(("|", "- †")))
    assert "official archive" not in shown.replace("not the official archive", "").replace("official archive's", "")
    # the by-model table: comparable, both cells beside the paper's, the drop in points
    (row,) = [line for line in md["By model and method"].splitlines() if "| lenet5 |" in line]
    assert "| paper | yes | 70.15 ± 0.92 (2 seeds); paper 70.27 (Table 2, reported) |" in row
    assert "| 16.55 ± 9.26 (2 seeds); paper 22.19 (Table 2, reported) |" in row
    page = page_path.read_text("utf-8")
    assert "full-size copy" in sections(page)["Comparable with the paper"]


def test_the_source_decides_comparability(demo, monkeypatch):
    """A subset is never comparable; a full-size copy whose content is known to differ from the
    official archive's is not; one whose content matches, or the official archive, is."""
    def part_of(r: dict) -> str:
        md = md_sections(render_markdown([r]))
        return "comparable" if "Not comparable with the paper" not in md else "other"

    assert part_of(paper_scale(demo, "clean", (0.70,), kind="subset")) == "other"
    assert part_of(paper_scale(demo, "clean", (0.70,), kind="official")) == "comparable"
    assert part_of(paper_scale(demo, "clean", (0.70,), kind="official-content")) == "comparable"
    assert part_of(paper_scale(demo, "clean", (0.70,))) == "comparable"
    monkeypatch.setattr(result_file, "CIFAR10_OFFICIAL_CONTENT", {"train": "c3" * 32, "test": "d4" * 32})
    assert part_of(paper_scale(demo, "clean", (0.70,))) == "other"
    md = render_markdown([paper_scale(demo, "clean", (0.70,))]).replace("\\", "")
    assert "its images or labels differ from the official archive's" in md
    monkeypatch.setattr(result_file, "CIFAR10_OFFICIAL_CONTENT", dict(FULL_COPY))
    md = render_markdown([paper_scale(demo, "clean", (0.70,))]).replace("\\", "")
    assert "its images and labels equal the official archive's (content fingerprints match)" in md
    # a subset of the test set is a caveat too, whatever the training data
    r = paper_scale(demo, "clean", (0.70,), kind="official")
    r["test_set"].update(source_kind="subset", num_test=2000)
    assert part_of(r) == "other"


def test_defenses_are_ranked_against_the_row_without_one_and_name_another_build(demo):
    """Defenses on CIFAR-10-S ranked by the accuracy they reach, restored points and clean cost
    measured against the same model and method without a defense; a defense trained on another
    build of the data than that row (other training-image sha256) says so."""
    def defended(train_set: str, name: str, defense: str, acc: float, sha: str | None = None) -> dict:
        r = example(demo, "standard", train_set)
        r["submission"].update(name=name, defense=defense, defense_kwargs={})
        r["summary"]["final_test_acc"] = {"mean": acc, "std": 0.0, "n": 1, "values": [acc]}
        if sha:
            r["dataset"]["train_images_sha256"] = sha
        return r

    records = [example(demo, "standard", "cifar10s"), example(demo, "standard", "clean"),
               defended("cifar10s", "JPEG", "jpeg", 0.50), defended("clean", "JPEG", "jpeg", 0.52),
               defended("cifar10s", "Gray", "grayscale", 0.15, sha="ab" * 32), defended("clean", "Gray", "grayscale", 0.42)]
    md = md_sections(render_markdown(records))["Defenses vs CIFAR-10-S"]
    rows = [line for line in md.splitlines() if "| lenet5 |" in line]
    assert [r.split(" | ")[1] for r in rows] == ["none", "jpeg", "grayscale"]
    assert rows[1].startswith("| 1 | jpeg |") and rows[2].startswith("| 2 | grayscale |")
    base, base_clean = 100 * demo_mean(records[0]), 100 * demo_mean(records[1])
    assert f"| {50 - base:+.2f} |" in rows[1] and f"| {base_clean - 52:+.2f} |" in rows[1]
    assert "another build" not in rows[1] and rows[1].endswith("| – |")
    assert "another build of CIFAR-10-S than the row without a defense" in rows[2]


def demo_mean(r: dict) -> float:
    return r["summary"]["final_test_acc"]["mean"]


def test_chart_values_sit_under_the_axis_where_nothing_covers_them(demo):
    """Each bar's value is written under the axis, below every bar, error line and paper diamond
    (which once covered the labels drawn above the bars)."""
    svg = ET.fromstring(render_svg(demo))
    values = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "value"]
    assert len(values) == 12  # one per bar: 3 methods x 4 training sets
    axis = max(float(r.get("y")) + float(r.get("height")) for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar")
    lowest_mark = max(max(float(p) for p in re.findall(r"[\d.]+", path.get("d"))[1::2])
                      for path in svg.iter(f"{SVG}path") if path.get("class") == "paper")
    lines = [max(float(ln.get("y1")), float(ln.get("y2"))) for ln in svg.iter(f"{SVG}line") if ln.get("stroke") == "#222"]
    for t in values:
        top_of_text = float(t.get("y")) - 9  # font-size 9, drawn from its baseline up
        assert top_of_text >= axis - 1e-6 and top_of_text > lowest_mark and top_of_text > max(lines), t.text
    # and they are the bars' own numbers
    assert sorted(t.text for t in values)[:3] == ["18.7", "20.4", "22.0"]


def test_the_committed_paper_scale_results_are_comparable_with_their_caveats(tmp_path):
    """LeNet-5 at the paper's scale on a full-size copy: placed beside the paper's Table 2 with the
    difference, its test split (not the pinned official arrays) and the seed at chance footnoted."""
    from cifar10s.cli.main import main as cli_main

    results = Path(__file__).resolve().parents[1] / "leaderboard" / "examples" / "paper-scale-cpu"
    assert cli_main(["leaderboard", "--results", str(results), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "leaderboard.md").read_text()
    comparable = md.split("## Comparable with the paper", 1)[1].split("## Not comparable", 1)[0]
    assert "clean \\(full-size copy\\)" in comparable and "ops-k1 \\(full-size copy\\)" in comparable
    assert "| 70.27 |" in comparable and "| 22.19 |" in comparable  # the paper's rows beside ours
    assert "test split not pinned" in md and "never left chance" in md
