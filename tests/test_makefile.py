"""The two set-up commands, read with ``make -n`` (print, do not run): each creates the environment, installs what
it needs (a CPU build of torch first when there is no CUDA GPU) and runs; CI runs the test command itself."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if shutil.which("make") is None:
    pytest.skip("make is not installed", allow_module_level=True)


def _dry_run(target: str, tmp_path: Path, *, gpu: bool) -> list[str]:
    """The commands ``make -n target`` would run for a fresh environment, with or without ``nvidia-smi``."""
    bin_dir = tmp_path / ("gpu-bin" if gpu else "no-gpu-bin")
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100'\nexit 0\n" if gpu else "#!/bin/sh\nexit 9\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    # Not the variables of a `make` this may run under (`make test`): they would make this one a sub-make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def test_make_test_sets_up_a_cpu_torch_then_everything_then_runs_pytest(tmp_path: Path) -> None:
    lines = _dry_run("test", tmp_path, gpu=False)
    text = "\n".join(lines)
    venv = str(tmp_path / "venv")
    assert lines[0].endswith(f"-m venv {venv}")
    torch_at = next(k for k, line in enumerate(lines) if 'install --quiet "torch==2.13.0"' in line)
    project_at = next(k for k, line in enumerate(lines) if 'install --quiet -e ".[all,test,docs]"' in line)
    assert torch_at < project_at, "the CPU torch must come before the project, or a CUDA build is pulled"
    assert lines[-1] == f"{venv}/bin/python -m pytest -n auto --maxprocesses 4 -q", text


def test_make_test_with_a_cuda_gpu_takes_the_default_torch_and_cupy(tmp_path: Path) -> None:
    text = "\n".join(_dry_run("test", tmp_path, gpu=True))
    assert "torch==2.13.0" not in text
    assert 'install --quiet -e ".[all,test,docs,cupy]"' in text


def test_make_run_installs_only_what_the_main_job_needs_and_runs_it(tmp_path: Path) -> None:
    lines = _dry_run("run", tmp_path, gpu=False)
    venv = str(tmp_path / "venv")
    assert lines[0].endswith(f"-m venv {venv}")
    assert any('install --quiet -e ".[cli]"' in line for line in lines)
    assert not any("torch" in line for line in lines)
    assert lines[-1] == f"{venv}/bin/python -m sdeve"


def test_a_second_run_skips_the_set_up(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    for stamp in (".run-deps", ".test-deps"):
        (venv / stamp).write_text("")
        os.utime(venv / stamp, (2**31 - 1, 2**31 - 1))  # newer than pyproject.toml
    assert _dry_run("run", tmp_path, gpu=False) == [f"{venv}/bin/python -m sdeve"]
    assert _dry_run("test", tmp_path, gpu=False) == [f"{venv}/bin/python -m pytest -n auto --maxprocesses 4 -q"]


def test_ci_runs_the_test_command_then_the_slow_tests_docs_and_the_wheel() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = [line.strip() for line in ci.splitlines() if line.strip().startswith("make ")]
    assert steps == ["make test", "make test-slow", "make docs", "make wheel-check"]
    assert "python -m conformance --device cpu" in ci
