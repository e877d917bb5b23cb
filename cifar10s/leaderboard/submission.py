"""Leaderboard submissions: the folder format, validation, and the hooks a submission can expose.

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

Hooks of an ``entry`` file (see docs/leaderboard.md):

``build_model(num_classes) -> torch.nn.Module``  (required)
    The model. It gets float images in [0, 1], shape ``(B, 3, 32, 32)``, and returns logits
    ``(B, num_classes)``. The harness seeds torch before calling it.
``training_method = "standard"``  (optional module attribute)
    A name from :data:`cifar10s.training.presets.METHODS`. It is the same as ``"method"`` in the
    JSON; if both are given they must agree.
``preprocess(images, labels) -> images``  (optional)
    A one-off transform of the *training* set (uint8 tensor ``(N, 32, 32, 3)`` and int64 labels
    ``(N,)``, both copies). It must return uint8 images of the same shape. The test set is
    never preprocessed.
``make_optimizer(model, config) -> torch.optim.Optimizer``  (optional)
    Replaces the preset's optimiser. The learning-rate schedule still scales the optimiser's lr
    per epoch.
``train_step(model, x, y, optimizer, *, epoch, step, generator) -> loss``  (optional)
    Replaces the training step. ``x`` is an augmented float batch ``(B, 3, 32, 32)`` in [0, 1],
    ``y`` float targets ``(B, num_classes)`` (one-hot, or mixed by Mixup). The hook does its own
    forward, backward and ``optimizer.step()``. It returns the loss, or None.

With ``make_optimizer`` or ``train_step`` the harness runs its own small loop
(:mod:`.scoring`). It cannot be combined with adversarial methods; do adversarial training
inside ``train_step`` instead. Otherwise the model is trained by
:func:`cifar10s.training.trainer.train`. In both cases the harness owns the data. Hooks never
see the test set.

It is one module (about 500 lines) because the submission format, its validation and the
hook loading describe one contract with submitters.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch
from torch import nn

__all__ = [
    "HOOK_NAMES",
    "Hooks",
    "SUBMISSION_FILE",
    "Submission",
    "SubmissionError",
    "load_submission",
    "validate_submission",
]

SUBMISSION_FILE = "submission.json"
REQUIRED_KEYS = ("name", "authors", "link")
OPTIONAL_KEYS = ("description", "model", "model_kwargs", "method", "defense", "defense_kwargs", "entry", "overrides")
ALLOWED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
HOOK_NAMES = ("build_model", "training_method", "preprocess", "make_optimizer", "train_step")

#: TrainConfig fields a submission may change through ``overrides`` (the recipe, not the protocol)
OVERRIDABLE = frozenset({
    "optimizer", "lr", "momentum", "nesterov", "betas", "weight_decay", "schedule", "milestones",
    "gamma", "eta_min", "warmup_epochs", "batch_size", "drop_last",
})
_MAX_NAME = 120
_URL = re.compile(r"^https?://[^\s<>\"']+$")


class SubmissionError(ValueError):
    """A submission folder is malformed; the message lists every problem found."""

    def __init__(self, folder: str | Path, problems: list[str] | str) -> None:
        self.folder = Path(folder)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid submission {self.folder}:\n{lines}")


@dataclass(frozen=True)
class Hooks:
    """The callables found in a submission's entry file."""

    module: ModuleType
    build_model: Callable[..., nn.Module]
    training_method: str | None = None
    preprocess: Callable[..., Any] | None = None
    make_optimizer: Callable[..., torch.optim.Optimizer] | None = None
    train_step: Callable[..., Any] | None = None

    @property
    def custom_loop(self) -> bool:
        """True when the harness must run its own loop (custom optimiser or training step)."""
        return self.make_optimizer is not None or self.train_step is not None


@dataclass(frozen=True)
class Submission:
    folder: Path
    name: str
    authors: tuple[str, ...]
    link: str
    method: str
    description: str = ""
    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    defense: str | None = None
    defense_kwargs: dict[str, Any] = field(default_factory=dict)
    entry: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    hooks: Hooks | None = None
    #: sha256 of every file in the folder (relative POSIX path -> hex digest)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return _slug(self.folder.name) or _slug(self.name) or "submission"

    @property
    def digest(self) -> str:
        """sha256 over the sorted (path, sha256) list: identifies the exact code that was scored."""
        h = hashlib.sha256()
        for path, sha in sorted(self.files.items()):
            h.update(f"{path}\0{sha}\n".encode())
        return h.hexdigest()

    @property
    def custom_loop(self) -> bool:
        return self.hooks is not None and self.hooks.custom_loop

    def build_model(self, num_classes: int = 10) -> nn.Module:
        """Instantiate the submission's model (seed torch first for reproducible weights)."""
        if self.hooks is not None:
            model = self.hooks.build_model(num_classes)
            if not isinstance(model, nn.Module):
                raise SubmissionError(self.folder, f"{self.entry}: build_model({num_classes}) returned "
                                      f"{type(model).__name__}, not a torch.nn.Module")
            return model
        from cifar10s.models import build_model

        assert self.model is not None
        return build_model(self.model, num_classes=num_classes, **self.model_kwargs)

    def describe(self) -> dict[str, Any]:
        """The submission part of a result record."""
        return {
            "name": self.name,
            "slug": self.slug,
            "authors": list(self.authors),
            "link": self.link,
            "description": self.description,
            "model": self.model,
            "model_kwargs": dict(self.model_kwargs),
            "entry": self.entry,
            "method": self.method,
            "defense": self.defense,
            "defense_kwargs": dict(self.defense_kwargs),
            "overrides": dict(self.overrides),
            "hooks": sorted(n for n in HOOK_NAMES if self.hooks is not None and getattr(self.hooks, n) is not None),
            "custom_loop": self.custom_loop,
            "files": dict(self.files),
            "sha256": self.digest,
        }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hash_files(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------------------------------------
# metadata


def _read_json(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise SubmissionError(folder, "not a folder (a submission is a folder containing submission.json)")
    path = folder / SUBMISSION_FILE
    if not path.is_file():
        raise SubmissionError(folder, f"no {SUBMISSION_FILE} in the folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SubmissionError(folder, f"{SUBMISSION_FILE} is not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise SubmissionError(folder, f"{SUBMISSION_FILE} is not valid JSON: {exc.msg} at line {exc.lineno} "
                                      f"column {exc.colno}") from None
    if not isinstance(data, dict):
        raise SubmissionError(folder, f"{SUBMISSION_FILE} must hold a JSON object, got {type(data).__name__}")
    return data


def _check_metadata(folder: Path, data: dict[str, Any]) -> list[str]:
    from cifar10s.training.defenses import DEFENSES, build_defense
    from cifar10s.training.presets import METHODS

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
        not isinstance(authors, list) or not authors or not all(isinstance(a, str) and a.strip() for a in authors)
    ):
        problems.append("'authors' must be a non-empty list of names (strings)")
    link = data.get("link")
    if "link" in data and (not isinstance(link, str) or not _URL.match(link)):
        problems.append("'link' must be an http(s) URL (paper, code or report)")
    if "description" in data and not isinstance(data["description"], str):
        problems.append("'description' must be a string")

    model, entry = data.get("model"), data.get("entry")
    if model is not None and entry is not None:
        problems.append("give either 'model' (a registered model) or 'entry' (your own Python file), not both")
    elif model is None and entry is None:
        problems.append("missing 'model' (a registered model name) or 'entry' (a Python file exposing build_model)")
    if model is not None:
        problems.extend(_check_model_name(model))
        if "method" not in data:
            problems.append("'method' is required with a registered 'model' "
                            f"(one of {', '.join(METHODS)})")
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

    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict):
        problems.append("'overrides' must be a JSON object of training settings")
    else:
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


# ------------------------------------------------------------------------------------------------
# hooks


def _import_entry(folder: Path, entry: str, digest: str) -> ModuleType:
    path = (folder / entry).resolve()
    mod_name = f"cifar10s_submission_{_slug(folder.name).replace('-', '_') or 'x'}_{digest[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SubmissionError(folder, f"cannot import {entry}")
    module = importlib.util.module_from_spec(spec)
    # the entry may import helper modules placed next to it
    sys.path.insert(0, str(path.parent))
    sys.modules[mod_name] = module
    write_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave no __pycache__ in the submission folder
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - user code: report anything as a submission error
        sys.modules.pop(mod_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SubmissionError(folder, f"importing {entry} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.dont_write_bytecode = write_bytecode
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    return module


def _signature_problem(fn: Any, hook: str, *args: Any, **kwargs: Any) -> str | None:
    if not callable(fn):
        return f"{hook} must be a function, got {type(fn).__name__}"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins / C callables: cannot check, accept
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        return f"{hook}{sig} has the wrong signature ({exc})"
    return None


_HOOK_SIGNATURES: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "build_model": ("build_model(num_classes)", (10,), {}),
    "preprocess": ("preprocess(images, labels)", (None, None), {}),
    "make_optimizer": ("make_optimizer(model, config)", (None, None), {}),
    "train_step": ("train_step(model, x, y, optimizer, *, epoch, step, generator)", (None, None, None, None),
                   {"epoch": 0, "step": 0, "generator": None}),
}


def _load_hooks(folder: Path, entry: str, json_method: str | None, digest: str) -> tuple[Hooks, list[str]]:
    from cifar10s.training.presets import METHODS

    module = _import_entry(folder, entry, digest)
    problems: list[str] = []
    found: dict[str, Any] = {}
    if not hasattr(module, "build_model"):
        near = _suggest("build_model", [n for n in vars(module) if not n.startswith("_")])
        problems.append(f"{entry} defines no build_model(num_classes) function{near}")
    for hook, (expected, args, kwargs) in _HOOK_SIGNATURES.items():
        fn = getattr(module, hook, None)
        if fn is None:
            continue
        problem = _signature_problem(fn, hook, *args, **kwargs)
        if problem:
            problems.append(f"{entry}: {problem}; expected {expected}")
        else:
            found[hook] = fn
    method = getattr(module, "training_method", None)
    if method is not None:
        if not isinstance(method, str) or method.strip().lower() not in METHODS:
            problems.append(f"{entry}: training_method {method!r} is not one of {', '.join(METHODS)}")
            method = None
        elif json_method is not None and json_method.strip().lower() != method.strip().lower():
            problems.append(f"{entry}: training_method {method!r} disagrees with 'method' {json_method!r} "
                            f"in {SUBMISSION_FILE}")
    if "build_model" not in found:
        return Hooks(module, build_model=lambda n: None), problems  # type: ignore[arg-type,return-value]
    hooks = Hooks(
        module=module, build_model=found["build_model"],
        training_method=method.strip().lower() if isinstance(method, str) else None,
        preprocess=found.get("preprocess"), make_optimizer=found.get("make_optimizer"),
        train_step=found.get("train_step"),
    )
    return hooks, problems


def _check_model(sub: Submission) -> list[str]:
    """Build the model once on CPU and run a dummy batch through it."""
    where = sub.entry or f"model {sub.model!r}"
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = sub.build_model(10)
    except SubmissionError as exc:
        return exc.problems
    except Exception as exc:  # noqa: BLE001 - user code
        return [f"{where}: building the model failed: {type(exc).__name__}: {exc}"]
    if not any(True for _ in model.parameters()):
        return [f"{where}: the model has no parameters"]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, 3, 32, 32))
    except Exception as exc:  # noqa: BLE001 - user code
        return [f"{where}: the model fails on a (2, 3, 32, 32) float batch: {type(exc).__name__}: {exc}"]
    finally:
        model.train(was)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 10):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return [f"{where}: the model must return logits of shape (batch, num_classes) = (2, 10), got {shape}"]
    return []


def load_submission(folder: str | Path, *, check_model: bool = True) -> Submission:
    """Read, validate and (for ``entry`` submissions) import a submission folder.

    Raises :class:`SubmissionError` listing every problem. With ``check_model`` the model is also
    built once and run on a dummy batch. Importing an entry file runs its code. Only load
    submissions you are prepared to run.
    """
    folder = Path(folder).expanduser()
    data = _read_json(folder)
    problems = _check_metadata(folder, data)
    if problems:
        raise SubmissionError(folder, problems)
    files = _hash_files(folder)
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()
    hooks = None
    json_method = data.get("method")
    if data.get("entry") is not None:
        hooks, problems = _load_hooks(folder, data["entry"], json_method, digest)
        if problems:
            raise SubmissionError(folder, problems)
    method = (json_method or (hooks.training_method if hooks else None) or "standard").strip().lower()
    if hooks is not None and hooks.custom_loop:
        from cifar10s.training.presets import METHODS

        if METHODS[method]["adversarial"] is not None:
            raise SubmissionError(folder, f"method {method!r} uses adversarial training, which the harness "
                                          "cannot combine with make_optimizer/train_step; do the attack "
                                          "inside train_step and declare a non-adversarial method")
    sub = Submission(
        folder=folder,
        name=data["name"].strip(),
        authors=tuple(a.strip() for a in data["authors"]),
        link=data["link"],
        method=method,
        description=data.get("description", ""),
        model=data["model"].strip().lower() if data.get("model") is not None else None,
        model_kwargs=dict(data.get("model_kwargs", {})),
        defense=data["defense"].strip().lower() if data.get("defense") is not None else None,
        defense_kwargs=dict(data.get("defense_kwargs", {})),
        entry=data.get("entry"),
        overrides=dict(data.get("overrides", {})),
        hooks=hooks,
        files=files,
    )
    if check_model:
        problems = _check_model(sub)
        if problems:
            raise SubmissionError(folder, problems)
    return sub


def validate_submission(folder: str | Path, *, check_model: bool = True) -> Submission:
    """Alias of :func:`load_submission` (validation is loading without training)."""
    return load_submission(folder, check_model=check_model)
