"""The package's shape: rooms by role, small modules, no import cycles, one exceptions module."""

import ast
import builtins
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hubkit"
TESTS = Path(__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every hubkit module ``path`` imports, at module level or inside functions (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from hubkit.formats import rle` runs the package's __init__ and imports the submodule.
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES and n != "hubkit"}
    return found


def _cycle(graph: dict[str, set[str]]):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_lazy_imports_included():
    graph = {name: _imports(path) - {name} for name, path in MODULES.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_a_cycle_would_be_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_rooms_by_role_with_few_top_level_modules_and_small_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"slides", "formats", "models", "inference", "analysis", "training", "kaggle", "cli"} <= rooms
    sizes = {name: len(p.read_text().splitlines()) for name, p in MODULES.items()}
    assert max(sizes.values()) <= 400, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


@pytest.mark.parametrize("room", ["slides", "formats", "models", "inference", "analysis", "training", "kaggle", "cli"])
def test_tests_mirror_the_package(room):
    """Each subpackage has a tests folder, and each test module there names a module of the room."""
    tests = sorted(p.stem.removeprefix("test_") for p in (TESTS / room).glob("test_*.py"))
    assert tests, f"tests/{room}/ has no tests"
    assert all(f"hubkit.{room}.{t}" in MODULES for t in tests), tests


BUILTIN_ERRORS = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
                  and issubclass(getattr(builtins, n), Exception)} - {"NotImplementedError", "StopIteration"}


def test_library_code_raises_only_hubkit_errors():
    """One exceptions module: no ``raise ValueError(...)`` and the like in the library."""
    offenders = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        # A module's __getattr__ must raise AttributeError: that is Python's protocol, not an error of ours.
        protocol = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
                    for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in BUILTIN_ERRORS and id(node) not in protocol:
                    offenders.append(f"{name}:{node.lineno} raises {node.exc.func.id}")
    assert not offenders, offenders
    errors = {n.name for n in ast.walk(ast.parse((PACKAGE / "errors.py").read_text())) if isinstance(n, ast.ClassDef)}
    for name, path in MODULES.items():
        if name == "hubkit.errors":
            continue
        classes = [n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]
        assert not [c for c in classes if c.endswith("Error") and c not in errors], name
