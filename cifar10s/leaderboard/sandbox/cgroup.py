"""A control group per child: memory (tmpfs pages included) and process count capped as a whole.

``setrlimit`` limits are per process: a child with a 4 GiB address-space limit can still hold
three more GiB in subprocesses and more in ``/dev/shm``, and the kernel does not apply the
process limit to root. A cgroup counts every process of the child and the tmpfs pages they
touch together. Where the host allows it, each child starts inside a fresh one:

* cgroup v2 (``memory.max``, ``memory.swap.max``, ``pids.max``) where the memory and pids
  controllers can be enabled below this process's cgroup;
* else the v1 ``memory`` and ``pids`` hierarchies (``memory.limit_in_bytes``,
  ``memory.memsw.limit_in_bytes``, ``pids.max``), writable for root on many machines;
* else none, said once by the scorer and recorded as ``"cgroup": "none"`` in the result.

The child is put in its cgroup before bubblewrap starts (a two-line shell that writes its own
PID into ``cgroup.procs`` and then ``exec``s the sandbox), so every process it starts inherits
it. The cgroup is removed when the child's processes are gone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CgroupPlan", "ChildCgroup", "plan_cgroups"]

_ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict[str, str]:
    """This process's cgroup per v1 controller (``"memory"`` -> ``/a/b``) and ``""`` for v2."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for ctrl in parts[1].split(",") if parts[1] else [""]:
                out[ctrl] = parts[2]
    return out


def _v2_mount() -> Path | None:
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return Path(left.split()[4])
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class CgroupPlan:
    """Where children's cgroups are made: ``version`` ``"v2"``, ``"v1"`` or ``"none"`` (``reason`` says
    why none), and the parent folder of each controller's child cgroups."""

    version: str
    parents: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def describe(self, memory_bytes: int | None, pids: int | None) -> dict[str, object] | str:
        """The result's ``cgroup`` record: the caps in force, or ``"none"``."""
        if self.version == "none":
            return "none"
        return {"version": self.version, "memory_bytes": memory_bytes, "processes": pids, "swap": 0}


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _try_v2() -> CgroupPlan | None:
    mount = _v2_mount()
    if mount is None:
        return None
    parent = mount / _own_paths().get("", "/").lstrip("/")
    try:
        available = (parent / "cgroup.controllers").read_text().split()
        if not {"memory", "pids"} <= set(available) or not _writable_dir(parent):
            return None
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
    except OSError:
        return None
    return CgroupPlan("v2", {"": str(parent)})


def _try_v1() -> CgroupPlan | None:
    own = _own_paths()
    parents = {}
    for ctrl in ("memory", "pids"):
        parent = _ROOT / ctrl / own.get(ctrl, "/").lstrip("/")
        if not _writable_dir(parent) or not (parent / "cgroup.procs").exists():
            return None
        parents[ctrl] = str(parent)
    return CgroupPlan("v1", parents)


def plan_cgroups() -> CgroupPlan:
    """Which kind of cgroup this machine lets the scorer make (checked by making and removing one)."""
    reasons = []
    for kind, attempt in (("v2", _try_v2), ("v1", _try_v1)):
        plan = attempt()
        if plan is None:
            reasons.append(f"cgroup {kind}: no writable memory and pids controllers")
            continue
        try:
            probe = ChildCgroup(plan, memory_bytes=64 << 20, pids=16)
            probe.remove()
            return plan
        except OSError as exc:
            reasons.append(f"cgroup {kind}: {exc.strerror or exc}")
    return CgroupPlan("none", reason="; ".join(reasons))


class ChildCgroup:
    """One child's cgroup under a :class:`CgroupPlan`: made with its caps, entered by :meth:`wrap`,
    removed by :meth:`remove` once its processes are gone."""

    def __init__(self, plan: CgroupPlan, *, memory_bytes: int | None, pids: int | None) -> None:
        self.plan, self.dirs = plan, []
        name = f"cifar10s-{secrets.token_hex(6)}"
        try:
            if plan.version == "v2":
                d = Path(plan.parents[""]) / name
                d.mkdir()
                self.dirs.append(d)
                if memory_bytes is not None:
                    (d / "memory.max").write_text(str(memory_bytes))
                    with contextlib.suppress(FileNotFoundError):
                        (d / "memory.swap.max").write_text("0")
                if pids is not None:
                    (d / "pids.max").write_text(str(pids))
            elif plan.version == "v1":
                mem = Path(plan.parents["memory"]) / name
                pid = Path(plan.parents["pids"]) / name
                mem.mkdir()
                self.dirs.append(mem)
                pid.mkdir()
                self.dirs.append(pid)
                if memory_bytes is not None:
                    (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    with contextlib.suppress(FileNotFoundError, PermissionError):
                        (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                if pids is not None:
                    (pid / "pids.max").write_text(str(pids))
        except BaseException:
            self.remove()
            raise

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started by a shell that first moves itself into this cgroup (its children inherit it)."""
        if not self.dirs:
            return argv
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        script = "".join(f'echo $$ > "${i + 1}" || exit 125; ' for i in range(len(procs)))
        return ["/bin/sh", "-c", f"{script}shift {len(procs)}; exec \"$@\"", "sh", *procs, *argv]

    def memory_exceeded(self) -> bool:
        """Whether the kernel had to hold the child at its memory cap (it kills on out-of-memory there)."""
        for d in self.dirs:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                with contextlib.suppress(OSError, ValueError):
                    for line in (d / name).read_text().splitlines():
                        k, _, v = line.partition(" ")
                        if k == key and int(v) > 0:
                            return True
            with contextlib.suppress(OSError, ValueError):
                if int((d / "memory.failcnt").read_text()) > 0:
                    return True
        return False

    def remove(self, timeout_s: float = 5.0) -> None:
        """Remove the cgroup folders (the kernel refuses while a process is still in one; retried briefly)."""
        deadline = time.monotonic() + timeout_s
        for d in reversed(self.dirs):
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
        self.dirs = []
