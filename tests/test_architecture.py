"""The design's rules, checked: the core imports no framework and draws no random numbers; it is typed."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

CORE = pathlib.Path(__file__).resolve().parents[1] / "sdeve"
FRAMEWORKS = ("torch", "jax", "jaxlib", "cupy", "dask", "array_api_strict", "tensorflow", "mlx")


def _core_files() -> list[pathlib.Path]:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 8, files
    return files


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys, sdeve, sdeve.sampler, sdeve.oracles, sdeve.schedule, sdeve.updates\n"
        f"print(','.join(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
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
    if shutil.which("mypy") is None and not _has_module("mypy"):
        pytest.skip("mypy is not installed")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--follow-imports=silent", str(CORE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
