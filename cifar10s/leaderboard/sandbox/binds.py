"""Which host folders a sandboxed child sees: computed from the interpreter, never showing a secret."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["default_secrets", "exposed_secret", "mask_targets", "package_dir", "read_only_paths"]


def package_dir() -> Path:
    """The ``cifar10s`` package folder this process runs."""
    return Path(__file__).resolve().parents[2]


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def read_only_paths() -> list[str]:
    """The host paths a child reads: the interpreter's prefixes, standard library and
    site-packages folders, and the package folder.

    Computed from the interpreter (``sys.prefix`` and friends, ``sysconfig``, ``site``), never from
    ``sys.path``: run as ``python -m cifar10s.cli`` its first entry is the working folder, which
    may be a home folder holding the signing key. ``LD_LIBRARY_PATH`` folders are added (CUDA).
    """
    import site
    import sysconfig

    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), str(package_dir())]
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars or None)
        candidates += [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths]
    candidates += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    for entry in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if entry and os.path.isabs(entry) and os.path.isdir(entry):
            candidates.append(entry)
    seen: list[str] = []
    for path in sorted({os.path.realpath(c) for c in candidates if c and os.path.exists(c)}, key=len):
        if not _covered(path, seen):
            seen.append(path)
    return seen


def _ancestors(paths: list[str]) -> list[str]:
    """The folders above ``paths`` (not ``/``, nothing under ``/usr``, none of the paths), shortest first."""
    found = set()
    for path in paths:
        parent = os.path.dirname(path.rstrip("/"))
        while parent not in ("", "/"):
            found.add(parent)
            parent = os.path.dirname(parent)
    return sorted((a for a in found if not _covered(a, ["/usr"]) and a not in paths), key=len)


def default_secrets() -> tuple[str, ...]:
    """What no child may see: the home folder (the scorer's and the user's whose uid it runs as),
    its ``.config`` and ``.ssh``, and the default signing key."""
    import pwd

    from ..board.signing import default_key_path

    homes = {os.path.expanduser("~")}
    try:
        homes.add(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        pass
    found = {str(default_key_path())}
    for home in homes:
        if home and home != "/":
            found |= {home, os.path.join(home, ".config"), os.path.join(home, ".ssh")}
    return tuple(sorted(found))


def exposed_secret(binds: list[str], secrets: tuple[str, ...]) -> tuple[str, str] | None:
    """(bind, secret) for the first bind that is a secret or a folder holding one; None when none is.

    A bind *inside* the home folder (an interpreter under ``~/.pyenv``) is fine; the home folder
    itself, or a folder above it, is not.
    """
    for secret in secrets:
        real = os.path.realpath(secret)
        for bind in binds:
            if _covered(real, [os.path.realpath(bind)]):
                return bind, secret
    return None


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
