"""A checked submission and the error that lists what is wrong with one.

The types every leaderboard module shares: :mod:`.loader` makes them (without running any
submission code), :mod:`cifar10s.leaderboard.sandbox.runner` hands a submission's files to a
child process, the scorer records :meth:`Submission.describe` in each result.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from ...errors import Cifar10sError

__all__ = ["CUSTOM_LOOP_HOOKS", "HOOK_NAMES", "Submission", "SubmissionError", "make_slug"]

HOOK_NAMES = ("build_model", "training_method", "preprocess", "make_optimizer", "train_step")
CUSTOM_LOOP_HOOKS = ("make_optimizer", "train_step")


class SubmissionError(Cifar10sError, ValueError):
    """A submission folder is malformed; the message lists every problem found."""

    def __init__(self, folder: str | Path, problems: list[str] | str) -> None:
        self.folder = Path(folder)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid submission {self.folder}:\n{lines}")


@dataclass(frozen=True)
class Submission:
    """A checked submission folder. ``hooks`` is None until a child process has imported the entry
    (:func:`.loader.inspect_submission`); then it names the hooks that were found."""

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
    #: the method given in submission.json (None: taken from the entry's training_method, else standard)
    json_method: str | None = None
    hooks: tuple[str, ...] | None = None
    #: sha256 of every file in the folder (relative POSIX path -> hex digest)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return make_slug(self.folder.name) or make_slug(self.name) or "submission"

    @property
    def digest(self) -> str:
        """sha256 over the sorted (path, sha256) list: identifies the exact code that was scored."""
        h = hashlib.sha256()
        for path, sha in sorted(self.files.items()):
            h.update(f"{path}\0{sha}\n".encode())
        return h.hexdigest()

    @property
    def inspected(self) -> bool:
        return self.hooks is not None

    @property
    def custom_loop(self) -> bool:
        """True when a hook replaces the optimiser or the training step."""
        return any(h in (self.hooks or ()) for h in CUSTOM_LOOP_HOOKS)

    def worker_spec(self) -> dict[str, Any]:
        """What a child process needs to build this submission's model (no paths: it gets a copy)."""
        return {"entry": self.entry, "model": self.model, "model_kwargs": dict(self.model_kwargs)}

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
            "hooks": sorted(self.hooks or ()),
            "custom_loop": self.custom_loop,
            "files": dict(self.files),
            "sha256": self.digest,
        }


def make_slug(text: str) -> str:
    """Lower-case letters, digits and dashes (for file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]
