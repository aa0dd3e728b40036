"""The examples run: ``examples/digits.py --smoke`` trains, saves, samples and draws in well under 30 s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_digits_smoke(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out, model = tmp_path / "digits.png", tmp_path / "digits.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits.py"), "--smoke", "--out", str(out), "--model", str(model)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sampled 96 digits" in done.stdout and "classifier confidence" in done.stdout
    assert out.read_bytes()[:4] == b"\x89PNG" and model.stat().st_size > 100_000
    # the saved network loads and samples again
    again = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits.py"), "--smoke", "--load", str(model), "--samples", "8",
         "--out", str(tmp_path / "again.png")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "loaded" in again.stdout
