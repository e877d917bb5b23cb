"""Leaderboard submissions: the folder format and its checks, done without running submission code.

A submission is a folder with a ``submission.json``::

    {"name": "...", "authors": ["..."], "link": "https://...",
     "model": "resnet18", "method": "randaugment"}              # a registered model + method
    {"name": "...", "authors": ["..."], "link": "https://...",
     "entry": "model.py"}                                      # or your own code

Optional keys: ``description``, ``method`` (for ``entry`` too), ``defense`` and
``defense_kwargs`` (a training-set defense from :mod:`cifar10s.training.defenses`),
``model_kwargs`` (for a registered ``model``), and ``overrides`` (training settings to change
from the preset: optimiser, lr, schedule, batch size, ...). Every change shows up in the result's
``preset_diff``.

This module runs in the process that scores, so it never imports an entry file. It reads
``submission.json``, hashes every file of the folder (dotfiles and ``__pycache__`` included) and
refuses what would let code run that the hash does not describe: compiled Python, native
libraries, executables and symlinks. Importing the entry and checking its hooks happens in a
child process (:mod:`cifar10s.leaderboard.sandbox.entry`, run by :func:`inspect_submission`); the hook API is documented
there and in docs/leaderboard.md.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

from ... import strict_json
from .record import Submission, SubmissionError

__all__ = ["SUBMISSION_FILE", "load_submission", "resolve_method"]

SUBMISSION_FILE = "submission.json"
REQUIRED_KEYS = ("name", "authors", "link")
OPTIONAL_KEYS = ("description", "model", "model_kwargs", "method", "defense", "defense_kwargs", "entry", "overrides")
ALLOWED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS

#: TrainConfig fields a submission may change through ``overrides`` (the recipe, not the protocol)
OVERRIDABLE = frozenset({
    "optimizer", "lr", "momentum", "nesterov", "betas", "weight_decay", "schedule", "milestones",
    "gamma", "eta_min", "warmup_epochs", "batch_size", "drop_last",
})
#: file suffixes that hold compiled or native code: the hash of such a file says nothing about what it runs
COMPILED_SUFFIXES = frozenset({".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib", ".exe", ".o", ".a"})
#: leading bytes of native executables and libraries (ELF, Mach-O, fat Mach-O, PE/COFF)
_BINARY_MAGIC = (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
                 b"\xca\xfe\xba\xbe", b"MZ")
_MAX_NAME = 120
_MAX_AUTHORS = 50
_MAX_LINK = 500
_MAX_DESCRIPTION = 2000
_MAX_JSON_BYTES = 64 * 1024
_URL = re.compile(r"^https?://[^\s<>\"']+$")


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ------------------------------------------------------------------------------------------------
# files


def _file_problem(path: Path, rel: str, st: os.stat_result) -> str | None:
    """Why a file may not be part of a submission (None: it may)."""
    if stat.S_ISLNK(st.st_mode):
        return f"{rel} is a symbolic link; copy the file into the folder instead"
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{rel} is not a regular file"
    if st.st_nlink != 1:  # a hard link shares its bytes with a file elsewhere (the test labels, say)
        return (f"{rel} has {st.st_nlink} hard links; a submission file must be its own copy "
                f"(cp {rel} {rel}.new && mv {rel}.new {rel})")
    parts = rel.split("/")
    if "__pycache__" in parts[:-1] or path.suffix.lower() in COMPILED_SUFFIXES:
        return (f"{rel} is compiled code; submissions are imported from .py source only. Delete it "
                "(and any __pycache__ folder)")
    if st.st_mode & 0o111:
        return f"{rel} has the executable bit set; the harness runs no files directly (chmod -x {rel})"
    with open(path, "rb") as f:
        head = f.read(4)
    if any(head.startswith(m) for m in _BINARY_MAGIC):
        return f"{rel} is a native executable or library; submissions are Python source and data only"
    return None


def hash_files(folder: Path) -> tuple[dict[str, str], list[str]]:
    """sha256 of every file under ``folder`` (nothing skipped), and the problems found on the way."""
    files: dict[str, str] = {}
    problems: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            problem = _file_problem(path, rel, path.lstat())
            if problem:
                problems.append(problem)
            elif name in filenames:
                files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return dict(sorted(files.items())), problems


# ------------------------------------------------------------------------------------------------
# metadata


def _read_json(folder: Path) -> dict[str, Any]:
    if folder.is_symlink() or not folder.is_dir():
        raise SubmissionError(folder, "not a folder (a submission is a folder containing submission.json)")
    path = folder / SUBMISSION_FILE
    if not path.is_file():
        raise SubmissionError(folder, f"no {SUBMISSION_FILE} in the folder")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise SubmissionError(folder, f"{SUBMISSION_FILE} is larger than {_MAX_JSON_BYTES} bytes")
    try:  # strict: two "entry" keys would import a file the reviewer did not read
        data = strict_json.read_file(path, max_bytes=_MAX_JSON_BYTES)
    except strict_json.StrictJSONError as exc:
        raise SubmissionError(folder, f"{SUBMISSION_FILE} is not valid JSON: {str(exc).removeprefix('invalid JSON ')}"
                              ) from None
    if not isinstance(data, dict):
        raise SubmissionError(folder, f"{SUBMISSION_FILE} must hold a JSON object, got {type(data).__name__}")
    return data


def _check_people(data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for key in sorted(set(data) - set(ALLOWED_KEYS)):
        problems.append(f"unknown key {key!r}{_suggest(key, ALLOWED_KEYS)}; allowed keys: {', '.join(ALLOWED_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in data:
            problems.append(f"missing required key {key!r}")
    name = data.get("name")
    if "name" in data and (not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME):
        problems.append(f"'name' must be a non-empty string of at most {_MAX_NAME} characters")
    authors = data.get("authors")
    if "authors" in data and (
        not isinstance(authors, list) or not authors or len(authors) > _MAX_AUTHORS
        or not all(isinstance(a, str) and a.strip() and len(a) <= _MAX_NAME for a in authors)
    ):
        problems.append(f"'authors' must be a list of 1 to {_MAX_AUTHORS} names (strings of at most {_MAX_NAME} "
                        "characters)")
    link = data.get("link")
    if "link" in data and (not isinstance(link, str) or len(link) > _MAX_LINK or not _URL.match(link)):
        problems.append(f"'link' must be an http(s) URL of at most {_MAX_LINK} characters (paper, code or report)")
    if "description" in data and (not isinstance(data["description"], str)
                                  or len(data["description"]) > _MAX_DESCRIPTION):
        problems.append(f"'description' must be a string of at most {_MAX_DESCRIPTION} characters")
    return problems


def _check_training(folder: Path, data: dict[str, Any]) -> list[str]:
    from cifar10s.training.defenses import DEFENSES, build_defense
    from cifar10s.training.presets import METHODS

    problems: list[str] = []
    model, entry = data.get("model"), data.get("entry")
    if model is not None and entry is not None:
        problems.append("give either 'model' (a registered model) or 'entry' (your own Python file), not both")
    elif model is None and entry is None:
        problems.append("missing 'model' (a registered model name) or 'entry' (a Python file exposing build_model)")
    if model is not None:
        problems.extend(_check_model_name(model))
        if "method" not in data:
            problems.append(f"'method' is required with a registered 'model' (one of {', '.join(METHODS)})")
    if "model_kwargs" in data:
        if entry is not None:
            problems.append("'model_kwargs' only applies to a registered 'model'")
        elif not isinstance(data["model_kwargs"], dict):
            problems.append("'model_kwargs' must be a JSON object")
    if entry is not None:
        problems.extend(_check_entry_path(folder, entry))

    method = data.get("method")
    if method is not None and (not isinstance(method, str) or method.strip().lower() not in METHODS):
        problems.append(f"unknown method {method!r}{_suggest(str(method), METHODS)}; valid: {', '.join(METHODS)}")

    defense = data.get("defense")
    kwargs = data.get("defense_kwargs", {})
    if "defense_kwargs" in data and not isinstance(kwargs, dict):
        problems.append("'defense_kwargs' must be a JSON object")
    elif defense is None and kwargs:
        problems.append("'defense_kwargs' given without 'defense'")
    elif defense is not None:
        if not isinstance(defense, str) or defense.strip().lower() not in DEFENSES:
            problems.append(f"unknown defense {defense!r}{_suggest(str(defense), DEFENSES)}; "
                            f"valid: {', '.join(DEFENSES)}")
        else:
            try:
                build_defense(defense, **kwargs)
            except (TypeError, ValueError) as exc:
                problems.append(f"defense {defense!r}: {exc}")
    problems.extend(_check_overrides(data.get("overrides", {}), model))
    return problems


def _check_overrides(overrides: Any, model: Any) -> list[str]:
    if not isinstance(overrides, dict):
        return ["'overrides' must be a JSON object of training settings"]
    problems = []
    bad = sorted(set(overrides) - OVERRIDABLE)
    for key in bad:
        problems.append(f"'overrides' cannot set {key!r}{_suggest(key, OVERRIDABLE)}; allowed: "
                        f"{', '.join(sorted(OVERRIDABLE))} (epochs, subsets, seeds, augmentation and "
                        "defense are set by the preset and the method)")
    if not bad and overrides:
        from cifar10s.training.presets import resolve_preset

        try:
            resolve_preset("paper", model if isinstance(model, str) else None, **overrides)
        except (TypeError, ValueError) as exc:
            problems.append(f"'overrides' are not valid training settings: {exc}")
    return problems


def _check_model_name(model: Any) -> list[str]:
    from cifar10s.models import MODELS, model_family

    if not isinstance(model, str):
        return ["'model' must be a registered model name (string)"]
    try:
        model_family(model)
    except ValueError as exc:
        return [f"{exc}{_suggest(model.strip().lower(), MODELS)}"]
    return []


def _check_entry_path(folder: Path, entry: Any) -> list[str]:
    if not isinstance(entry, str) or not entry.endswith(".py"):
        return ["'entry' must be the relative path of a .py file inside the submission folder"]
    p = Path(entry)
    if p.is_absolute() or ".." in p.parts:
        return [f"'entry' {entry!r} must be a relative path inside the submission folder"]
    if not (folder / p).is_file():
        return [f"entry file {entry!r} does not exist in the submission folder"]
    return []


def resolve_method(sub: Submission, training_method: str | None) -> tuple[str, list[str]]:
    """The Table 4 method a submission trains with, from the JSON and the entry's ``training_method``.

    Returns (method, problems): the two must agree when both are given, and a custom optimiser or
    step cannot be combined with an adversarial method.
    """
    from cifar10s.training.presets import METHODS

    problems: list[str] = []
    if training_method is not None:
        if not isinstance(training_method, str) or training_method.strip().lower() not in METHODS:
            problems.append(f"{sub.entry}: training_method {training_method!r} is not one of {', '.join(METHODS)}")
            training_method = None
        elif sub.json_method is not None and sub.json_method != training_method.strip().lower():
            problems.append(f"{sub.entry}: training_method {training_method!r} disagrees with 'method' "
                            f"{sub.json_method!r} in {SUBMISSION_FILE}")
    method = sub.json_method or (training_method.strip().lower() if training_method else None) or "standard"
    if sub.custom_loop and METHODS[method]["adversarial"] is not None:
        problems.append(f"method {method!r} uses adversarial training, which the harness cannot combine with "
                        "make_optimizer/train_step; do the attack inside train_step and declare a "
                        "non-adversarial method")
    return method, problems


def load_submission(folder: str | Path) -> Submission:
    """Read and check a submission folder without running any of its code.

    Raises :class:`SubmissionError` listing every problem: metadata, the entry path, and files
    that may not be part of a submission. The returned submission is not inspected yet
    (``hooks`` is None); :func:`validate_submission` also imports the entry in a child process.
    """
    folder = Path(folder).expanduser()
    data = _read_json(folder)
    problems = _check_people(data) + _check_training(folder, data)
    files, file_problems = hash_files(folder)
    problems += file_problems
    if problems:
        raise SubmissionError(folder, problems)
    json_method = data["method"].strip().lower() if data.get("method") is not None else None
    return Submission(
        folder=folder,
        name=data["name"].strip(),
        authors=tuple(a.strip() for a in data["authors"]),
        link=data["link"],
        method=json_method or "standard",
        description=data.get("description", ""),
        model=data["model"].strip().lower() if data.get("model") is not None else None,
        model_kwargs=dict(data.get("model_kwargs", {})),
        defense=data["defense"].strip().lower() if data.get("defense") is not None else None,
        defense_kwargs=dict(data.get("defense_kwargs", {})),
        entry=data.get("entry"),
        overrides=dict(data.get("overrides", {})),
        json_method=json_method,
        files=files,
    )
