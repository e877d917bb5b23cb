"""The operating-system sandbox around every child process that runs submission code.

A child in a plain process can read the scorer's command line and memory through
``/proc/<ppid>``, walk the filesystem to the data root, leave a daemon behind that rewrites the
result afterwards, write into site-packages, or talk to the scorer's terminal. On Linux each
child therefore runs under bubblewrap (``bwrap``):

* new user, PID, network, IPC, UTS (and, where possible, cgroup) namespaces; no nested user
  namespaces; a new session (no controlling terminal); every capability dropped; uid and gid
  65534 inside;
* a root of its own: read-only binds of the interpreter, its prefixes and every ``sys.path``
  folder, the package folder alone (never the folder around it), ``/usr`` and the loader's
  cache; a fresh ``/proc`` of its own PID namespace, a minimal ``/dev``, ``tmpfs`` ``/tmp``;
  writable only its scratch folder (and, for training, the seed's work folder); no network;
* bubblewrap is PID 1 of the namespace, so when the child ends every process it started ends
  with it, and ``--die-with-parent`` ends the namespace when the scorer dies;
* resource limits set by the child's bootstrap before any submission code is imported
  (:class:`Limits`).

:func:`detect` checks that bubblewrap can start such a child here (once per command) and
raises :class:`SandboxUnavailable` with how to install it when not; nothing falls back silently.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NOBODY", "Limits", "Sandbox", "SandboxUnavailable", "detect", "mask_targets", "package_dir",
           "resolve_sandbox"]

NOBODY = 65534
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; "
                "Arch: pacman -S bubblewrap), or pass --no-sandbox (API: sandbox=False) to run submission code "
                "without it; such a result records \"sandbox\": \"none\"")
_GIB = 1 << 30
#: the in-memory /tmp and /dev/shm (the child's TMPDIR is its scratch folder, on disk)
_TMPFS_BYTES = 1 * _GIB
#: the empty folder laid over a hidden one (the data root, results) that a read-only bind would show
_MASK_BYTES = 1 << 20
#: what the dynamic loader and a Python build need besides /usr (used where they exist)
_SYSTEM_LINKS_OR_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives")
_CUDA_DIRS = ("/usr/local/cuda", "/usr/local/nvidia", "/run/nvidia-persistenced", "/sys")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says how to fix that (or to opt out)."""


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 32 * _GIB


@dataclass(frozen=True)
class Limits:
    """Per-child resource limits (``setrlimit``, soft = hard; None: not limited).

    * ``address_space``: bytes of virtual memory (default: this machine's physical memory); not
      applied to a child that uses CUDA, whose driver reserves far more address space than it uses;
    * ``cpu_per_wall_second``: CPU seconds per second of the child's wall-time limit (default:
      the number of CPUs), so a child can use every core for its whole time and no longer;
    * ``file_size``: the largest file it may write, its log included (default 8 GiB);
    * ``open_files`` (default 4096) and ``processes`` (threads count, default 8192; the kernel
      does not apply this one to a scorer running as root).
    """

    address_space: int | None = field(default_factory=_physical_memory)
    cpu_per_wall_second: float | None = field(default_factory=lambda: float(os.cpu_count() or 1))
    file_size: int | None = 8 * _GIB
    open_files: int | None = 4096
    processes: int | None = 8192

    def rlimits(self, time_limit_s: float | None, cuda: bool) -> dict[str, int]:
        """The ``resource.RLIMIT_*`` names and values for one child."""
        cpu = (None if time_limit_s is None or self.cpu_per_wall_second is None
               else int(time_limit_s * self.cpu_per_wall_second) + 60)
        values = {"RLIMIT_AS": None if cuda else self.address_space, "RLIMIT_CPU": cpu,
                  "RLIMIT_FSIZE": self.file_size, "RLIMIT_NOFILE": self.open_files, "RLIMIT_NPROC": self.processes}
        return {k: int(v) for k, v in values.items() if v is not None}

    @classmethod
    def parse(cls, items: list[str] | None) -> Limits:
        """``["address_space=16G", "processes=none", ...]`` (a CLI's ``--limit``) over the defaults."""
        changes: dict[str, Any] = {}
        names = [f.name for f in dataclasses.fields(cls)]
        for item in items or []:
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in names:
                raise ValueError(f"--limit {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
            raw = raw.strip().lower()
            try:
                if raw in ("none", "unlimited"):
                    changes[key] = None
                elif key == "cpu_per_wall_second":
                    changes[key] = float(raw)
                else:
                    scale = {"k": 1 << 10, "m": 1 << 20, "g": _GIB}.get(raw[-1:], 1)
                    changes[key] = int(float(raw.rstrip("kmg")) * scale)
            except ValueError:
                raise ValueError(f"--limit {item!r}: {raw!r} is not a number (K/M/G suffixes allowed) or none") from None
        return cls(**changes)


def package_dir() -> Path:
    """The ``cifar10s`` package folder this process runs."""
    return Path(__file__).resolve().parents[2]


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def read_only_paths() -> list[str]:
    """The host paths a child reads: interpreter prefixes, ``sys.path`` folders and the package.

    Computed from this interpreter, not assumed. The package's parent folder is left out unless
    it is a site-packages folder: in a source checkout it holds results, data and other work.
    """
    pkg = package_dir()
    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), str(pkg)]
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        if Path(entry).resolve() == pkg.parent and pkg.parent.name not in ("site-packages", "dist-packages"):
            continue
        candidates.append(entry)
    for entry in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if entry and os.path.isabs(entry) and os.path.isdir(entry):
            candidates.append(entry)
    seen: list[str] = []
    for path in sorted({os.path.realpath(c) for c in candidates if os.path.exists(c)}, key=len):
        if not _covered(path, seen):
            seen.append(path)
    return seen


def mask_targets(hidden: tuple[str | Path, ...], visible: list[str]) -> list[tuple[str, bool]]:
    """The ``hidden`` paths that a ``visible`` bind would show, to be covered: (path, is_folder).

    A folder is covered with an empty read-only one (its names vanish too), a file with an
    empty file; what the child needs inside a covered folder is bound again on top of it.
    """
    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip("/") + "/")

    out: dict[str, bool] = {}
    for raw in hidden:
        path = os.path.realpath(raw)
        if os.path.exists(path) and any(under(path, v) for v in visible):
            out[path] = os.path.isdir(path)
    return sorted(out.items(), key=lambda item: len(item[0]))


@dataclass(frozen=True)
class Sandbox:
    """A working bubblewrap setup: how to wrap one child's command, and what to record about it.

    ``writable`` adds host folders the child may write (tests give an attack a log folder this
    way); they are listed in :meth:`describe`.
    """

    bwrap: str
    version: str
    user_namespace: bool
    limits: Limits = field(default_factory=Limits)
    writable: tuple[str, ...] = ()

    def namespaces(self) -> list[str]:
        return (["user"] if self.user_namespace else []) + ["pid", "net", "ipc", "uts", "cgroup (where possible)"]

    def describe(self) -> dict[str, Any]:
        """The result's ``sandbox`` record."""
        return {
            "tool": "bubblewrap", "version": self.version, "namespaces": self.namespaces(),
            "uid": NOBODY if self.user_namespace else os.geteuid(), "capabilities": "all dropped",
            "new_session": True, "die_with_parent": True, "network": "none",
            "proc": "own PID namespace", "filesystem": "read-only interpreter, sys.path folders and package; "
            "writable scratch folder (and the seed's work folder for training); tmpfs /tmp",
            "limits": dataclasses.asdict(self.limits),
            "extra_writable": list(self.writable),
        }

    def command(self, argv: list[str], *, scratch: Path, writable: tuple[Path, ...] = (), cuda: bool = False,
                info_fd: int | None = None, hidden: tuple[str | Path, ...] = ()) -> list[str]:
        """``argv`` wrapped to run inside the sandbox with ``scratch`` as its working folder.

        Writable folders are bound at their own paths, so the paths in the child's job hold
        inside and out; nothing else of the host is writable or (beyond the read-only set)
        visible. ``info_fd``: bubblewrap writes ``{"child-pid": N}`` there, the host PID of the
        namespace's init, whose death ends every process in the namespace. ``hidden``: host
        folders the child must not see (the data root, the results and work folders) even where
        a read-only folder it needs contains them (a ``sys.path`` entry that is the scorer's
        working folder, say): they are covered with empty ones (:func:`mask_targets`), and what
        the child needs inside them is bound again on top.
        """
        cmd = [self.bwrap] + (["--info-fd", str(info_fd)] if info_fd is not None else [])
        if self.user_namespace:
            cmd += ["--unshare-user", "--disable-userns", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--ro-bind", "/usr", "/usr"]
        for path in _SYSTEM_LINKS_OR_DIRS:
            if os.path.islink(path):
                cmd += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                cmd += ["--ro-bind", path, path]
        for path in _SYSTEM_FILES:
            cmd += ["--ro-bind-try", path, path]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(_TMPFS_BYTES), "--tmpfs", "/dev/shm",
                "--size", str(_TMPFS_BYTES), "--tmpfs", "/tmp"]
        if cuda:
            for dev in sorted(Path("/dev").glob("nvidia*")):
                cmd += ["--dev-bind", str(dev), str(dev)]
            for path in _CUDA_DIRS:
                # /usr is bound whole (its mounts too); binding a link inside it again (/usr/local/cuda
                # -> cuda-13.0) would make bubblewrap mount onto the link's path and fail
                if not _covered(path, ["/usr"]):
                    cmd += ["--ro-bind-try", path, path]
        readable = read_only_paths()
        for path in readable:
            if not _covered(path, ["/usr"]):
                cmd += ["--ro-bind", path, path]
        masks = mask_targets(hidden, ["/usr", *_SYSTEM_LINKS_OR_DIRS, *readable])
        for path, is_dir in masks:
            cmd += (["--perms", "0555", "--size", str(_MASK_BYTES), "--tmpfs", path] if is_dir
                    else ["--ro-bind", "/dev/null", path])
        covered = [path for path, is_dir in masks if is_dir]
        for path in readable:  # what the child needs inside a covered folder, bound again on top
            if _covered(path, covered):
                cmd += ["--ro-bind", path, path]
        for path in [scratch, *writable, *map(Path, self.writable)]:
            real = str(Path(path).resolve())
            cmd += ["--bind", real, real]
        cmd += ["--chdir", str(scratch.resolve()), "--", *argv]
        return cmd


def _version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"cannot run {bwrap} ({exc}); {INSTALL_HINT}") from None
    return out.strip().rsplit(" ", 1)[-1] or "unknown"


def _probe(sandbox: Sandbox) -> str | None:
    """Start a child the way a real one starts (an interpreter that imports nothing); its error, or None."""
    with tempfile.TemporaryDirectory(prefix="cifar10s-probe-") as scratch:
        cmd = sandbox.command([sys.executable, "-I", "-B", "-c", "import os; assert os.getpid() == 2"],
                              scratch=Path(scratch))
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]


def detect(bwrap: str | None = None, *, limits: Limits | None = None,
           writable: tuple[str | Path, ...] = ()) -> Sandbox:
    """The sandbox this machine can run, checked by starting one child; or :class:`SandboxUnavailable`.

    Tries a user namespace first (uid 65534 inside); without one, only a scorer that is not root
    can run children (as its own uid) - a root scorer's children would keep uid 0.
    """
    if platform.system() != "Linux":
        raise SandboxUnavailable(f"the sandbox for submission code needs Linux (bubblewrap), not "
                                 f"{platform.system()}; score on Linux, or pass --no-sandbox (API: sandbox=False) "
                                 "to run submission code without it; such a result records \"sandbox\": \"none\"")
    found = shutil.which(bwrap or "bwrap")
    if found is None:
        raise SandboxUnavailable(f"bubblewrap ({bwrap or 'bwrap'}) was not found; {INSTALL_HINT}")
    version = _version(found)
    extra = tuple(str(Path(w).resolve()) for w in writable)
    errors = []
    for userns in (True, False):
        if not userns and os.geteuid() == 0:
            break
        box = Sandbox(found, version, userns, limits or Limits(), extra)
        error = _probe(box)
        if error is None:
            return box
        errors.append(error)
    raise SandboxUnavailable(f"bubblewrap {version} cannot start a sandbox here ({errors[0]}); user namespaces may be "
                             "disabled (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, or "
                             f"an AppArmor profile for bwrap); {INSTALL_HINT}")


def resolve_sandbox(sandbox: bool | Sandbox | None) -> Sandbox | None:
    """An API's ``sandbox`` argument: True detects one (or raises), False/None is none, a
    :class:`Sandbox` is used as given."""
    if isinstance(sandbox, Sandbox):
        return sandbox
    return detect() if sandbox else None
