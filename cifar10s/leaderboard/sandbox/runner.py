"""Running submission code in a child process, and reading back only what it may return.

The scoring process holds the test labels, so it never imports submission code. Each task
(:mod:`.worker`: inspect, train one seed, predict) runs in ``python -I -B`` (isolated mode: no
environment variables of Python's, no user site, no current folder on the path; no bytecode
written) in a new session, in a fresh scratch folder that is its working directory and
``HOME``, with a minimal environment (no variable that names the data root) and a copy of
exactly the submission files that were hashed. The child's ``argv`` holds the package
location and ``job.json``, nothing else.

Where a :class:`~.bwrap.Sandbox` is given (the default of the commands that score and validate),
the child runs inside it: its own namespaces and root, resource limits, and nothing of it left
running once it ends. The staged copy is hashed again just before the child starts. Everything
the child writes reaches the scorer's output and errors only through :func:`~.inert.inert_text`,
and its log is read from the end (at most :data:`TAIL_BYTES`), never whole.

A child that dies, outlives its time limit (its whole process group is killed), exits without
its report or returns something malformed gives :class:`WorkerFailed` (or
:class:`~cifar10s.leaderboard.submission.SubmissionError` when the child reports the submission at fault), never a
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import strict_json
from .inert import inert_text
from ..submission.record import Submission, SubmissionError
from .bwrap import Sandbox
from .namespace import NAMESPACE_EXIT_S, Namespace, kill_namespace, read_namespace, wait_namespace_empty

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
WORKER_MODULE = "cifar10s.leaderboard.sandbox.worker"
MAX_REPORT_BYTES = 16 << 20
#: the most bytes of a child's log the scorer reads (the end of it)
TAIL_BYTES = 64 << 10
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
    return str(Path(__file__).resolve().parents[3])


def _bootstrap(rlimits: dict[str, int] | None = None) -> str:
    """``-m cifar10s.leaderboard.sandbox.worker`` for the package this process runs, after its limits.

    Isolated mode leaves the current folder off ``sys.path``, so a plain ``-m`` could run another
    installed copy of the package; the child puts this one's folder first, then runs the module.
    ``rlimits`` (``RLIMIT_*`` name -> value) are set, soft and hard, before anything is imported.
    """
    limits = (f"import resource; [resource.setrlimit(getattr(resource, k), (v, v)) for k, v in {rlimits!r}.items()]; "
              if rlimits else "")
    return (f"{limits}import runpy, sys; sys.path.insert(0, {_package_parent()!r}); "
            f"runpy.run_module({WORKER_MODULE!r}, run_name='__main__', alter_sys=True)")


def child_env(scratch: Path, forbidden: list[str], threads: int | None) -> dict[str, str]:
    """The child's whole environment: :data:`PASSED_ENV` minus anything naming a ``forbidden`` path."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env = {k: v for k, v in env.items() if not any(f and f in v for f in forbidden)}
    (scratch / "tmp").mkdir(exist_ok=True)
    # the sandbox has no /etc/passwd: getpass.getuser() (Triton's and Inductor's cache folders on
    # CUDA) reads these before it asks the password database, which would fail
    env.update(HOME=str(scratch), TMPDIR=str(scratch / "tmp"), USER="nobody", LOGNAME="nobody")
    env.setdefault("PATH", os.defpath)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_unreaped(proc: subprocess.Popen[bytes], time_limit_s: float | None,
                   poll: Any = None) -> bool:
    """Wait for the child to exit without reaping it (so its process-group id cannot be reused
    before the group is killed); False when the time limit passed first. ``poll()`` runs
    between checks."""
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    delay = 0.01
    while True:
        if poll is not None:
            poll()
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a child's log as inert text (the file is never read whole)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            raw = f.read(limit)
    except OSError:
        return ""
    return inert_text(raw.decode("utf-8", errors="replace"))


def _tail(path: Path, lines: int = 3, chars: int = 400) -> str:
    kept = [ln.strip() for ln in read_tail(path).splitlines() if ln.strip()][-lines:]
    out = " | ".join(kept)
    return f"; last output: {out[-chars:]}" if out else ""


class _LogRelay:
    """Shows a child's log on the scorer's output while it runs (``progress``), made inert and
    bounded: at most :data:`TAIL_BYTES` per poll, the rest skipped with a note."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def __call__(self) -> None:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size <= self.offset:
                    return
                if size - self.offset > TAIL_BYTES:
                    sys.stdout.write(f"\n[{size - self.offset - TAIL_BYTES} bytes of child output skipped]\n")
                    self.offset = size - TAIL_BYTES
                f.seek(self.offset)
                raw = f.read(size - self.offset)
        except OSError:
            return
        self.offset += len(raw)
        sys.stdout.write(inert_text(raw.decode("utf-8", errors="replace"), keep_cr=True))
        sys.stdout.flush()


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


def verify_staged(sub: Submission, dest: Path) -> None:
    """The staged copy holds exactly the submission's files, with their hashes (checked just
    before a child starts)."""
    found = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file() or p.is_symlink()}
    if set(found) != set(sub.files) or any(
            p.is_symlink() or hashlib.sha256(p.read_bytes()).hexdigest() != sub.files[rel] for rel, p in found.items()):
        raise WorkerFailed(f"the staged copy of {sub.folder} does not match the submission's hashes; score it again")


class WorkerRun:
    """One child task in its own scratch folder: put arrays in, :meth:`run`, read outputs, clean up.

    Use as a context manager; the scratch folder (with the copy of the submission and the data
    handed to the child) is removed on exit.
    """

    def __init__(self, sub: Submission, *, label: str, forbidden: list[str] | None = None,
                 threads: int | None = None, sandbox: Sandbox | None = None) -> None:
        self.sub, self.label, self.sandbox = sub, label, sandbox
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

    def _command(self, time_limit_s: float | None, device: str | None, writable: list[Path],
                 info_fd: int | None) -> list[str]:
        if self.sandbox is None:
            return [sys.executable, "-I", "-B", "-c", _bootstrap(), "job.json"]
        cuda = device is None or not str(device).startswith("cpu")
        argv = [sys.executable, "-I", "-B", "-c", _bootstrap(self.sandbox.limits.rlimits(time_limit_s, cuda)),
                "job.json"]
        return self.sandbox.command(argv, scratch=self.scratch, writable=tuple(writable), cuda=cuda, info_fd=info_fd,
                                    hidden=tuple(self.forbidden))

    def run(self, task: str, job: dict[str, Any], *, time_limit_s: float | None,
            device: str | None = None, progress: bool = False, writable: Sequence[Path] = ()) -> dict[str, Any]:
        """Run ``task`` and return its report (``ok`` true), or raise why not.

        ``writable``: folders besides the scratch folder the child writes (a seed's work folder);
        inside the sandbox they are the only other writable places.
        """
        staged = self.scratch / _SUBMISSION_DIR
        shutil.rmtree(staged, ignore_errors=True)  # a fresh copy for every child
        stage_files(self.sub, staged)
        for folder in writable:
            Path(folder).mkdir(parents=True, exist_ok=True)
        nonce = secrets.token_hex(16)  # a report from this run, not one left over in the folder
        full = {**job, "task": task, "nonce": nonce, "report": "report.json", "device": device,
                "threads": self.threads, "progress": progress,
                "submission": {**self.sub.worker_spec(), "dir": _SUBMISSION_DIR}}
        (self.scratch / "job.json").write_text(json.dumps(full))
        log_path = self.scratch / "worker.log"
        info_r, info_w = os.pipe() if self.sandbox is not None else (None, None)
        cmd = self._command(time_limit_s, device, list(writable), info_w)
        env = child_env(self.scratch, self.forbidden, self.threads)
        verify_staged(self.sub, staged)
        t0 = time.monotonic()
        try:
            with open(log_path, "wb") as log:  # never the scorer's terminal: progress is relayed from the log
                proc = subprocess.Popen(cmd, cwd=self.scratch, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                        pass_fds=(info_w,) if info_w is not None else ())
                space = None
                if info_w is not None:
                    os.close(info_w)
                    info_w = None
                    space = read_namespace(info_r, proc.pid)
                relay = _LogRelay(log_path) if progress else None
                try:
                    exited = _wait_unreaped(proc, time_limit_s, relay)
                except BaseException:
                    self._kill(proc, space)
                    proc.wait()
                    wait_namespace_empty(space)
                    raise
                if not exited:
                    self._kill(proc, space)
                _kill_group(proc)  # nothing it started outlives it (not reaped yet: its id is still its own)
                rc = proc.wait()
                if not wait_namespace_empty(space):
                    raise WorkerFailed(f"{self.label}: processes of its sandbox were still running "
                                       f"{NAMESPACE_EXIT_S:g} s after it ended; nothing it wrote is used")
        finally:
            for fd in (info_r, info_w):
                if fd is not None:
                    os.close(fd)
        if relay is not None:
            relay()
        if not exited:
            raise WorkerFailed(f"{self.label}: still running after its time limit of {time_limit_s:g} s; "
                               f"its process group was killed{_tail(log_path)}")
        return self._report(rc, nonce, task, log_path, time.monotonic() - t0)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], space: Namespace | None) -> None:
        """End a child that is still running: its sandbox's whole PID namespace, and its process group."""
        kill_namespace(space, proc.pid)
        _kill_group(proc)

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
            report = strict_json.read_file(path, max_bytes=MAX_REPORT_BYTES)  # duplicate keys, NaN refused
        except (OSError, ValueError) as exc:
            raise WorkerFailed(f"{self.label}: unreadable report ({exc})") from None
        if (not isinstance(report, dict) or report.get("nonce") != nonce or report.get("task") != task
                or not isinstance(report.get("ok"), bool)):
            raise WorkerFailed(f"{self.label}: malformed report from the child process")
        if not report["ok"]:
            problems = report.get("problems")
            if report.get("kind") == "submission" and isinstance(problems, list) and problems:
                raise SubmissionError(self.sub.folder, [inert_text(str(p))[:2000] for p in problems[:100]])
            raise WorkerFailed(f"{self.label} failed: {inert_text(str(report.get('message')))[:2000]}")
        if rc != 0:
            raise WorkerFailed(f"{self.label}: the child process {how} after reporting success{_tail(log_path)}")
        return report
