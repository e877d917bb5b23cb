"""The copy of a submission a child imports: exactly the files that were hashed, checked again before it starts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..submission.record import Submission, SubmissionError
from .failures import WorkerFailed

__all__ = ["stage_files", "verify_staged"]


def stage_files(sub: Submission, dest: Path) -> Path:
    """Copy the exact files that were hashed into ``dest`` (what a child process imports).

    Each file is re-hashed as it is copied, so the code that runs is the code the result names.
    """
    for rel, sha in sub.files.items():
        raw = (sub.folder / rel).read_bytes()
        if hashlib.sha256(raw).hexdigest() != sha:
            raise SubmissionError(sub.folder, f"{rel} changed after the submission was checked; score it again")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
    return dest


def verify_staged(sub: Submission, dest: Path) -> None:
    """The staged copy holds exactly the submission's files, with their hashes (checked just
    before a child starts)."""
    found = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file() or p.is_symlink()}
    if set(found) != set(sub.files) or any(
            p.is_symlink() or hashlib.sha256(p.read_bytes()).hexdigest() != sub.files[rel] for rel, p in found.items()):
        raise WorkerFailed(f"the staged copy of {sub.folder} does not match the submission's hashes; score it again")
