"""Submission folders: metadata checks (no code runs), file rules, and validation of the entry in a
child process. Folders whose problems are in submission.json or the files are refused without
starting a child; entry problems come back from the child that imported the entry."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from leaderboard_kit import META, TINY_NET, write_submission

from cifar10s.cli.main import main as lb_main
from cifar10s.leaderboard import SubmissionError, load_submission, validate_submission

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "leaderboard" / "submissions"


def test_example_submissions_validate(capsys):
    subs = sorted(p for p in EXAMPLES.iterdir() if (p / "submission.json").is_file())
    assert len(subs) >= 2
    loaded = [load_submission(p) for p in subs]  # metadata and files only: nothing imported
    assert any(s.model is not None and s.entry is None for s in loaded)
    assert any(s.entry is not None for s in loaded)
    for s in loaded:
        assert s.files and len(s.digest) == 64 and s.hooks is None
    assert lb_main(["validate", *map(str, subs)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok: ") == len(subs)
    assert "entry model.py, method standard" in out  # the median-filter example's hooks were found in a child


# problems found in submission.json or the folder: no child process is started
_REG = {**META, "model": "lenet5", "method": "standard"}

METADATA_CASES = [
    # settings of the wrong type fail at validation, not later with a traceback
    ("lr-string", {**_REG, "overrides": {"lr": "fast"}}, {}, "training setting 'lr' must be float, got 'fast'"),
    ("lr-nan", '{"name": "t", "authors": ["a"], "link": "https://x.org", "model": "lenet5", "method": "standard", '
               '"overrides": {"lr": NaN}}', {}, "NaN is not a JSON value"),
    ("epochs-float", {**_REG, "overrides": {"lr": 0.05, "batch_size": 12.5}}, {},
     "training setting 'batch_size' must be int"),
    ("quality-string", {**_REG, "defense": "jpeg", "defense_kwargs": {"quality": "x"}}, {},
     "defense 'jpeg' keyword 'quality' must be int, got 'x'"),
    ("long-description", {**_REG, "description": "x" * 2001}, {}, "at most 2000 characters"),
    ("many-authors", {**_REG, "authors": ["a"] * 51}, {}, "list of 1 to 50 names"),
    ("long-link", {**_REG, "link": "https://x.org/" + "a" * 600}, {}, "at most 500 characters"),
    ("not-json", '{"name": "x", ', {}, "not valid JSON"),
    # two "entry" keys: a reviewer reads the first, Python's json would import the second
    ("duplicate-entry", '{"name": "t", "authors": ["a"], "link": "https://x.org", "entry": "model.py", '
                        '"entry": "other.py"}', {"model.py": TINY_NET, "other.py": TINY_NET},
     "duplicate key 'entry' in one object"),
    ("duplicate-nested", '{"name": "t", "authors": ["a"], "link": "https://x.org", "model": "lenet5", '
                         '"method": "standard", "overrides": {"lr": 0.05, "lr": 5.0}}', {}, "duplicate key 'lr'"),
    ("huge-int", '{"name": "t", "authors": ["a"], "link": "https://x.org", "model": "lenet5", "method": "standard", '
                 '"overrides": {"batch_size": ' + "1" * 400 + '}}', {}, "an integer with 400 digits"),
    ("not-object", "[1, 2]", {}, "must hold a JSON object"),
    ("no-file", None, {}, "no submission.json"),
    ("unknown-key", {**META, "model": "resnet18", "method": "standard", "modle": 1}, {},
     "unknown key 'modle' (did you mean 'model'?)"),
    ("missing-name", {"authors": ["a"], "link": "https://x.org", "model": "resnet18", "method": "standard"}, {},
     "missing required key 'name'"),
    ("missing-authors", {"name": "x", "link": "https://x.org", "model": "resnet18", "method": "standard"}, {},
     "missing required key 'authors'"),
    ("bad-authors", {**META, "authors": "me", "model": "resnet18", "method": "standard"}, {},
     "'authors' must be a list of 1 to 50 names"),
    ("bad-link", {**META, "link": "javascript:alert(1)", "model": "resnet18", "method": "standard"}, {},
     "'link' must be an http(s) URL"),
    ("neither", dict(META), {}, "missing 'model'"),
    ("both", {**META, "model": "resnet18", "method": "standard", "entry": "m.py"}, {"m.py": TINY_NET},
     "not both"),
    ("unknown-model", {**META, "model": "resnet19", "method": "standard"}, {}, "unknown model 'resnet19'"),
    ("model-without-method", {**META, "model": "resnet18"}, {}, "'method' is required"),
    ("unknown-method", {**META, "model": "resnet18", "method": "randaug"}, {},
     "unknown method 'randaug' (did you mean 'randaugment'?)"),
    ("unknown-defense", {**META, "model": "resnet18", "method": "standard", "defense": "blur"}, {},
     "unknown defense 'blur'"),
    ("bad-defense-kwargs", {**META, "model": "resnet18", "method": "standard", "defense": "jpeg",
                            "defense_kwargs": {"qualty": 10}}, {}, "defense 'jpeg'"),
    ("bad-override", {**META, "model": "resnet18", "method": "standard", "overrides": {"epochs": 1}}, {},
     "'overrides' cannot set 'epochs'"),
    ("entry-missing", {**META, "entry": "model.py"}, {}, "entry file 'model.py' does not exist"),
    ("entry-outside", {**META, "entry": "../model.py"}, {}, "must be a relative path inside"),
    ("entry-not-py", {**META, "entry": "model.txt"}, {"model.txt": TINY_NET}, "must be the relative path of a .py"),
]

# problems only the child that imports the entry can see
ENTRY_CASES = [
    ("import-error", {**META, "entry": "m.py"}, {"m.py": "import does_not_exist_xyz\n"},
     "importing m.py failed: ModuleNotFoundError"),
    ("hook-missing", {**META, "entry": "m.py"}, {"m.py": "def build_modle(num_classes):\n    pass\n"},
     "defines no build_model(num_classes) function (did you mean 'build_modle'?)"),
    ("hook-signature", {**META, "entry": "m.py"}, {"m.py": "def build_model(num_classes, width):\n    pass\n"},
     "build_model(num_classes, width) has the wrong signature"),
    ("train-step-signature", {**META, "entry": "m.py"},
     {"m.py": TINY_NET + "\ndef train_step(model, x):\n    pass\n"}, "train_step(model, x) has the wrong signature"),
    ("bad-training-method", {**META, "entry": "m.py"}, {"m.py": TINY_NET + "\ntraining_method = 'fancy'\n"},
     "training_method 'fancy' is not one of"),
    ("method-conflict", {**META, "entry": "m.py", "method": "mixup"},
     {"m.py": TINY_NET + "\ntraining_method = 'cutout'\n"}, "disagrees with 'method'"),
    ("custom-loop-with-at", {**META, "entry": "m.py", "method": "at"},
     {"m.py": TINY_NET + "\ndef make_optimizer(model, config):\n    pass\n"}, "uses adversarial training"),
    ("not-a-module", {**META, "entry": "m.py"}, {"m.py": "def build_model(num_classes):\n    return 42\n"},
     "returned int, not a torch.nn.Module"),
    ("wrong-output", {**META, "entry": "m.py"},
     {"m.py": "from torch import nn\ndef build_model(num_classes):\n"
              "    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 7))\n"}, "(2, 10), got (2, 7)"),
    ("build-raises", {**META, "entry": "m.py"},
     {"m.py": "def build_model(num_classes):\n    raise RuntimeError('boom')\n"}, "RuntimeError: boom"),
]


@pytest.mark.parametrize("case,meta,files,expected", METADATA_CASES, ids=[c[0] for c in METADATA_CASES])
def test_malformed_submissions_get_clear_errors(tmp_path, case, meta, files, expected, capsys):
    folder = write_submission(tmp_path / f"sub-{case}", meta, files)
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert expected in str(info.value), str(info.value)
    assert str(folder) in str(info.value)
    # the CLI reports the same message, on one line, with exit code 1
    assert lb_main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case,meta,files,expected", ENTRY_CASES, ids=[c[0] for c in ENTRY_CASES])
def test_entry_problems_come_back_from_the_child(tmp_path, case, meta, files, expected, capsys):
    folder = write_submission(tmp_path / f"sub-{case}", meta, files)
    load_submission(folder)  # nothing wrong that can be seen without running the code
    # one child per case: the CLI runs validate_submission and prints its SubmissionError on one line
    assert lb_main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert f"invalid submission {folder}" in err and len(err.strip().splitlines()) == 1


def test_validate_submission_raises_with_every_problem(tmp_path):
    folder = write_submission(tmp_path / "s", {**META, "entry": "m.py"},
                              {"m.py": "def build_model(num_classes, width):\n    pass\n"
                                       "def train_step(model, x):\n    pass\n"})
    with pytest.raises(SubmissionError) as info:
        validate_submission(folder)
    assert len(info.value.problems) == 2 and info.value.folder == folder


def test_all_problems_reported_at_once(tmp_path):
    folder = write_submission(tmp_path / "s", {"link": "ftp://x", "model": "nope", "method": "nope", "bogus": 1})
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert len(info.value.problems) >= 5


def test_hash_covers_every_file(tmp_path):
    folder = write_submission(tmp_path / "s", {**META, "entry": "m.py"},
                              {"m.py": TINY_NET, ".hidden.py": "x = 1\n", "pkg/helper.py": "y = 2\n"})
    sub = load_submission(folder)
    assert set(sub.files) == {"submission.json", "m.py", ".hidden.py", "pkg/helper.py"}
    before = sub.digest
    (folder / ".hidden.py").write_text("x = 2\n")
    assert load_submission(folder).digest != before  # a dotfile is part of what was scored


FILE_CASES = {
    "pyc": ("__pycache__/m.cpython-311.pyc", b"\x00" * 16, "is compiled code"),
    "so": ("fast.so", b"\x00" * 16, "is compiled code"),
    "elf": ("tool", b"\x7fELF" + b"\x00" * 12, "native executable or library"),
    "exec-bit": ("run.sh", b"#!/bin/sh\necho hi\n", "executable bit"),
    "symlink": ("link.py", None, "symbolic link"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_compiled_binary_and_linked_files_are_refused(tmp_path, case):
    name, content, expected = FILE_CASES[case]
    folder = write_submission(tmp_path / "s", {**META, "entry": "m.py"}, {"m.py": TINY_NET})
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        os.symlink(folder / "m.py", path)
    else:
        path.write_bytes(content)
        if case == "exec-bit":
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(SubmissionError, match=expected):
        load_submission(folder)
