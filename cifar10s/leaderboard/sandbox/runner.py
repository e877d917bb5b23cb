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
from .cgroup import ChildCgroup
from .childfiles import ChildFileRefused, audit_folder, hand_to, purge_unsafe, read_child_file, read_logits
from .staging import stage_files, verify_staged
from .failures import WorkerFailed
from .hostuser import CHECK_DROPPED, CHILD_GID, CHILD_UID, held_namespace
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


def epoch_logits_name(epoch: int) -> str:
    """The file, relative to the work folder, of the per-epoch logits after ``epoch`` (1-based)."""
    return f"{EPOCH_LOGITS_DIR}/epoch-{epoch:04d}.npy"


def _package_parent() -> str:
    return str(Path(__file__).resolve().parents[3])


def _bootstrap(rlimits: dict[str, int] | None = None, drop_privileges: bool = False) -> str:
    """``-m cifar10s.leaderboard.sandbox.worker`` for the package this process runs, after its limits.

    Isolated mode leaves the current folder off ``sys.path``, so a plain ``-m`` could run another
    installed copy of the package; the child puts this one's folder first, then runs the module.
    ``drop_privileges``: first check that it runs as uid/gid 65534 (a root scorer's child,
    :mod:`.hostuser`). ``rlimits`` (``RLIMIT_*`` name -> value) are set, soft and hard, before
    anything is imported.
    """
    limits = (f"import resource; [resource.setrlimit(getattr(resource, k), (v, v)) for k, v in {rlimits!r}.items()]; "
              if rlimits else "")
    return (f"{CHECK_DROPPED if drop_privileges else ''}{limits}import runpy, sys; "
            f"sys.path.insert(0, {_package_parent()!r}); "
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


def read_tail(fd: int, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a child's log as inert text, read from the descriptor the scorer
    opened for it (never by path: the child may have put a link or a FIFO where the log was)."""
    try:
        size = os.fstat(fd).st_size
        raw = os.pread(fd, limit, max(0, size - limit))
    except OSError:
        return ""
    return inert_text(raw.decode("utf-8", errors="replace"))


def _tail(fd: int, lines: int = 3, chars: int = 400) -> str:
    kept = [ln.strip() for ln in read_tail(fd).splitlines() if ln.strip()][-lines:]
    out = " | ".join(kept)
    return f"; last output: {out[-chars:]}" if out else ""


class _LogRelay:
    """Shows a child's log on the scorer's output while it runs (``progress``), made inert and
    bounded: at most :data:`TAIL_BYTES` per poll, the rest skipped with a note. It reads the
    descriptor the scorer owns without blocking, never the path."""

    def __init__(self, fd: int) -> None:
        self.fd, self.offset = fd, 0

    def __call__(self) -> None:
        try:
            size = os.fstat(self.fd).st_size
            if size <= self.offset:
                return
            if size - self.offset > TAIL_BYTES:
                sys.stdout.write(f"\n[{size - self.offset - TAIL_BYTES} bytes of child output skipped]\n")
                self.offset = size - TAIL_BYTES
            raw = os.pread(self.fd, size - self.offset, self.offset)
        except OSError:
            return
        self.offset += len(raw)
        sys.stdout.write(inert_text(raw.decode("utf-8", errors="replace"), keep_cr=True))
        sys.stdout.flush()


class _Watch:
    """What runs between checks while a child runs: the log relay, and every few seconds the quota
    of its folders (a child filling the disk is stopped, not waited for)."""

    def __init__(self, relay: _LogRelay | None, folders: list[Path], sandbox: Sandbox | None, label: str,
                 every_s: float = 2.0) -> None:
        self.relay, self.folders, self.sandbox, self.label = relay, folders, sandbox, label
        self.every_s, self.next = every_s, time.monotonic() + every_s

    def __call__(self) -> None:
        if self.relay is not None:
            self.relay()
        if self.sandbox is not None and time.monotonic() >= self.next:
            self.next = time.monotonic() + self.every_s
            audit_folder(self.folders, self.sandbox.limits.quota, what=self.label, quota_only=True)


class WorkerRun:
    """One child task in its own scratch folder: put arrays in, :meth:`run`, read outputs, clean up.

    Use as a context manager; the scratch folder (with the copy of the submission and the data
    handed to the child) is removed on exit. ``sandbox`` has no default: None runs the child
    without one, and only a caller that decided so may pass it.
    """

    def __init__(self, sub: Submission, *, label: str, sandbox: Sandbox | None, forbidden: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.sub, self.label, self.sandbox = sub, label, sandbox
        self.forbidden = [str(f) for f in (forbidden or []) if str(f)]
        self.threads = threads
        self.scratch = Path(tempfile.mkdtemp(prefix="cifar10s-worker-"))

    def __enter__(self) -> WorkerRun:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)  # never follows links out of it

    def path(self, name: str) -> Path:
        return self.scratch / name

    def read(self, name: str, *, max_bytes: int) -> bytes:
        """A file the child wrote in the scratch folder, read as someone else's bytes."""
        return read_child_file(self.scratch, name, max_bytes=max_bytes, what=self.label)

    def put_array(self, name: str, array: np.ndarray) -> str:
        """Save ``array`` into the scratch folder for the child; returns the name to put in the job."""
        np.save(self.scratch / name, np.ascontiguousarray(array), allow_pickle=False)
        return name

    def _command(self, time_limit_s: float | None, device: str | None, writable: list[Path],
                 info_fd: int | None, held: Any) -> list[str]:
        if self.sandbox is None:
            return [sys.executable, "-I", "-B", "-c", _bootstrap(), "job.json"]
        cuda = device is None or not str(device).startswith("cpu")
        boot = _bootstrap(self.sandbox.limits.rlimits(time_limit_s, cuda), drop_privileges=self.sandbox.drop_root)
        return self.sandbox.command([sys.executable, "-I", "-B", "-c", boot, "job.json"], scratch=self.scratch,
                                    writable=tuple(writable), cuda=cuda, info_fd=info_fd,
                                    hidden=tuple(self.forbidden), held=held)

    def run(self, task: str, job: dict[str, Any], *, time_limit_s: float | None,
            device: str | None = None, progress: bool = False, writable: Sequence[Path] = ()) -> dict[str, Any]:
        """Run ``task`` and return its report (``ok`` true), or raise why not.

        ``writable``: folders besides the scratch folder the child writes (a seed's work folder);
        inside the sandbox they are the only other writable places. After the child ends and its
        processes are gone, what it left in its folders is checked (:func:`.childfiles.audit_folder`)
        before anything of it is read.
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
        folders = [self.scratch, *map(Path, writable)]
        if self.sandbox is not None:
            folders += [Path(w) for w in self.sandbox.writable]
            if self.sandbox.drop_root:
                for folder in folders:
                    hand_to(folder, CHILD_UID, CHILD_GID)
        verify_staged(self.sub, staged)
        with contextlib.ExitStack() as stack:
            held = (stack.enter_context(held_namespace())
                    if self.sandbox is not None and self.sandbox.drop_root else None)
            group = None
            if self.sandbox is not None and self.sandbox.cgroups.version != "none":
                group = ChildCgroup(self.sandbox.cgroups, memory_bytes=self.sandbox.limits.memory_cap,
                                    pids=self.sandbox.limits.processes)
                stack.callback(group.remove)
            log_fd = os.open(self.scratch / "worker.log", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            stack.callback(os.close, log_fd)
            exited, rc, seconds = self._start_and_wait(time_limit_s, device, progress, writable, held, group,
                                                       log_fd, folders)
            if group is not None and rc != 0 and group.memory_exceeded():
                raise WorkerFailed(f"{self.label}: the child's processes together reached the memory cap of "
                                   f"{self.sandbox.limits.memory_cap} bytes and were stopped (raise it with "  # type: ignore[union-attr]
                                   "--limit memory=SIZE)")
            if not exited:
                raise WorkerFailed(f"{self.label}: still running after its time limit of {time_limit_s:g} s; "
                                   f"its process group was killed{_tail(log_fd)}")
            if self.sandbox is not None:
                try:
                    audit_folder(folders, self.sandbox.limits.quota, what=self.label)
                except ChildFileRefused:
                    purge_unsafe(folders)  # nothing refused stays behind for anyone to use
                    raise
            return self._report(rc, nonce, task, log_fd, seconds)

    def _start_and_wait(self, time_limit_s: float | None, device: str | None, progress: bool,
                        writable: Sequence[Path], held: Any, group: ChildCgroup | None, log_fd: int,
                        folders: list[Path]) -> tuple[bool, int, float]:
        """Start the child, wait for it (or its time limit), end whatever of it is left; (exited, rc, seconds)."""
        info_r, info_w = os.pipe() if self.sandbox is not None else (None, None)
        cmd = self._command(time_limit_s, device, list(writable), info_w, held)
        if group is not None:
            cmd = group.wrap(cmd)
        env = child_env(self.scratch, self.forbidden, self.threads)
        extra = self.sandbox.popen_args(held) if self.sandbox is not None else {}
        fds = tuple(extra.pop("pass_fds", ())) + ((info_w,) if info_w is not None else ())
        t0 = time.monotonic()
        try:
            # never the scorer's terminal: progress is relayed from the log, through the scorer's own descriptor
            proc = subprocess.Popen(cmd, cwd=self.scratch, env=env, stdin=subprocess.DEVNULL, stdout=log_fd,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    pass_fds=fds, **extra)
            space = None
            if info_w is not None:
                os.close(info_w)
                info_w = None
                space = read_namespace(info_r, proc.pid)
            watch = _Watch(_LogRelay(log_fd) if progress else None, folders, self.sandbox, self.label)
            try:
                exited = _wait_unreaped(proc, time_limit_s, watch)
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
        if watch.relay is not None:
            watch.relay()
        return exited, rc, time.monotonic() - t0

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], space: Namespace | None) -> None:
        """End a child that is still running: its sandbox's whole PID namespace, and its process group."""
        kill_namespace(space, proc.pid)
        _kill_group(proc)

    def _report(self, rc: int, nonce: str, task: str, log_fd: int, seconds: float) -> dict[str, Any]:
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        try:
            raw = self.read("report.json", max_bytes=MAX_REPORT_BYTES)
        except FileNotFoundError:
            hint = (" (did the submission end the process itself, e.g. os._exit or sys.exit?)" if rc == 0 else "")
            raise WorkerFailed(f"{self.label}: the child process {how} after {seconds:.1f} s without writing "
                               f"its report{hint}{_tail(log_fd)}") from None
        except ChildFileRefused as exc:
            raise WorkerFailed(f"{exc}; the child process {how}") from None
        try:
            report = strict_json.loads(raw)  # duplicate keys, NaN refused
        except ValueError as exc:
            raise WorkerFailed(f"{self.label}: unreadable report ({str(exc)[:200]})") from None
        if (not isinstance(report, dict) or report.get("nonce") != nonce or report.get("task") != task
                or not isinstance(report.get("ok"), bool)):
            raise WorkerFailed(f"{self.label}: malformed report from the child process")
        if not report["ok"]:
            problems = report.get("problems")
            if report.get("kind") == "submission" and isinstance(problems, list) and problems:
                raise SubmissionError(self.sub.folder, [inert_text(str(p))[:2000] for p in problems[:100]])
            raise WorkerFailed(f"{self.label} failed: {inert_text(str(report.get('message')))[:2000]}")
        if rc != 0:
            raise WorkerFailed(f"{self.label}: the child process {how} after reporting success{_tail(log_fd)}")
        return report
