"""What a sandboxed child may use: per-process rlimits, the cgroup's caps, the quota of its folders."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .childfiles import Quota

__all__ = ["Limits"]

_GIB = 1 << 30
#: the in-memory /tmp and /dev/shm at most (the child's TMPDIR is its scratch folder, on disk)
_TMPFS_BYTES = 1 * _GIB


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
      does not apply the rlimit to root, the cgroup caps it for everyone);
    * ``memory``: bytes of memory of all the child's processes and its in-memory ``/tmp`` and
      ``/dev/shm`` together, in its cgroup (default: ``address_space``);
    * ``work_bytes`` and ``work_files``: the most the child may leave in its folders (2 GiB and
      1,000 files by default: a checkpointed ResNet-18 run with per-epoch logits fits).
    """

    address_space: int | None = field(default_factory=_physical_memory)
    cpu_per_wall_second: float | None = field(default_factory=lambda: float(os.cpu_count() or 1))
    file_size: int | None = 8 * _GIB
    open_files: int | None = 4096
    processes: int | None = 8192
    memory: int | None = None
    work_bytes: int = 2 * _GIB
    work_files: int = 1000

    @property
    def memory_cap(self) -> int | None:
        """The cgroup's memory cap: ``memory``, else ``address_space``."""
        return self.memory if self.memory is not None else self.address_space

    @property
    def quota(self) -> Quota:
        return Quota(max_bytes=self.work_bytes, max_files=self.work_files)

    def tmpfs_bytes(self) -> int:
        """Size of each in-memory folder: a quarter of the memory cap, at most 1 GiB."""
        cap = self.memory_cap
        return _TMPFS_BYTES if cap is None else max(1 << 20, min(_TMPFS_BYTES, cap // 4))

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
                    if key in ("work_bytes", "work_files"):
                        raise ValueError(f"--limit {item!r}: the work-folder quota cannot be switched off")
                    changes[key] = None
                elif key == "cpu_per_wall_second":
                    changes[key] = float(raw)
                else:
                    scale = {"k": 1 << 10, "m": 1 << 20, "g": _GIB}.get(raw[-1:], 1)
                    changes[key] = int(float(raw.rstrip("kmg")) * scale)
            except ValueError as exc:
                if "quota" in str(exc):
                    raise
                raise ValueError(f"--limit {item!r}: {raw!r} is not a number (K/M/G suffixes allowed) or none") from None
        return cls(**changes)
