"""The examples run: ``examples/digits.py --smoke`` trains, saves, samples, scores and draws in under 30 s, and
its quality figure separates real digits from noise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"Frechet distance .*: samples ([\d.]+)\s+real digits ([\d.]+)\s+pure noise ([\d.]+)")


@pytest.mark.slow
def test_digits_smoke(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out, model = tmp_path / "digits.png", tmp_path / "digits.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits.py"), "--smoke", "--out", str(out), "--model", str(model)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sampled 96 digits" in done.stdout
    found = FIGURE.search(done.stdout)
    assert found, done.stdout
    samples, real, noise = map(float, found.groups())
    # The figure separates digits from noise by a wide margin ...
    assert 0 < real < noise / 5, (real, noise)
    # ... and sees that 30 training iterations make no digits: the smoke run's samples are nearer noise.
    assert samples > 5 * real, (samples, real)
    assert out.read_bytes()[:4] == b"\x89PNG" and model.stat().st_size > 100_000
    # the saved network loads and samples again; with 8 images each the figure still separates the two
    again = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits.py"), "--smoke", "--load", str(model), "--samples", "8",
         "--out", str(tmp_path / "again.png")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "loaded" in again.stdout
    found = FIGURE.search(again.stdout)
    assert found, again.stdout
    _, real, noise = map(float, found.groups())
    assert real < noise, (real, noise)
