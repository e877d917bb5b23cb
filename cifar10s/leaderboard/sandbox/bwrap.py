"""The operating-system sandbox around every child process that runs submission code.

A child in a plain process can read the scorer's command line and memory through
``/proc/<ppid>``, walk the filesystem to the data root, leave a daemon behind that rewrites the
result afterwards, write into site-packages, or talk to the scorer's terminal. On Linux each
child therefore runs under bubblewrap (``bwrap``):

* new user, PID, network, IPC, UTS (and, where possible, cgroup) namespaces; a new session (no
  controlling terminal); every capability dropped; uid and gid 65534 inside, and on the host too
  when the scorer is root (:mod:`.hostuser`), so nothing a child creates belongs to the scorer;
* a root of its own: read-only binds of the interpreter's prefixes, standard library and
  site-packages folders and the package folder alone (computed from the interpreter, never from
  ``sys.path[0]``, the working folder or the home folder), ``/usr`` and the loader's cache; a
  fresh ``/proc`` of its own PID namespace, a minimal ``/dev``, ``tmpfs`` ``/tmp`` and
  ``/dev/shm`` sized inside the memory cap; writable only its scratch folder (and, for training,
  the seed's work folder), mounted ``nosuid,nodev``; no network. A child never starts when one
  of its binds would show the signing key, the home folder, ``~/.config`` or ``~/.ssh``;
* bubblewrap is PID 1 of the namespace, so when the child ends every process it started ends
  with it, and ``--die-with-parent`` ends the namespace when the scorer dies;
* resource limits set by the child's bootstrap before any submission code is imported, and
  memory and process count capped for all its processes together in a cgroup where the host
  allows one (:mod:`.cgroup`) (:class:`Limits`).

:func:`detect` checks that bubblewrap can start such a child here (once per command) and
raises :class:`SandboxUnavailable` with how to install it when not; nothing falls back silently.
"""

from __future__ import annotations

import contextlib
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

from .binds import _ancestors, _covered, default_secrets, exposed_secret, mask_targets, package_dir, read_only_paths
from .cgroup import CgroupPlan, plan_cgroups
from .limits import Limits
from .hostuser import CHILD_UID, HeldNamespace, drop_argv, tools_missing
from ...errors import Cifar10sError

__all__ = ["NOBODY", "Limits", "Sandbox", "SandboxUnavailable", "SecretExposed", "default_secrets", "detect",
           "mask_targets", "package_dir", "read_only_paths", "resolve_sandbox"]

NOBODY = 65534
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; "
                "Arch: pacman -S bubblewrap), or pass --no-sandbox (API: sandbox=False) to run submission code "
                "without it; such a result records \"sandbox\": \"none\"")
#: the empty folder laid over a hidden one (the data root, results) that a read-only bind would show
_MASK_BYTES = 1 << 20
#: what the dynamic loader and a Python build need besides /usr (used where they exist)
_SYSTEM_LINKS_OR_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives")
_CUDA_DIRS = ("/usr/local/cuda", "/usr/local/nvidia", "/run/nvidia-persistenced", "/sys")


class SandboxUnavailable(Cifar10sError, RuntimeError):
    """The sandbox cannot start here; the message says how to fix that (or to opt out)."""


class SecretExposed(SandboxUnavailable):
    """A folder the child would see holds the signing key or the home folder; nothing was started."""


@dataclass(frozen=True)
class Sandbox:
    """A working bubblewrap setup: how to wrap one child's command, and what to record about it.

    ``writable`` adds host folders the child may write (tests give an attack a log folder this
    way); they are listed in :meth:`describe`. ``drop_root``: the scorer is root, so children run
    in a user namespace of :mod:`.hostuser` as host uid 65534. ``cgroups``: where each child's
    cgroup is made (:mod:`.cgroup`). ``secrets``: paths no bind may show (besides
    :func:`default_secrets`), e.g. the signing key in use.
    """

    bwrap: str
    version: str
    user_namespace: bool
    limits: Limits = field(default_factory=Limits)
    writable: tuple[str, ...] = ()
    drop_root: bool = False
    cgroups: CgroupPlan = field(default_factory=lambda: CgroupPlan("none", reason="not planned"))
    secrets: tuple[str, ...] = ()

    @property
    def child_uid(self) -> int:
        """The host uid that owns what a child creates."""
        return CHILD_UID if self.drop_root else os.geteuid()

    def namespaces(self) -> list[str]:
        return (["user"] if self.user_namespace else []) + ["pid", "net", "ipc", "uts", "cgroup (where possible)"]

    def describe(self) -> dict[str, Any]:
        """The result's ``sandbox`` record."""
        return {
            "tool": "bubblewrap", "version": self.version, "namespaces": self.namespaces(),
            "uid": NOBODY if self.user_namespace else os.geteuid(), "host_uid": self.child_uid,
            "capabilities": "all dropped",
            "new_session": True, "die_with_parent": True, "network": "none",
            "proc": "own PID namespace", "filesystem": "read-only interpreter prefixes, standard library, "
            "site-packages and package; writable scratch folder (and the seed's work folder for training), "
            "nosuid, nodev; tmpfs /tmp and /dev/shm",
            "limits": dataclasses.asdict(self.limits),
            "tmpfs_bytes": self.limits.tmpfs_bytes(),
            "cgroup": self.cgroups.describe(self.limits.memory_cap, self.limits.processes),
            "left_behind": "checked after every child: regular files and folders only, no setuid/setgid, "
            "devices, FIFOs, sockets, hard links or links out; at most work_files / work_bytes",
            "extra_writable": list(self.writable),
        }

    def popen_args(self, held: HeldNamespace | None) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs besides the command: the held namespace's descriptor, and
        for a root scorer the child's group, so that bubblewrap (root without capabilities over
        files) can enter the child's folders (owned 65534:65534, mode 0770)."""
        if not self.drop_root or held is None:
            return {}
        from .hostuser import CHILD_GID

        return {"pass_fds": (held.userns_fd,), "extra_groups": [CHILD_GID]}

    def check_secrets(self, binds: list[str]) -> None:
        """Raise :class:`SecretExposed` when a bind would show a secret (nothing has started then)."""
        hit = exposed_secret(binds, default_secrets() + self.secrets)
        if hit is not None:
            raise SecretExposed(f"refusing to start a child: the folder {hit[0]} it would see holds {hit[1]}; run "
                                "the scorer from an interpreter and package outside the home folder, or keep the "
                                "signing key elsewhere (CIFAR10S_SIGNING_KEY=FILE)")

    def command(self, argv: list[str], *, scratch: Path, writable: tuple[Path, ...] = (), cuda: bool = False,
                info_fd: int | None = None, hidden: tuple[str | Path, ...] = (),
                held: HeldNamespace | None = None) -> list[str]:
        """``argv`` wrapped to run inside the sandbox with ``scratch`` as its working folder.

        Writable folders are bound at their own paths, so the paths in the child's job hold
        inside and out; nothing else of the host is writable or (beyond the read-only set)
        visible. ``info_fd``: bubblewrap writes ``{"child-pid": N}`` there, the host PID of the
        namespace's init, whose death ends every process in the namespace. ``hidden``: host
        folders the child must not see (the data root, the results and work folders) even where
        a read-only folder it needs contains them: they are covered with empty ones
        (:func:`mask_targets`), and what the child needs inside them is bound again on top.
        ``held``: the user and network namespaces of a root scorer's child (required when
        ``drop_root``); ``argv`` then runs as uid 65534 through ``setpriv`` (:func:`.hostuser.drop_argv`).
        """
        readable = read_only_paths()
        rw = [str(Path(p).resolve()) for p in [scratch, *writable, *map(Path, self.writable)]]
        self.check_secrets(readable + rw)
        cmd = [self.bwrap] + (["--info-fd", str(info_fd)] if info_fd is not None else [])
        if self.drop_root:
            if held is None:
                raise ValueError("a root scorer's child needs its held user namespace")
            cmd = held.nsenter() + cmd + ["--userns", str(held.userns_fd)]
        elif self.user_namespace:
            cmd += ["--unshare-user", "--disable-userns", "--uid", str(NOBODY), "--gid", str(NOBODY), "--unshare-net"]
        else:
            cmd += ["--unshare-net"]
        cmd += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if self.drop_root:  # only to become 65534 before anything else runs
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        # the folders above a bind are made 0755 first (bubblewrap would copy the mode of a 0700 /root
        # or pytest folder, and a child running as 65534 could not reach what is bound below it)
        parents = ([arg for a in _ancestors(readable + rw) for arg in ("--perms", "0755", "--dir", a)]
                   if self.drop_root else [])
        cmd += ["--ro-bind", "/usr", "/usr"]
        for path in _SYSTEM_LINKS_OR_DIRS:
            if os.path.islink(path):
                cmd += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                cmd += ["--ro-bind", path, path]
        for path in _SYSTEM_FILES:
            cmd += ["--ro-bind-try", path, path]
        tmpfs = str(self.limits.tmpfs_bytes())
        cmd += ["--proc", "/proc", "--dev", "/dev", "--size", tmpfs, "--tmpfs", "/dev/shm",
                "--size", tmpfs, "--tmpfs", "/tmp"]
        if cuda:
            for dev in sorted(Path("/dev").glob("nvidia*")):
                cmd += ["--dev-bind", str(dev), str(dev)]
            for path in _CUDA_DIRS:
                # /usr is bound whole (its mounts too); binding a link inside it again (/usr/local/cuda
                # -> cuda-13.0) would make bubblewrap mount onto the link's path and fail
                if not _covered(path, ["/usr"]):
                    cmd += ["--ro-bind-try", path, path]
        cmd += parents
        for path in readable:
            if not _covered(path, ["/usr"]):
                cmd += ["--ro-bind", path, path]
        masks = mask_targets(hidden, ["/usr", *_SYSTEM_LINKS_OR_DIRS, *readable])
        for path, is_dir in masks:
            cmd += (["--perms", "0555", "--size", str(_MASK_BYTES), "--tmpfs", path] if is_dir
                    else ["--ro-bind", "/dev/null", path])
        covered = [path for path, is_dir in masks if is_dir]
        cmd += [arg for i in range(0, len(parents), 4) if _covered(parents[i + 3], covered) for arg in parents[i:i + 4]]
        for path in readable:  # what the child needs inside a covered folder, bound again on top
            if _covered(path, covered):
                cmd += ["--ro-bind", path, path]
        for real in rw:  # bubblewrap mounts binds nosuid and (unlike --dev-bind) nodev
            cmd += ["--bind", real, real]
        cmd += ["--chdir", str(scratch.resolve()), "--", *(drop_argv() if self.drop_root else []), *argv]
        return cmd

    def run(self, argv: list[str], *, scratch: Path, timeout: float = 60, env: dict[str, str] | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this sandbox to the end (its output captured): the probe's and tests' way in.
        ``kwargs`` go to :meth:`command`."""
        from .childfiles import hand_to
        from .hostuser import CHILD_GID, held_namespace

        with contextlib.ExitStack() as stack:
            held = stack.enter_context(held_namespace()) if self.drop_root else None
            if self.drop_root:
                hand_to(scratch, CHILD_UID, CHILD_GID)
            cmd = self.command(argv, scratch=scratch, held=held, **kwargs)
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  env=env, **self.popen_args(held))


def _version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"cannot run {bwrap} ({exc}); {INSTALL_HINT}") from None
    return out.strip().rsplit(" ", 1)[-1] or "unknown"


def _probe(sandbox: Sandbox) -> str | None:
    """Start a child the way a real one starts (an interpreter that imports nothing, as its host
    user); its error, or None."""
    check = f"import os; assert os.getpid() == 2 and os.getuid() == {NOBODY}"
    with tempfile.TemporaryDirectory(prefix="cifar10s-probe-") as scratch:
        try:
            r = sandbox.run([sys.executable, "-I", "-B", "-c", check], scratch=Path(scratch))
        except SecretExposed:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]


def detect(bwrap: str | None = None, *, limits: Limits | None = None,
           writable: tuple[str | Path, ...] = (), quiet: bool = False) -> Sandbox:
    """The sandbox this machine can run, checked by starting one child; or :class:`SandboxUnavailable`.

    A root scorer's children run as host uid 65534 in a user namespace made for them
    (:mod:`.hostuser`; needs util-linux's ``unshare`` and ``nsenter``); another scorer's in
    bubblewrap's own user namespace (uid 65534 inside, the scorer's uid outside), or without one as
    its own uid. Where no cgroup can be made for the children it says so once on stderr (unless
    ``quiet``), and results record ``"cgroup": "none"``.
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
    root = os.geteuid() == 0
    if root and tools_missing():
        raise SandboxUnavailable(f"a scorer running as root runs children as uid {CHILD_UID} through util-linux's "
                                 f"{' and '.join(tools_missing())}, not found; install util-linux, or score as an "
                                 "unprivileged user")
    plan = plan_cgroups()
    errors = []
    for userns in ((True,) if root else (True, False)):
        box = Sandbox(found, version, userns, limits or Limits(), extra, drop_root=root, cgroups=plan)
        error = _probe(box)
        if error is None:
            if plan.version == "none" and not quiet:
                print(f"note: no cgroup can be made for the sandbox's children here ({plan.reason}); memory and "
                      "processes are limited per process only, and results record \"cgroup\": \"none\"",
                      file=sys.stderr)
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
