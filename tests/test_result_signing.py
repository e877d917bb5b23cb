"""Verifiable results: the strict JSON reader, the signing key, signed result files, and a board
that ranks only what a trusted scorer signed and never stops on one file.

Each attack is a file someone could put in a results folder: edited after signing, signed badly,
unsigned, signed by a key of its own, written with duplicate keys, or built to crash the board.
"""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cifar10s import strict_json
from cifar10s.cli.main import main as cli
from cifar10s.leaderboard.board import render, result_file, result_schema, signing
from cifar10s.leaderboard.board.results import checked_entries
from cifar10s.leaderboard.board.result_file import MalformedResult, read_result, write_result
from cifar10s.leaderboard.board.signing import (
    SigningError,
    TrustedKeys,
    load_signing_key,
    load_trusted_keys,
    sign_record,
    verify_record,
)

REPO = Path(__file__).resolve().parents[1]
DEMO_FILE = REPO / "leaderboard" / "examples" / "cpu-demo" / "lenet5-standard--em--cpu-smoke.json"
SANDBOX = {"tool": "bubblewrap", "version": "0.0-test", "namespaces": ["pid", "net"]}


@pytest.fixture(scope="module")
def scorer(tmp_path_factory) -> signing.SigningKey:
    return load_signing_key(tmp_path_factory.mktemp("scorer") / "key.pem")


@pytest.fixture(scope="module")
def attacker(tmp_path_factory) -> signing.SigningKey:
    return load_signing_key(tmp_path_factory.mktemp("attacker") / "key.pem")


@pytest.fixture
def board(tmp_path, scorer) -> tuple[Path, Path]:
    """A results folder and a trusted-keys folder beside it listing the scorer's key (given to the
    board explicitly: the default is the project's folder, never one found near the results)."""
    results, keys = tmp_path / "results", tmp_path / "trusted-keys"
    results.mkdir()
    keys.mkdir()
    (keys / "scorer.pub").write_text(f"# the maintainers' scoring machine\n{scorer.public_line()}\n")
    return results, keys


def record(**changes) -> dict:
    """A complete format-2 record (the committed example, with the fields it predates)."""
    r = json.loads(DEMO_FILE.read_text())
    r.update(format_version=2, precision={"autocast": None, "tf32": False, "channels_last": False, "compiled": False},
             isolation="child processes", sandbox=copy.deepcopy(SANDBOX),
             integrity={"flip_gap": 0.004, "suspicious": False, "caveats": []})
    r.update(changes)
    return r


# ------------------------------------------------------------------------------------------------
# the strict JSON reader


@pytest.mark.parametrize("text,message", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"x": [{"deep": {"k": 1, "k": 1}}]}', "duplicate key 'k'"),  # even with the same value, at any depth
    ('{"a": NaN}', "NaN is not a JSON value"),
    ('{"a": -Infinity}', "-Infinity is not a JSON value"),
    ('{"a": 1e400}', "out of range"),
    ('{"a": ' + "1" * 21 + "}", "an integer with 21 digits"),
    ('{"a": -' + "1" * 4000 + "}", "an integer with 4000 digits"),
    ('{"a": 1', "invalid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (b'{"a": "\xff"}', "not UTF-8"),
])
def test_strict_json_refuses_what_two_readers_could_read_differently(text, message):
    with pytest.raises(strict_json.StrictJSONError, match=message):
        strict_json.loads(text)


def test_strict_json_reads_ordinary_json_and_bounds_files(tmp_path):
    assert strict_json.loads('{"a": [1, 2.5, -3e-2, "x", null, true], "b": {"c": ' + "9" * 20 + "}}") == {
        "a": [1, 2.5, -0.03, "x", None, True], "b": {"c": int("9" * 20)}}
    (tmp_path / "f.json").write_text('{"a": 1}' + " " * 100)
    with pytest.raises(strict_json.StrictJSONError, match="larger than the 50 bytes"):
        strict_json.read_file(tmp_path / "f.json", max_bytes=50)
    os.mkfifo(tmp_path / "fifo.json")  # never opened (it would block)
    with pytest.raises(strict_json.StrictJSONError, match="not a regular file"):
        strict_json.read_file(tmp_path / "fifo.json", max_bytes=50)


# ------------------------------------------------------------------------------------------------
# the signing key


def test_key_is_created_on_first_use_in_the_config_folder_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "config" / "cifar10s" / "signing-key.pem"
    assert signing.default_key_path() == path and not path.exists()
    key = load_signing_key()
    assert key.path == path and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_signing_key().public_raw == key.public_raw  # created once, then reused
    assert sorted(p.name for p in path.parent.iterdir()) == ["signing-key.pem"]  # no temporary file left
    # a relative XDG_CONFIG_HOME is ignored (the spec says so): ~/.config
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")
    assert signing.default_key_path() == tmp_path / "home" / ".config" / "cifar10s" / "signing-key.pem"
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "elsewhere.pem"))
    assert signing.default_key_path() == tmp_path / "elsewhere.pem"


def test_a_failed_creation_leaves_no_key_and_no_partial_file(tmp_path, monkeypatch):
    def fail(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(signing.os, "link", fail)
    with pytest.raises(SigningError, match="cannot create the signing key .*No space left"):
        load_signing_key(tmp_path / "k" / "key.pem")
    assert list((tmp_path / "k").iterdir()) == []


def _create_key(path: str) -> bytes:
    return load_signing_key(path).public_raw


def test_concurrent_first_uses_agree_on_one_key(tmp_path):
    path = str(tmp_path / "key.pem")
    with mp.get_context("spawn").Pool(4) as pool:
        keys = pool.map(_create_key, [path] * 8)
    assert len(set(keys)) == 1 and keys[0] == load_signing_key(path).public_raw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


def test_a_key_others_can_read_or_a_link_is_refused(tmp_path):
    key = load_signing_key(tmp_path / "key.pem")
    os.chmod(key.path, 0o640)
    with pytest.raises(SigningError, match="can be read or written by others .*chmod 600"):
        load_signing_key(key.path)
    os.chmod(key.path, 0o600)
    (tmp_path / "link.pem").symlink_to(key.path)
    with pytest.raises(SigningError, match="not a link"):
        load_signing_key(tmp_path / "link.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    os.chmod(tmp_path / "junk.pem", 0o600)
    with pytest.raises(SigningError, match="not an unencrypted PEM private key"):
        load_signing_key(tmp_path / "junk.pem")
    with pytest.raises(SigningError, match="no signing key"):
        load_signing_key(tmp_path / "missing.pem", create=False)


# ------------------------------------------------------------------------------------------------
# signed result files


def test_written_results_are_signed_and_read_back_as_written(tmp_path, scorer):
    r = record()
    r["per_seed"][0]["records"][0]["train_loss"] = float("nan")  # a diverged loss has no JSON spelling
    written = write_result(tmp_path / "r.json", r, scorer)
    assert written["per_seed"][0]["records"][0]["train_loss"] is None
    assert read_result(tmp_path / "r.json") == written
    block = written["signature"]
    assert block["algorithm"] == "ed25519" and block["key_id"] == scorer.key_id
    assert verify_record(written, TrustedKeys.of(scorer.public_raw)).ok
    # the scorer never writes a file the board would refuse
    with pytest.raises(MalformedResult, match="sandbox must be an object"):
        write_result(tmp_path / "bad.json", record(sandbox="bubblewrap"), scorer)
    with pytest.raises(MalformedResult, match="integrity must be an object, got nothing"):
        write_result(tmp_path / "bad.json", {k: v for k, v in record().items() if k != "integrity"}, scorer)
    assert not (tmp_path / "bad.json").exists()


def _forged(scorer, attacker) -> dict[str, tuple[dict, str]]:
    """name -> (record, what the board must say about it)."""
    honest = sign_record(record(), scorer)
    edited = copy.deepcopy(honest)
    edited["summary"]["final_test_acc"]["values"] = [0.99, 0.99]
    edited["summary"]["final_test_acc"]["mean"] = 0.99
    added = {**copy.deepcopy(honest), "note": "an extra field is an edit too"}
    garbled = copy.deepcopy(honest)
    garbled["signature"]["signature"] = "A" * 86 + "=="  # 64 zero bytes: well-formed, wrong
    other_content = sign_record(record(preset="paper"), scorer)
    swapped = {**copy.deepcopy(honest), "signature": other_content["signature"]}  # a signature of another file
    self_signed = sign_record(record(), attacker)  # carries its own key, which agrees with it
    posing = copy.deepcopy(self_signed)  # claims the scorer's key, signed by the attacker
    posing["signature"].update(public_key=honest["signature"]["public_key"], key_id=scorer.key_id)
    wrong_id = copy.deepcopy(honest)
    wrong_id["signature"]["key_id"] = "0" * 16
    no_sig = record()
    no_sig.pop("signature", None)
    return {
        "edited": (edited, "bad signature: the content does not match"),
        "added-field": (added, "bad signature"),
        "garbled": (garbled, "bad signature"),
        "swapped": (swapped, "bad signature"),
        "self-signed": (self_signed, f"signed by key {attacker.key_id}, which is not a trusted key"),
        "posing": (posing, "bad signature"),
        "wrong-key-id": (wrong_id, "key_id does not belong to public_key"),
        "short-signature": ({**honest, "signature": {**honest["signature"], "signature": "AAAA"}},
                            "signature.signature is 3 bytes, not 64"),
        "not-base64": ({**honest, "signature": {**honest["signature"], "public_key": "!" * 44}}, "not valid base64"),
        "other-algorithm": ({**honest, "signature": {**honest["signature"], "algorithm": "none"}},
                            "algorithm is not ed25519"),
        "block-string": ({**honest, "signature": "trust me"}, "signature block is not an object"),
        "unsigned-v1": ({**no_sig, "format_version": 1}, "not signed: no signature block"),
    }


def test_every_forgery_fails_verification_with_its_reason(scorer, attacker):
    trusted = TrustedKeys.of(scorer.public_raw)
    assert verify_record(sign_record(record(), scorer), trusted).ok
    for name, (r, reason) in _forged(scorer, attacker).items():
        check = verify_record(r, trusted)
        assert not check.ok and reason in check.reason, (name, check.reason)
    # a key trusted only because the file carries it would accept the attacker's file
    assert verify_record(sign_record(record(), attacker), TrustedKeys.of(attacker.public_raw)).ok


def test_the_board_ranks_only_verified_sandboxed_results(board, scorer, attacker, capsys):
    results, keys = board
    write_result(results / "honest.json", record(), scorer)
    write_result(results / "unsandboxed.json", record(sandbox="none", submission={
        **record()["submission"], "name": "Run without a sandbox"}), scorer)
    for name, (r, _) in _forged(scorer, attacker).items():
        (results / f"{name}.json").write_text(json.dumps(r))
    honest_text = (results / "honest.json").read_text()
    (results / "dup-key.json").write_text(honest_text.replace('"format"', '"preset": "paper",\n  "format"', 1))
    assert cli(["leaderboard", "--results", str(results), "--out", str(results.parent / "site"),
                "--trusted-keys", str(keys)]) == 0
    out = capsys.readouterr().out
    assert f"trusted keys: 1 from {keys}" in out and "rendered 2 verified result(s)" in out
    md = (results.parent / "site" / "leaderboard.md").read_text("utf-8")
    split = re.split(r"^## (.+)$", md, flags=re.MULTILINE)
    parts = dict(zip(split[1::2], split[2::2]))
    assert list(parts) == ["By model and method", "Defenses vs CIFAR-10-S", "Comparable with the paper",
                           "Not comparable with the paper", "Scored without a sandbox (not ranked)", "Unverified files"]
    assert "Run without a sandbox" not in parts["By model and method"]  # never ranked, not in the overview
    assert parts["By model and method"].count("| LeNet-5, standard training") == 1
    ranked = parts["Not comparable with the paper"]
    assert ranked.count("| reproduced |") == 1 and "| 1 | LeNet-5, standard training" in ranked
    apart = parts["Scored without a sandbox (not ranked)"]
    assert "| – | Run without a sandbox" in apart and "never ranked" in apart
    unverified = parts["Unverified files"].replace("\\", "")
    forged = _forged(scorer, attacker)
    for name, (_, reason) in forged.items():
        assert f"- {name}.json: " in unverified and reason.replace("\\", "") in unverified, name
    assert "- dup-key.json: duplicate key 'preset'" in unverified
    assert unverified.count("\n- ") == len(forged) + 1
    page = (results.parent / "site" / "index.html").read_text("utf-8")
    assert page.count('<tr class="reproduced">') == 2 and "<h2>Unverified files</h2>" in page

    # without the trusted-keys folder nothing is ranked, and the board says why
    os.rename(keys, keys.parent / "elsewhere")
    assert cli(["leaderboard", "--results", str(results), "--out", str(results.parent / "site2"),
                "--trusted-keys", str(keys)]) == 0
    out = capsys.readouterr().out
    assert "no trusted keys" in out and "rendered 0 verified result(s)" in out
    assert "honest.json: signed by key" in out and "which is not a trusted key" in out


def test_keys_beside_or_inside_the_results_are_not_trusted_by_default(board, scorer, capsys, monkeypatch):
    """The default trusted keys are the project's (leaderboard/trusted-keys/ of the checkout the
    package runs from); a key that sits in or next to a results folder is trusted by nobody."""
    results, keys = board
    write_result(results / "honest.json", record(), scorer)
    (results / "trusted-keys").mkdir()
    (results / "trusted-keys" / "scorer.pub").write_text(scorer.public_line() + "\n")
    monkeypatch.chdir(results)
    assert cli(["leaderboard", "--results", str(results), "--out", str(results.parent / "site")]) == 0
    out = capsys.readouterr().out
    assert f"trusted keys: {len(load_trusted_keys(REPO / 'leaderboard' / 'trusted-keys').keys)} from " \
           f"{REPO / 'leaderboard' / 'trusted-keys'}" in out
    assert "rendered 0 verified result(s)" in out and "which is not a trusted key" in out
    assert signing.default_trusted_keys() == REPO / "leaderboard" / "trusted-keys"
    # an installed package outside a checkout has no default: then the current folder's, if it is one
    monkeypatch.setattr(signing, "__file__", str(results / "site-packages" / "cifar10s" / "leaderboard" / "board" / "x.py"))
    assert signing.default_trusted_keys(cwd=results) is None
    assert signing.default_trusted_keys(cwd=REPO) == REPO / "leaderboard" / "trusted-keys"
    (results / "pyproject.toml").write_text('[project]\nname = "not-cifar10s"\n')
    assert signing.default_trusted_keys(cwd=results) is None


def test_a_byte_identical_copy_is_one_row(board, scorer, capsys):
    """Two files holding the same signed result (a copy, same signature) are one row, with a note
    naming both; a result rescored with other numbers is another row."""
    results, keys = board
    write_result(results / "a.json", record(), scorer)
    (results / "b-copy.json").write_bytes((results / "a.json").read_bytes())
    (results / "c-reformatted.json").write_text(json.dumps(json.loads((results / "a.json").read_text())))
    again = record(created_utc="2026-12-01T00:00:00Z")
    write_result(results / "d-rescored.json", again, scorer)
    md, page, n, notes = render.write_leaderboard(results, results.parent / "site", trusted_keys=keys)
    assert n == 2
    assert notes == ["b-copy.json: the same signed result as a.json (a copy; shown once)",
                     "c-reformatted.json: the same signed result as a.json (a copy; shown once)"]
    assert page.read_text("utf-8").count('<tr class="reproduced">') == 2


def test_bad_trusted_key_files_are_noted_not_fatal(board, scorer):
    results, keys = board
    write_result(results / "honest.json", record(), scorer)
    (keys / "broken.pub").write_text("ssh-rsa AAAA someone\ned25519 bm90IGEga2V5 short\n")
    (keys / "binary.pub").write_bytes(b"\xff\xfe")
    md, _, n, notes = render.write_leaderboard(results, results.parent / "site", trusted_keys=keys)
    assert n == 1
    assert "trusted keys: broken.pub line 1: expected 'ed25519 <base64 public key> [comment]'" in notes
    assert "trusted keys: broken.pub line 2: the public key is 9 bytes, not 32" in notes
    assert any(s.startswith("trusted keys: binary.pub: unreadable") for s in notes)


# ------------------------------------------------------------------------------------------------
# the board never stops on one file


def test_the_two_crash_inputs_render_or_are_skipped(board, scorer, capsys):
    results, _ = board
    gap = record(integrity={"flip_gap": int("9" * 400), "suspicious": True, "caveats": []})
    squared = record(dataset={**record()["dataset"], "variant": "²", "paper_train_set": "²"})
    ordinary = record()
    # given to the renderers directly (no file reader in between): both render, neither raises
    entries, notes = checked_entries([sign_record(r, scorer) for r in (gap, squared, ordinary)], (),
                                     TrustedKeys.of(scorer.public_raw))
    assert notes == [] and len(entries) == 3
    md = render.render_markdown([sign_record(r, scorer) for r in (gap, squared, ordinary)],
                                trusted_keys=TrustedKeys.of(scorer.public_raw))
    assert "FLAGGED: accuracy on horizontally flipped test images differs by a large gap" in md
    assert "### Training set: ²" in md
    page = render.render_html([sign_record(r, scorer) for r in (squared, ordinary)],
                              trusted_keys=TrustedKeys.of(scorer.public_raw))
    assert page.count('<tr class="reproduced">') == 2

    # as files, through the command
    (results / "gap.json").write_text(json.dumps(sign_record(gap, scorer)))
    write_result(results / "squared.json", squared, scorer)
    write_result(results / "ordinary.json", ordinary, scorer)
    assert cli(["leaderboard", "--results", str(results), "--out", str(results.parent / "site"),
                "--trusted-keys", str(board[1])]) == 0
    out = capsys.readouterr().out
    assert "rendered 2 verified result(s)" in out and "skipped gap.json: an integer with 400 digits" in out


def test_a_result_that_fails_to_render_is_left_out_with_a_note(board, scorer, monkeypatch):
    results, _ = board
    write_result(results / "a.json", record(), scorer)
    write_result(results / "b.json", record(submission={**record()["submission"], "name": "Breaks the row"}), scorer)
    real = render._html_row

    def fragile(e, rank, refs):
        if e.name == "Breaks the row":
            raise OverflowError("as a row that cannot be drawn")
        return real(e, rank, refs)

    monkeypatch.setattr(render, "_html_row", fragile)
    _, page, n, _ = render.write_leaderboard(results, results.parent / "site", trusted_keys=board[1])
    text = page.read_text("utf-8")
    assert n == 2 and text.count('<tr class="reproduced">') == 1
    assert "b.json: could not be rendered (OverflowError)" in text


# ------------------------------------------------------------------------------------------------
# the commands a maintainer uses


def test_keys_prints_the_line_to_trust_and_verify_result_checks_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "mine.pem"))
    assert cli(["keys"]) == 0
    captured = capsys.readouterr()
    line = captured.out.strip()
    assert line.startswith("ed25519 ") and len(line.splitlines()) == 1 and "created in" in captured.err
    mine = load_signing_key()
    assert line == mine.public_line()
    keys = tmp_path / "trusted"
    keys.mkdir()
    (keys / "me.pub").write_text(line + "\n")
    good, forged = tmp_path / "good.json", tmp_path / "forged.json"
    write_result(good, record(), mine)
    data = json.loads(good.read_text())
    data["summary"]["final_test_acc"].update(mean=0.99, values=[0.99, 0.99])
    forged.write_text(json.dumps(data))
    assert cli(["verify-result", str(good), "--trusted-keys", str(keys)]) == 0
    out = capsys.readouterr().out
    assert f"verified: {good}: signed by trusted key {mine.key_id} (me.pub)" in out and "sandbox bubblewrap" in out
    assert cli(["verify-result", str(good), str(forged), "--trusted-keys", str(keys)]) == 1
    out = capsys.readouterr().out
    assert f"NOT verified: {forged}: bad signature" in out and f"verified: {good}" in out
    dup = tmp_path / "dup.json"
    dup.write_text(good.read_text().replace('"format"', '"format": "x",\n  "format"', 1))
    assert cli(["verify-result", str(dup), "--trusted-keys", str(keys)]) == 1
    assert "duplicate key 'format'" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# the board imports no torch


def test_rendering_the_board_imports_no_torch_and_no_trainer(board, scorer, tmp_path):
    results, _ = board
    write_result(results / "honest.json", record(), scorer)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "cifar10s.cli", "leaderboard", "--results",
                          str(results), "--out", str(tmp_path / "site"), "--trusted-keys", str(board[1])],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "rendered 1 verified result(s)" in run.stdout
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "cifar10s.leaderboard.board.render" in imported  # the import log is the board's
    assert not {m for m in imported if m == "torch" or m.startswith(("torch.", "torchvision"))}
    assert not {m for m in imported if m.startswith(("cifar10s.training", "cifar10s.leaderboard.scoring"))}
    code = ("import sys; from cifar10s.cli.main import main; "
            f"main(['leaderboard', '--results', {str(results)!r}, '--out', {str(tmp_path / 'site2')!r}, "
            f"'--trusted-keys', {str(board[1])!r}]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().splitlines()[-1] == "[]", run.stdout + run.stderr


def test_the_schema_module_is_the_one_both_sides_use():
    from cifar10s.leaderboard import scoring
    from cifar10s.leaderboard.board import results

    assert scoring.write_result is result_file.write_result and scoring.ResultRecord is result_file.ResultRecord
    assert results.read_result is result_file.read_result and results.typed_record is result_file.typed_record
    # one schema: the field checks are generated from ResultRecord's types, nested records included
    assert not hasattr(result_file, "FIELD_TYPES")
    typed = result_file.typed_record(record())
    assert isinstance(typed.dataset, result_schema.DatasetRecord) and isinstance(typed.summary, result_schema.Summary)
    assert isinstance(typed.per_seed[0], result_schema.SeedRecord)
    assert isinstance(typed.per_seed[0].records[0], result_schema.EpochRecord) and typed.per_seed[0].records[0].epoch == 1
    for path, value, message in (
            (("dataset", "num_train"), "10000", "dataset.num_train must be an integer, got a string"),
            (("per_seed", 0, "records", 3, "epoch"), 4.0, "per_seed[0].records[3].epoch must be an integer, got a number"),
            (("per_seed", 0, "records", 3, "train_loss"), "2.3", "per_seed[0].records[3].train_loss must be a number"),
            (("summary", "final_test_acc"), [0.5], "summary.final_test_acc must be an object, got a list"),
            (("dataset", "source_content_fingerprint"), {"train": "ab"}, "dataset.source_content_fingerprint.test "
                                                                         "must be a string, got nothing")):
        bad = record()
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(MalformedResult, match=re.escape(message)):
            result_file.validate_result(bad)
