"""``python -m sdeve``: runs on every installed backend, writes the picture, rejects bad arguments with status 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sdeve.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def test_default_command_writes_the_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "ring.png"
    assert main(["--steps", "60", "--batch", "400", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    for phrase in ("weight error", "mean error", "std error", "log-likelihood", "model evaluations", "wrote"):
        assert phrase in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


@pytest.mark.parametrize("backend", ["torch", "jax", "dask", "array_api_strict"])
def test_other_backends(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(backend)
    assert main(["--backend", backend, "--steps", "20", "--batch", "100", "--no-plot", "--no-progress"]) == 0
    assert f"sampler  {backend}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "ten"], "--steps"),
        (["--backend", "tensorflow"], "--backend"),
        (["--snr", "-1"], "--snr"),
        (["--correct-steps", "-2"], "--correct-steps"),
        (["--sigma-min", "20"], "sigma-min"),
        (["--out", "picture.jpg"], ".png"),
        (["--unknown"], "unrecognized"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_module_runs_as_a_command() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "sdeve", "--help"], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0 and "--backend" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "sdeve", "--batch", "0"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "--batch" in bad.stderr


def test_the_ode_sampler_and_the_likelihood_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-plot", "--no-progress", "--sampler", "ode", "--method", "heun", "--steps", "30",
                 "--batch", "300"]) == 0
    out = capsys.readouterr().out
    assert "probability-flow ODE, heun, 30 levels" in out and "59 model evaluations" in out
    line = next(text for text in out.splitlines() if "likelihood of 200 exact draws" in text)
    found = re.search(r"(-?[0-9.]+) nats, exact (-?[0-9.]+);", line)
    assert found is not None, line
    nats, exact = float(found.group(1)), float(found.group(2))
    assert abs(nats - exact) < 0.05 * 2  # two dimensions; the prior mismatch at sigma_max = 12 included
