"""Every ```` ```python ```` block of the README and of the documentation runs as it stands, on its own, in a
fresh interpreter with the checkout importable and an empty working folder.

A block whose imports are not installed is skipped with that reason, and so is one that asks for a CUDA device
on a machine without one. The README's blocks run in the fast suite; the documentation's are slow (each starts
an interpreter that imports torch or JAX).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of each python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in BLOCK.finditer(text)]


def _params(paths: list[Path], *marks: pytest.MarkDecorator) -> list:
    return [pytest.param(code, id=f"{path.relative_to(ROOT)}:{line}", marks=list(marks))
            for path in paths for line, code in blocks(path)]


DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))
README = _params([ROOT / "README.md"])
DOCS = _params(DOC_PAGES, pytest.mark.slow)


def _missing(code: str) -> str | None:
    """Why this block cannot run here, or ``None``."""
    for node in ast.walk(ast.parse(code)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for name in names:
            root = name.split(".")[0]
            if importlib.util.find_spec(root) is None:
                return f"needs {root}, which is not installed"
    if "cuda" in code:
        try:
            import torch
        except ImportError:
            return "needs torch with a CUDA device"
        if not torch.cuda.is_available():
            return "needs a CUDA device"
    return None


def _run(code: str, tmp_path: Path) -> None:
    why = _missing(code)
    if why:
        pytest.skip(why)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 0, f"the block failed:\n{code}\n--- stderr ---\n{done.stderr[-4000:]}"


def test_the_readme_and_the_docs_have_python_blocks() -> None:
    assert len(README) >= 5
    assert len(DOCS) >= 10


@pytest.mark.parametrize("code", README)
def test_readme_block_runs(code: str, tmp_path: Path) -> None:
    _run(code, tmp_path)


@pytest.mark.parametrize("code", DOCS)
def test_docs_block_runs(code: str, tmp_path: Path) -> None:
    _run(code, tmp_path)
