"""A started sandbox's processes, found and ended from the host.

bubblewrap reports the host PID of the namespace's init as it starts (``--info-fd``); from it the
scorer learns the PID namespace, by which every process of the sandbox can be found in ``/proc``.
Killing the init makes the kernel kill the rest, but not at once, so the scorer waits until none
is left before it reads what the child wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NAMESPACE_EXIT_S", "Namespace", "kill_namespace", "read_namespace", "wait_namespace_empty"]

#: how long the processes of a sandbox that ended may take to be gone before the run fails
NAMESPACE_EXIT_S = 10.0


@dataclass(frozen=True)
class Namespace:
    """A started sandbox's PID namespace: the host PID of its init and the namespace's identity
    (``/proc/PID/ns/pid``), by which every process inside it can be found on the host."""

    init_pid: int
    ident: str


def read_namespace(info_fd: int, bwrap_pid: int, timeout_s: float = 10.0) -> Namespace | None:
    """The namespace that bubblewrap ``bwrap_pid`` reports on ``info_fd`` as it starts (None if it
    exits first, reports nothing readable, or the reported PID is not its child)."""
    raw, deadline = b"", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([info_fd], [], [], 0.05)
        if not ready:
            continue
        chunk = os.read(info_fd, 4096)
        if not chunk:  # bubblewrap closed its end without a report: it failed to start
            return None
        raw += chunk
        try:
            pid = int(json.loads(raw.decode())["child-pid"])
        except (ValueError, KeyError, TypeError):
            continue  # a partial report; read on
        try:
            ppid, ident = _parent_and_namespace(pid)
        except OSError:
            return None
        return Namespace(pid, ident) if ppid == str(bwrap_pid) else None
    return None


def _parent_and_namespace(pid: int) -> tuple[str | None, str]:
    """A host process's parent PID (as written in ``/proc/PID/status``) and PID namespace; OSError
    when it is gone."""
    status = Path(f"/proc/{pid}/status").read_text()
    ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), None)
    return ppid, os.readlink(f"/proc/{pid}/ns/pid")


def _members(space: Namespace) -> list[int]:
    """Host PIDs of the processes still alive in ``space``. Zombies do not count: they run nothing,
    and the namespace's own init, once orphaned, waits as one until the host's init reaps it."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != space.ident:
                    continue
                with open(f"/proc/{entry}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # gone meanwhile, or not ours to read
            if state not in (b"Z", b"X"):
                found.append(int(entry))
    return found


def kill_namespace(space: Namespace | None, bwrap_pid: int) -> None:
    """SIGKILL the namespace's init; the kernel then kills every process of the namespace. Checked
    to still be that bubblewrap's child in that namespace first, so a reused PID is never signalled."""
    if space is None:
        return
    try:
        ppid, ident = _parent_and_namespace(space.init_pid)
    except OSError:
        return
    if ident == space.ident and ppid == str(bwrap_pid):
        with contextlib.suppress(OSError):
            os.kill(space.init_pid, signal.SIGKILL)


def wait_namespace_empty(space: Namespace | None, timeout_s: float = NAMESPACE_EXIT_S) -> bool:
    """Wait until no process is left in ``space``: the kernel kills them when the init dies, but
    not at once, and one still alive could write to the folders it was given after the scorer read
    them. False if some were still there after ``timeout_s``."""
    if space is None:
        return True
    deadline = time.monotonic() + timeout_s
    while _members(space):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
