"""An unprivileged host user for children of a scorer that runs as root.

bubblewrap's own user namespace maps the child's uid to the caller's: for a root scorer every
file a child creates in its writable folders belongs to root on the host, setuid bit included.
For a root scorer the child therefore runs in a user namespace made here, whose map sends inside
uid/gid 65534 to host uid/gid 65534 (``nobody``/``nogroup``, who own nothing else) and keeps
inside 0 as host 0 only so that bubblewrap can set the sandbox up with the scorer's access; the
sandbox's first command is ``setpriv`` (:func:`drop_argv`), which switches to 65534 for good
before anything else runs, and the child's bootstrap checks it (:data:`CHECK_DROPPED`). The namespace holder also owns a fresh network namespace with no
interfaces up, which bubblewrap runs in (``nsenter --net``): no network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CHECK_DROPPED", "CHILD_GID", "CHILD_UID", "HeldNamespace", "drop_argv", "held_namespace", "tools_missing"]

CHILD_UID = CHILD_GID = 65534
_MAP = f"0 0 1\n{CHILD_UID} {CHILD_UID} 1\n".encode()
_GMAP = f"0 0 1\n{CHILD_GID} {CHILD_GID} 1\n".encode()

#: the child's first statement under a root scorer: check it runs as 65534, or stop
CHECK_DROPPED = (f"import os; assert os.getresuid() == ({CHILD_UID},) * 3 and os.getresgid() == ({CHILD_GID},) * 3 "
                 "and not os.getgroups(), 'the child still runs as the scorer'; ")


def drop_argv() -> list[str]:
    """What runs first inside the sandbox of a root scorer's child: util-linux's ``setpriv``, which
    becomes uid/gid 65534 with no groups and no inheritable capabilities, then runs the command."""
    return [_setpriv(), "--reuid", str(CHILD_UID), "--regid", str(CHILD_GID), "--clear-groups",
            "--inh-caps=-all", "--"]


def _setpriv() -> str:
    found = shutil.which("setpriv") or "/usr/bin/setpriv"
    return os.path.realpath(found)


def tools_missing() -> list[str]:
    """The util-linux tools a root scorer needs for this that are not on PATH."""
    return [t for t in ("unshare", "nsenter", "setpriv") if shutil.which(t) is None]


@dataclass(frozen=True)
class HeldNamespace:
    """A user namespace (open as ``userns_fd``) and network namespace held by process ``pid``."""

    pid: int
    userns_fd: int

    def nsenter(self) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--"]


@contextlib.contextmanager
def held_namespace(timeout_s: float = 10.0) -> Iterator[HeldNamespace]:
    """Make the child's user and network namespaces, held by a sleeping process until the block ends."""
    own = os.readlink("/proc/self/ns/user")
    proc = subprocess.Popen(["unshare", "--user", "--net", "--", "sleep", "infinity"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    fd = None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{proc.pid}/ns/user") != own:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
                raise OSError(f"could not make a user namespace for the child ({err[:200] or 'timed out'})")
            time.sleep(0.002)
        for name, data in (("uid_map", _MAP), ("gid_map", _GMAP)):
            wfd = os.open(f"/proc/{proc.pid}/{name}", os.O_WRONLY)
            try:
                os.write(wfd, data)
            finally:
                os.close(wfd)
        fd = os.open(f"/proc/{proc.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        yield HeldNamespace(proc.pid, fd)
    finally:
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
