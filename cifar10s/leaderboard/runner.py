"""Running submission code in a child process, and reading back only what it may return.

The scoring process holds the test labels, so it never imports submission code. Each task
(:mod:`.worker`: inspect, train one seed, predict) runs in ``python -I -B`` (isolated mode: no
environment variables of Python's, no user site, no current folder on the path; no bytecode
written) in a new session, in a fresh scratch folder that is its working directory and
``HOME``, with a minimal environment (no variable that names the data root) and a copy of
exactly the submission files that were hashed. The child's ``argv`` holds the package
location and ``job.json``, nothing else.

A child that dies, outlives its time limit (its whole process group is killed), exits without
its report or returns something malformed gives :class:`WorkerFailed` (or
:class:`~.submission.SubmissionError` when the child reports the submission at fault), never a
silent success. Arrays come back as ``.npy`` read with ``allow_pickle=False`` and checked for
shape, dtype and finiteness; weights as safetensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .record import Submission, SubmissionError

__all__ = [
    "DEFAULT_INSPECT_LIMIT_S",
    "DEFAULT_PREDICT_LIMIT_S",
    "DEFAULT_TRAIN_LIMIT_S",
    "WEIGHTS_NAME",
    "WorkerFailed",
    "WorkerRun",
    "epoch_logits_name",
    "read_logits",
    "stage_files",
]

DEFAULT_INSPECT_LIMIT_S = 600.0
DEFAULT_TRAIN_LIMIT_S = 72 * 3600.0
DEFAULT_PREDICT_LIMIT_S = 2 * 3600.0
WORKER_MODULE = "cifar10s.leaderboard.worker"
MAX_REPORT_BYTES = 16 << 20
#: what a training child leaves in its work folder (read back by :mod:`.seedruns`)
WEIGHTS_NAME = "model.safetensors"
EPOCH_LOGITS_DIR = "epoch-logits"
#: environment variables a child may inherit (devices, locale, the toolchain's search paths)
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH",
              "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
              "ROCR_VISIBLE_DEVICES")
_SUBMISSION_DIR = "submission"


class WorkerFailed(RuntimeError):
    """A child process died, hung, exited without its report, or returned malformed output."""


def epoch_logits_name(epoch: int) -> str:
    """The file, relative to the work folder, of the per-epoch logits after ``epoch`` (1-based)."""
    return f"{EPOCH_LOGITS_DIR}/epoch-{epoch:04d}.npy"


def _package_parent() -> str:
    return str(Path(__file__).resolve().parents[2])


def _bootstrap() -> str:
    """``-m cifar10s.leaderboard.worker`` for the package this process runs.

    Isolated mode leaves the current folder off ``sys.path``, so a plain ``-m`` could run another
    installed copy of the package; the child puts this one's folder first, then runs the module.
    """
    return (f"import runpy, sys; sys.path.insert(0, {_package_parent()!r}); "
            f"runpy.run_module({WORKER_MODULE!r}, run_name='__main__', alter_sys=True)")


def child_env(scratch: Path, forbidden: list[str], threads: int | None) -> dict[str, str]:
    """The child's whole environment: :data:`PASSED_ENV` minus anything naming a ``forbidden`` path."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env = {k: v for k, v in env.items() if not any(f and f in v for f in forbidden)}
    (scratch / "tmp").mkdir(exist_ok=True)
    env.update(HOME=str(scratch), TMPDIR=str(scratch / "tmp"))
    env.setdefault("PATH", os.defpath)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_unreaped(proc: subprocess.Popen[bytes], time_limit_s: float | None) -> bool:
    """Wait for the child to exit without reaping it (so its process-group id cannot be reused
    before the group is killed); False when the time limit passed first."""
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    delay = 0.01
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def _tail(path: Path, lines: int = 3, chars: int = 400) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    out = " | ".join(kept)
    return f"; last output: {out[-chars:]}" if out else ""


def read_logits(path: Path, n: int, num_classes: int, what: str) -> np.ndarray:
    """A child's logits: a plain float32 ``(n, num_classes)`` ``.npy`` of finite values."""
    limit = n * num_classes * 4 + 4096  # the array and a generous .npy header
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise WorkerFailed(f"{what}: the child process did not write {path.name}") from None
    if not path.is_file() or path.is_symlink() or st.st_size > limit:
        raise WorkerFailed(f"{what}: {path.name} is not a plain file of at most {limit} bytes")
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WorkerFailed(f"{what}: the child process did not write {path.name}") from None
    except (OSError, ValueError) as exc:
        raise WorkerFailed(f"{what}: {path.name} is not a plain .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (n, num_classes):
        got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise WorkerFailed(f"{what}: expected float32 logits of shape ({n}, {num_classes}), got {got}")
    if not np.isfinite(arr).all():
        raise WorkerFailed(f"{what}: the model produced non-finite logits (NaN or inf)")
    return arr


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


class WorkerRun:
    """One child task in its own scratch folder: put arrays in, :meth:`run`, read outputs, clean up.

    Use as a context manager; the scratch folder (with the copy of the submission and the data
    handed to the child) is removed on exit.
    """

    def __init__(self, sub: Submission, *, label: str, forbidden: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.sub, self.label = sub, label
        self.forbidden = [str(f) for f in (forbidden or []) if str(f)]
        self.threads = threads
        self.scratch = Path(tempfile.mkdtemp(prefix="cifar10s-worker-"))

    def __enter__(self) -> WorkerRun:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def path(self, name: str) -> Path:
        return self.scratch / name

    def put_array(self, name: str, array: np.ndarray) -> str:
        """Save ``array`` into the scratch folder for the child; returns the name to put in the job."""
        np.save(self.scratch / name, np.ascontiguousarray(array), allow_pickle=False)
        return name

    def run(self, task: str, job: dict[str, Any], *, time_limit_s: float | None,
            device: str | None = None, progress: bool = False) -> dict[str, Any]:
        """Run ``task`` and return its report (``ok`` true), or raise why not."""
        stage_files(self.sub, self.scratch / _SUBMISSION_DIR)
        nonce = secrets.token_hex(16)  # a report from this run, not one left over in the folder
        full = {**job, "task": task, "nonce": nonce, "report": "report.json", "device": device,
                "threads": self.threads, "progress": progress,
                "submission": {**self.sub.worker_spec(), "dir": _SUBMISSION_DIR}}
        (self.scratch / "job.json").write_text(json.dumps(full))
        log_path = self.scratch / "worker.log"
        cmd = [sys.executable, "-I", "-B", "-c", _bootstrap(), "job.json"]
        env = child_env(self.scratch, self.forbidden, self.threads)
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            out = None if progress else log
            proc = subprocess.Popen(cmd, cwd=self.scratch, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT if out is not None else None,
                                    start_new_session=True, close_fds=True)
            try:
                exited = _wait_unreaped(proc, time_limit_s)
            except BaseException:
                _kill_group(proc)
                proc.wait()
                raise
            _kill_group(proc)  # nothing it started outlives it (the child is not reaped yet: its id is still its own)
            rc = proc.wait()
        if not exited:
            raise WorkerFailed(f"{self.label}: still running after its time limit of {time_limit_s:g} s; "
                               f"its process group was killed{_tail(log_path)}")
        return self._report(rc, nonce, task, log_path, time.monotonic() - t0)

    def _report(self, rc: int, nonce: str, task: str, log_path: Path, seconds: float) -> dict[str, Any]:
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        path = self.scratch / "report.json"
        if not path.is_file() or path.is_symlink():
            hint = (" (did the submission end the process itself, e.g. os._exit or sys.exit?)" if rc == 0 else "")
            raise WorkerFailed(f"{self.label}: the child process {how} after {seconds:.1f} s without writing "
                               f"its report{hint}{_tail(log_path)}")
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise WorkerFailed(f"{self.label}: the child's report is larger than {MAX_REPORT_BYTES} bytes")
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise WorkerFailed(f"{self.label}: unreadable report ({exc})") from None
        if (not isinstance(report, dict) or report.get("nonce") != nonce or report.get("task") != task
                or not isinstance(report.get("ok"), bool)):
            raise WorkerFailed(f"{self.label}: malformed report from the child process")
        if not report["ok"]:
            problems = report.get("problems")
            if report.get("kind") == "submission" and isinstance(problems, list) and problems:
                raise SubmissionError(self.sub.folder, [str(p) for p in problems])
            raise WorkerFailed(f"{self.label} failed: {str(report.get('message'))[:2000]}")
        if rc != 0:
            raise WorkerFailed(f"{self.label}: the child process {how} after reporting success{_tail(log_path)}")
        return report
