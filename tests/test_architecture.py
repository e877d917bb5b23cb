"""The package's shape: no import circles, no argparse outside cli/, no overlong modules without a reason.

Read from the modules' own source (every ``import`` statement, also those inside functions and
``TYPE_CHECKING`` blocks), so a circle hidden in a lazy import is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cifar10s"
MAX_LINES = 400
#: no module is longer than this, reason or not: past it, a module holds more than one job
HARD_MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(base: str, is_package: bool, level: int, module: str | None) -> str:
    parts = base.split(".") if is_package else base.split(".")[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node.level, node.module) if node.level else node.module
            if base is None:
                continue
            # `from pkg import submodule` imports the submodule; `from mod import name` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path):
    """An import inside a function or a ``TYPE_CHECKING`` block is an arrow of the graph too, so
    a circle hidden in a lazy import cannot pass :func:`test_no_import_circles`."""
    path = tmp_path / "lazy.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .b import B\n"
        "def f():\n    from ..c import helper\n    import pkg.d\n"
    )
    known = {"pkg", "pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.c", "pkg.d"}
    assert _imports("pkg.sub.a", path, known) == {"pkg.sub.b", "pkg.c", "pkg.d"}
    # and on the real package: the CIFAR10S class imports the Hub client only inside a method
    assert "cifar10s.hub.client" in _graph()["cifar10s.dataset"]


def test_no_import_circles():
    graph = _graph()
    # package faces (__init__) re-export their submodules; a circle through a face is still a circle
    assert _cycles(graph) == []


def test_library_modules_do_not_parse_arguments():
    offenders = [name for name, path in _modules().items()
                 if not name.startswith("cifar10s.cli") and "argparse" in _imports_raw(path)]
    assert offenders == []


def _imports_raw(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_the_cli():
    graph = _graph()
    offenders = {name: sorted(t for t in deps if t.startswith("cifar10s.cli"))
                 for name, deps in graph.items() if not name.startswith("cifar10s.cli")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_long_modules_state_why():
    """A module over ~400 lines says at its top why it is one module."""
    for name, path in _modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "one module" in doc.lower(), f"{name}: {text.count(chr(10))} lines and no reason at its top"


def test_no_module_over_500_lines():
    """A reason at the top buys a module ~100 lines more, not any length (issue: one job per module)."""
    long = {name: n for name, path in _modules().items() if (n := path.read_text().count("\n")) > HARD_MAX_LINES}
    assert long == {}


def test_every_lazy_name_of_a_face_resolves():
    import importlib

    faces = ("cifar10s", "cifar10s.hub", "cifar10s.leaderboard", "cifar10s.leaderboard.sandbox", "cifar10s.training")
    for face in faces:
        mod = importlib.import_module(face)
        missing = [n for n in mod.__all__ if getattr(mod, n, None) is None]
        assert missing == [], face
        with pytest.raises(AttributeError, match=f"module '{face}' has no attribute 'no_such_name'"):
            mod.no_such_name  # noqa: B018 - the lookup is the test


def test_moved_modules_named_by_the_docs_warn_and_re_export(monkeypatch):
    """Old paths that docs told users to import keep working for now, with a DeprecationWarning."""
    import importlib
    import sys

    for old, new in (("cifar10s.leaderboard.baselines", "cifar10s.paper"),
                     ("cifar10s.leaderboard.shuffle_table1", "cifar10s.table1.run"),
                     ("cifar10s.leaderboard.table1.run", "cifar10s.table1.run"),
                     ("cifar10s.leaderboard.table1.shuffle", "cifar10s.table1.shuffle"),
                     ("cifar10s.leaderboard.provenance", "cifar10s.leaderboard.scoring.provenance"),
                     ("cifar10s.leaderboard.sandbox.heldout", "cifar10s.leaderboard.scoring.heldout"),
                     ("cifar10s.leaderboard.sandbox.integrity", "cifar10s.leaderboard.scoring.integrity"),
                     ("cifar10s.leaderboard.sandbox.seedruns", "cifar10s.leaderboard.scoring.seedruns"),
                     ("cifar10s.training.augment_authors", "cifar10s.training.augment.authors"),
                     ("cifar10s.training.augment_authors_ops", "cifar10s.training.augment.authors_ops"),
                     ("cifar10s.training.augment_randaugment_tv", "cifar10s.training.augment.randaugment_tv")):
        monkeypatch.delitem(sys.modules, old, raising=False)
        with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
            alias = importlib.import_module(old)
        target = importlib.import_module(new)
        assert alias.__all__ and all(getattr(alias, n) is getattr(target, n) for n in target.__all__)


def test_every_public_exception_has_the_one_base():
    """A caller catches everything the package raises on purpose with ``except Cifar10sError``; each
    error also keeps the builtin base (RuntimeError, ValueError) callers caught before."""
    import importlib
    import inspect
    import warnings

    from cifar10s.errors import Cifar10sError

    outside = []
    for name in sorted(_modules()):
        if name.endswith("__main__") or ".cli" in name and name.endswith("main"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                mod = importlib.import_module(name)
            except ImportError:  # an optional dependency (e.g. pyarrow) that is not installed
                continue
        for attr, obj in vars(mod).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name
                    and not attr.startswith("_") and not issubclass(obj, Warning)):
                if not issubclass(obj, Cifar10sError):
                    outside.append(f"{name}.{attr}")
    assert outside == []
