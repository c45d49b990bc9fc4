"""The shape of the package: imports go one way, the shared pieces sit at the bottom, modules stay readable.

Every ``import llmcourse.x`` / ``from llmcourse.x import y`` in the package is read with ``ast`` --
module-level and inside functions alike, since a lazy import is still a dependency -- and the graph of
modules must have no cycle. The modules that every model uses (the base) may import only each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "llmcourse"

#: The bottom of the package, in order: each may import only the ones before it.
BASE = ["llmcourse.checks", "llmcourse.files", "llmcourse.lm", "llmcourse.optim", "llmcourse.checkpoints"]
MAX_LINES = 600


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """``llmcourse.a.b.c`` -> the longest prefix that is a module of the package."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in modules:
            return candidate
    return None


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for name in names:
            if name == "llmcourse" or name.startswith("llmcourse."):
                target = _resolve(name, modules)
                if target and target != me and target != "llmcourse":
                    found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "llmcourse"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py"):
        (pkg / f).write_text("")
    (pkg / "a.py").write_text("def f():\n    from llmcourse.b import x\n")
    (pkg / "sub" / "c.py").write_text("from . import d\nfrom ..a import f\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, pkg
    try:
        modules = _modules()
        assert _imports(pkg / "a.py", modules) == {"llmcourse.b"}
        assert _imports(pkg / "sub" / "c.py", modules) == {"llmcourse.sub", "llmcourse.a"}
    finally:
        PACKAGE = saved


def test_no_import_cycles():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_base_modules_import_only_what_is_below_them():
    graph = _graph()
    for i, name in enumerate(BASE):
        assert name in graph, f"{name} is missing"
        above = graph[name] - set(BASE[:i])
        assert not above, f"{name} imports {sorted(above)}, which are not below it in the base {BASE[:i]}"


def test_models_and_the_trainer_stand_on_the_base_not_on_rnn():
    graph = _graph()
    for name in ("llmcourse.training", "llmcourse.transformer", "llmcourse.generation", "llmcourse.scaling",
                 "llmcourse.distributed"):
        assert "llmcourse.rnn" not in graph[name], f"{name} imports llmcourse.rnn; the shared pieces are in llmcourse.lm"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_are_a_readable_size_or_say_why_not(name):
    path = _modules()[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert "is longer than" in doc, (f"{path.name} has {lines} lines (over {MAX_LINES}); split it by idea or say "
                                     "in its docstring why it is longer than the others ('... is longer than ...')")


def test_one_argument_checking_convention():
    """No module keeps a private checker of its own beside llmcourse.checks."""
    offenders = []
    for name, path in _modules().items():
        if name == "llmcourse.checks":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in {
                    "_check_int", "_check_number", "_positive", "_positive_int", "_check_positive_int", "_is_int",
                    "_is_number", "_check_fraction", "_check_text", "_as_ids", "_check"}:
                offenders.append(f"{name}.{node.name}")
    assert not offenders, f"private argument checkers beside llmcourse.checks: {offenders}"
