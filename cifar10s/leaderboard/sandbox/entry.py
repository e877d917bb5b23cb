"""Importing a submission's entry file and finding its hooks. Runs only in a child process.

Hooks of an ``entry`` file (see docs/leaderboard.md):

``build_model(num_classes) -> torch.nn.Module``  (required)
    The model. It gets float images in [0, 1], shape ``(B, 3, 32, 32)``, and returns logits
    ``(B, num_classes)``. The harness seeds torch before calling it.
``training_method = "standard"``  (optional module attribute)
    A name from :data:`cifar10s.training.presets.METHODS`. It is the same as ``"method"`` in the
    JSON; if both are given they must agree.
``preprocess(images, labels) -> images``  (optional)
    A one-off transform of the *training* set (uint8 tensor ``(N, 32, 32, 3)`` and int64 labels
    ``(N,)``, both copies). It must return uint8 images of the same shape.
``make_optimizer(model, config) -> torch.optim.Optimizer``  (optional)
    Replaces the preset's optimiser; the learning-rate schedule still scales its lr per epoch.
``train_step(model, x, y, optimizer, *, epoch, step, generator) -> loss``  (optional)
    Replaces the training step on an augmented float batch with float (one-hot or mixed) targets.

The entry and any helper module beside it are compiled from their ``.py`` source: no bytecode
cache is read (a ``__pycache__`` planted beside a harmless file cannot swap in other code) and
none is written. The folder itself is a private copy of the files whose sha256 the result records.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch
from torch import nn
from ...errors import Cifar10sError

__all__ = ["EntryError", "Hooks", "build_submission_model", "check_model", "import_entry", "load_hooks"]

ENTRY_MODULE = "cifar10s_submission"


class EntryError(Cifar10sError):
    """The entry file could not be imported or its hooks are malformed; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Hooks:
    """The callables found in a submission's entry file (a :class:`~cifar10s.training.config.TrainingHooks`)."""

    module: ModuleType
    build_model: Callable[..., nn.Module]
    training_method: Any = None
    preprocess: Callable[..., Any] | None = None
    make_optimizer: Callable[..., torch.optim.Optimizer] | None = None
    train_step: Callable[..., Any] | None = None

    def names(self) -> list[str]:
        found = ["build_model"] + [n for n in ("preprocess", "make_optimizer", "train_step") if getattr(self, n)]
        return found + (["training_method"] if self.training_method is not None else [])


class SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """A source loader that compiles the ``.py`` file every time and never reads a bytecode cache."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


def _source_only_hook(folder: Path) -> Callable[[str], Any]:
    """A ``sys.path_hooks`` entry: inside ``folder``, only ``.py`` source can be imported."""
    folder = folder.resolve()

    def hook(path: str) -> importlib.machinery.FileFinder:
        try:
            inside = Path(path).resolve().is_relative_to(folder)
        except (OSError, ValueError):
            inside = False
        if not inside:
            raise ImportError("not the submission folder")
        return importlib.machinery.FileFinder(path, (SourceOnlyLoader, importlib.machinery.SOURCE_SUFFIXES))

    return hook


def import_entry(folder: Path, entry: str) -> ModuleType:
    """Import ``folder/entry`` from source; helper modules beside it are importable the same way."""
    path = (folder / entry).resolve()
    sys.dont_write_bytecode = True
    sys.path_hooks.insert(0, _source_only_hook(path.parent))
    sys.path.insert(0, str(path.parent))
    sys.path_importer_cache.clear()
    loader = SourceOnlyLoader(ENTRY_MODULE, str(path))
    spec = importlib.util.spec_from_file_location(ENTRY_MODULE, path, loader=loader)
    if spec is None:
        raise EntryError([f"cannot import {entry}"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[ENTRY_MODULE] = module
    try:
        loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - submission code: report anything as a submission problem
        sys.modules.pop(ENTRY_MODULE, None)
        raise EntryError([f"importing {entry} failed: {type(exc).__name__}: {exc}"]) from exc
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


def load_hooks(folder: Path, entry: str) -> Hooks:
    """Import the entry and collect its hooks; raises :class:`EntryError` listing every problem."""
    import difflib

    module = import_entry(folder, entry)
    problems: list[str] = []
    found: dict[str, Any] = {}
    if not hasattr(module, "build_model"):
        public = [n for n in vars(module) if not n.startswith("_")]
        close = difflib.get_close_matches("build_model", public, n=1)
        near = f" (did you mean {close[0]!r}?)" if close else ""
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
    if problems:
        raise EntryError(problems)
    method = getattr(module, "training_method", None)
    return Hooks(module=module, build_model=found["build_model"],
                 training_method=method if isinstance(method, (str, type(None))) else repr(method),
                 preprocess=found.get("preprocess"), make_optimizer=found.get("make_optimizer"),
                 train_step=found.get("train_step"))


def build_submission_model(spec: dict[str, Any], hooks: Hooks | None, num_classes: int) -> nn.Module:
    """The submission's model: its ``build_model`` hook, or a registered model with ``model_kwargs``."""
    where = spec.get("entry") or f"model {spec.get('model')!r}"
    if hooks is not None:
        try:
            model = hooks.build_model(num_classes)
        except Exception as exc:  # noqa: BLE001 - submission code
            raise EntryError([f"{where}: building the model failed: {type(exc).__name__}: {exc}"]) from exc
        if not isinstance(model, nn.Module):
            raise EntryError([f"{where}: build_model({num_classes}) returned {type(model).__name__}, "
                              "not a torch.nn.Module"])
        return model
    from cifar10s.models import build_model

    try:
        return build_model(spec["model"], num_classes=num_classes, **spec.get("model_kwargs", {}))
    except (TypeError, ValueError) as exc:
        raise EntryError([f"{where}: building the model failed: {type(exc).__name__}: {exc}"]) from exc


def check_model(spec: dict[str, Any], hooks: Hooks | None) -> int:
    """Build the model once on the CPU and run a dummy batch through it; returns the parameter count."""
    where = spec.get("entry") or f"model {spec.get('model')!r}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_submission_model(spec, hooks, 10)
    n_params = sum(p.numel() for p in model.parameters())
    if not n_params:
        raise EntryError([f"{where}: the model has no parameters"])
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, 3, 32, 32))
    except Exception as exc:  # noqa: BLE001 - submission code
        raise EntryError([f"{where}: the model fails on a (2, 3, 32, 32) float batch: "
                          f"{type(exc).__name__}: {exc}"]) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 10):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise EntryError([f"{where}: the model must return logits of shape (batch, num_classes) = (2, 10), "
                          f"got {shape}"])
    return int(n_params)
