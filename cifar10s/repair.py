"""How to repair a damaged variant folder: the Python call and the shell command that redo it.

A folder that fails its checks is either rebuilt (``build_variant(..., force=True)``) or, when it
was fetched from a Hub release, fetched again (``fetch_variant`` replaces a folder whose files do
not match). :func:`repair_call` says it in Python, :func:`repair_command` in a shell, and
:func:`calls_to_commands` turns the calls of a message into the commands, so that an error raised
as a plain ``IntegrityError`` in the library reads in flags on the command line.

Manifests are hostile bytes: the one read here goes through the strict JSON reader, and anything
unexpected in it falls back to the plain rebuild.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import strict_json
from .constants import DATA_FORMAT_VERSION

__all__ = ["calls_to_commands", "repair_call", "repair_command"]

_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 4 << 20
#: What a message says when it cannot tell which folder is meant.
GENERIC_CALL = "cifar10s.release.builders.build_variant(root, spec, force=True)"
GENERIC_COMMAND = "`cifar10s build --variant VARIANT --root ROOT --force`"
_BUILD, _FETCH = "cifar10s.release.builders.build_variant", "cifar10s.hub.client.fetch_variant"


def _root_and_name(folder: Path) -> tuple[str, str] | None:
    """``(root, folder name)`` when ``folder`` is ``<root>/cifar10s-v1/<name>``, else None."""
    if folder.parent.name != f"cifar10s-v{DATA_FORMAT_VERSION}":
        return None
    return str(folder.parent.parent), folder.name


def _manifest(folder: Path) -> Mapping[str, Any] | None:
    """``folder``'s manifest as JSON, or None when it is missing, a link, oversized or unreadable."""
    try:
        path = folder / _MANIFEST
        if path.is_symlink() or path.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        manifest = strict_json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return manifest if isinstance(manifest, Mapping) else None


def _fetch_record(folder: Path) -> dict[str, str] | None:
    """The manifest's ``fetched_from`` (repo_id, commit or revision), if it is readable and well formed."""
    manifest = _manifest(folder)
    record = manifest.get("fetched_from") if manifest is not None else None
    if not isinstance(record, Mapping):
        return None
    repo_id, revision = record.get("repo_id"), record.get("commit") or record.get("revision")
    if not (isinstance(repo_id, str) and isinstance(revision, str) and re.fullmatch(r"[\w.\-/]{1,200}", repo_id)
            and re.fullmatch(r"[\w.\-/]{1,200}", revision)):
        return None
    return {"repo_id": repo_id, "revision": revision}


def _spec_args(name: str) -> tuple[str, dict[str, Any]] | None:
    from .variants import VariantSpec

    try:
        spec = VariantSpec.from_folder_name(name)
    except ValueError:
        return None
    kwargs: dict[str, Any] = {}
    if spec.pixels != 1:
        kwargs["pixels"] = spec.pixels
    if spec.objective != "mean-std":
        kwargs["objective"] = spec.objective
    return spec.kind, kwargs


def _source_path(folder: Path) -> str | None:
    """The CIFAR-10 copy the folder was built from, when it is still there (so a rebuild can use it)."""
    source = (_manifest(folder) or {}).get("source")
    origin = source.get("origin") if isinstance(source, Mapping) else None
    return origin if isinstance(origin, str) and os.path.isabs(origin) and os.path.exists(origin) else None


def repair_call(folder: str | os.PathLike[str], *, source_folder: str | os.PathLike[str] | None = None) -> str:
    """The Python call that repairs ``folder``: fetch it again if it was fetched, else rebuild it
    (from the CIFAR-10 copy ``source_folder`` was built from, when given: default ``folder``)."""
    folder = Path(folder)
    where = _root_and_name(folder)
    parsed = _spec_args(where[1]) if where else None
    if where is None or parsed is None:
        return GENERIC_CALL
    root, name = where
    fetched = _fetch_record(folder)
    if fetched:
        return (f"{_FETCH}({root!r}, {name!r}, repo_id={fetched['repo_id']!r}, "
                f"revision={fetched['revision']!r})")
    kind, kwargs = parsed
    spec = ", ".join([repr(kind), *(f"{k}={v!r}" for k, v in kwargs.items())])
    source = _source_path(Path(source_folder) if source_folder is not None else folder)
    cifar10 = f", cifar10={source!r}" if source else ""
    return f"{_BUILD}({root!r}, cifar10s.VariantSpec({spec}){cifar10}, force=True)"


def repair_command(folder: str | os.PathLike[str]) -> str:
    """The shell command that repairs ``folder`` (the command-line face of :func:`repair_call`)."""
    return _call_to_command(repair_call(folder)) or GENERIC_COMMAND.strip("`")


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _call_to_command(call: str) -> str | None:
    """``build_variant('data', VariantSpec('ops'), force=True)`` -> ``cifar10s build --variant ops
    --root data --force``; None for anything that is not one of :func:`repair_call`'s calls."""
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call):
        return None
    func = ast.unparse(node.func)
    try:
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg and k.arg != "force"
                  and not isinstance(k.value, ast.Call)}
        if func == _FETCH and len(node.args) == 2:
            root, name = (ast.literal_eval(a) for a in node.args)
            return (f"cifar10s fetch --variant {_quote(name)} --root {_quote(root)} "
                    f"--repo-id {_quote(kwargs['repo_id'])} --revision {_quote(kwargs['revision'])}")
        if func == _BUILD and len(node.args) == 2 and isinstance(node.args[1], ast.Call):
            from .variants import VariantSpec

            spec_call = node.args[1]
            spec = VariantSpec(*(ast.literal_eval(a) for a in spec_call.args),
                               **{k.arg: ast.literal_eval(k.value) for k in spec_call.keywords if k.arg})
            root = ast.literal_eval(node.args[0])
            cifar10 = f" --cifar10 {_quote(kwargs['cifar10'])}" if "cifar10" in kwargs else ""
            return f"cifar10s build {spec.cli_args()} --root {_quote(root)}{cifar10} --force"
    except (ValueError, TypeError, KeyError, SyntaxError):
        return None
    return None


_CALL_START = re.compile("|".join(re.escape(f) + r"\(" for f in (_BUILD, _FETCH)))


def calls_to_commands(message: str) -> str:
    """``message`` with every repair call of :func:`repair_call` replaced by its shell command."""
    if GENERIC_CALL in message:
        message = message.replace(GENERIC_CALL, GENERIC_COMMAND)
    out, pos = [], 0
    for match in _CALL_START.finditer(message):
        if match.start() < pos:
            continue
        end = message.find(")", match.end())
        while end != -1:  # the shortest text from here that parses as one call
            command = _call_to_command(message[match.start():end + 1])
            if command:
                out += [message[pos:match.start()], f"`{command}`"]
                pos = end + 1
                break
            end = message.find(")", end + 1)
    return "".join(out) + message[pos:]
