"""The design's rules, checked from the source: layers import only downward (no cycle, no import of
``sdeve_backends`` from the core, no project import hidden inside a function), the core imports no framework
and draws no random numbers, functions and classes stay small, and the core is typed strictly."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ROOT / "sdeve"
PACKAGES = ("sdeve", "sdeve_backends")
FRAMEWORKS = ("torch", "jax", "jaxlib", "cupy", "dask", "array_api_strict", "tensorflow", "mlx")
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 350


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the two packages, by dotted name."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name an ``ImportFrom`` in ``module`` refers to."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = MODULES[module].name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """``(imported project module, line, inside a function)`` for every project import of ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, child)
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in child.names]
            for name in names:
                target = next((m for m in sorted(MODULES, key=len, reverse=True) if name == m or name.startswith(m + ".")), None)
                if target is not None and target != module:
                    found.append((target, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in _imports(module)} for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return out


def _package_of(module: str) -> str:
    """The package a module belongs to: a package ``__init__`` may import its own submodules (to register them)."""
    return module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    # A package may import the modules below it (it re-exports them); cycles through an __init__ that only
    # does that are not cycles of the design, so edges from a module up to its own package's __init__ count.
    assert _cycles(graph) == []


def test_the_core_never_imports_the_adapters() -> None:
    upward = [(module, target, line) for module in MODULES if module.split(".")[0] == "sdeve"
              for target, line, _ in _imports(module) if target.split(".")[0] == "sdeve_backends"]
    assert upward == []


def test_no_project_import_inside_a_function() -> None:
    hidden = [(module, target, line) for module in MODULES for target, line, inside in _imports(module) if inside]
    assert hidden == []


def test_the_graph_reads_imports_inside_functions() -> None:
    """The checker itself: a hidden import and a cycle are found."""
    source = "def f():\n    from . import b\n"
    tree = ast.parse(source)
    assert any(isinstance(node, ast.ImportFrom) for node in ast.walk(tree))
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def _code_lines(node: ast.AST, lines: list[str]) -> int:
    """Lines of a definition that hold code: not blank, not comments, not the docstring."""
    body = getattr(node, "body", [])
    start = node.lineno
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        docstring = range(body[0].lineno, body[0].end_lineno + 1)
    else:
        docstring = range(0)
    return sum(1 for n in range(start, node.end_lineno + 1)
               if n not in docstring and lines[n - 1].strip() and not lines[n - 1].strip().startswith("#"))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_functions_and_classes_are_small(module: str) -> None:
    text = MODULES[module].read_text(encoding="utf-8")
    lines = text.splitlines()
    too_long = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node, lines) > MAX_FUNCTION_LINES:
            too_long.append((node.name, _code_lines(node, lines)))
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
            too_long.append((node.name, node.end_lineno - node.lineno + 1))
    assert too_long == []


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys, sdeve, sdeve.sampling, sdeve.oracles, sdeve.schedule, sdeve.updates, sdeve.samplers\n"
        f"print(','.join(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_framework_and_draws_no_random_numbers(path: pathlib.Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            root = name.split(".")[0]
            assert root not in FRAMEWORKS, f"{path.name} imports {name}"
            assert root != "random" and not name.startswith("numpy.random"), f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr == "random":
            raise AssertionError(f"{path.name}:{node.lineno} reaches a random module (noise comes from adapters)")


def test_core_is_typed_strictly() -> None:
    if shutil.which("mypy") is None and importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--follow-imports=silent",
                           str(CORE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
