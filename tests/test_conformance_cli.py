"""``python -m conformance``: a selection that checks nothing exits non-zero and says so; one that checks
something exits 0 only when every row passed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.__main__ import EXIT_NOTHING_CHECKED, EXIT_PASSED, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]


def _has_gpu() -> bool:
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    try:
        import jax

        jax.devices("gpu")
        return True
    except Exception:  # noqa: BLE001 - no JAX, or no GPU platform
        pass
    try:
        import cupy

        return bool(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - no CuPy, or no device
        return False


def test_device_gpu_without_a_gpu_checks_nothing_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    if _has_gpu():
        pytest.skip("a GPU is present: --device gpu checks something here")
    assert main(["--device", "gpu"]) == EXIT_NOTHING_CHECKED != 0
    captured = capsys.readouterr()
    assert "NOTHING WAS CHECKED" in captured.err
    assert "every backend selected by --device gpu was skipped" in captured.err
    assert "0 rows, 0 failed, 3 backends skipped" in captured.out


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--backends", "numpy", "--device", "gpu"], "no backend matches --backends numpy, --device gpu"),
        (["--backends", "numpy", "--checks", "flax"], "no check applies to --backends numpy, --checks flax"),
        (["--backends", "array_api_strict", "--dtypes", "bfloat16", "--checks", "add_noise"], "no check applies"),
    ],
    ids=["no-backend", "no-check", "no-dtype"],
)
def test_any_selection_that_checks_nothing_fails(argv: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(argv[1])
    assert main(argv) == EXIT_NOTHING_CHECKED
    assert why in capsys.readouterr().err


def test_a_selection_that_checks_something_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--backends", "numpy", "--dtypes", "float64", "--checks", "schedule,step_pred"]) == EXIT_PASSED
    captured = capsys.readouterr()
    assert "NOTHING WAS CHECKED" not in captured.err
    assert " pass " in captured.out and "0 failed" in captured.out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--backends", "tensorflow"])
    assert exc.value.code == EXIT_USAGE
    assert "unknown backends" in capsys.readouterr().err


def test_runs_as_python_m_conformance_from_a_checkout() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "conformance", "--backends", "numpy", "--device", "gpu"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == EXIT_NOTHING_CHECKED, done.stdout + done.stderr
    assert "NOTHING WAS CHECKED" in done.stderr
    shown = subprocess.run([sys.executable, "-m", "conformance", "--help"], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=120)
    assert shown.returncode == 0 and "usage: python -m conformance" in shown.stdout
    assert "3 nothing was checked" in " ".join(shown.stdout.split())
