"""The command's promise, for values the parser accepts (issue 12, class 7): a bad argument prints a message
naming the option and exits with status 2 before anything runs; every accepted argument gives a finite
report. ``main()`` is small functions with their imports at the top."""

from __future__ import annotations

import ast
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sdeve.__main__ as cli
from sdeve.config import MAX_CORRECT_STEPS, MAX_SNR, MAX_TIMESTEPS

FAST = ["--no-plot", "--no-progress", "--steps", "30", "--batch", "400"]


def _exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command, expect status 2 before any output on stdout; return stderr."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the run started
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch", str(10**14)], "--batch 100000000000000 with --steps 500 needs about 64 PB of memory"),
        (["--batch", str(2**63)], "argument --batch: expected a whole number <= 9223372036854775807"),
        (["--steps", str(2**63 - 1)], f"argument --steps: expected a whole number <= {MAX_TIMESTEPS}"),
        (["--steps", "9" * 5000], "argument --steps: expected a whole number >= 1, got '99999999999999999999..."),
        (["--correct-steps", str(2**63)], f"argument --correct-steps: expected a whole number <= {MAX_CORRECT_STEPS}"),
        (["--snr", "1e200"], "argument --snr: snr must be <= 1"),
        (["--snr", "1.5"], "argument --snr: snr must be <= 1"),
        (["--snr", "1e400"], "argument --snr: expected a finite number > 0"),
        (["--seed", str(2**70)], "argument --seed: expected a whole number <= 9223372036854775807"),
        (["--seed", str(2**63)], "argument --seed"),
        (["--sigma-min", "1e-200", "--sigma-max", "1e200"], "argument --sigma-max: at most 1.84e+17 for a float32 run"),
        (["--sigma-max", "1e19"], "argument --sigma-max: at most 1.84e+17"),
        (["--sigma-min", "1e-40"], "argument --sigma-min: at least 1.18e-38 (the smallest normal float32"),
        (["--sigma-min", "5e-324"], "argument --sigma-min"),
        (["--sigma-min", "12", "--sigma-max", "12"], "--sigma-min (12.0) must be smaller than --sigma-max (12.0)"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_values_the_parser_accepts_are_checked_before_the_run(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _exit_2(argv + ["--no-progress"], capsys)
    assert message in err, err
    assert len(err) < 2000


def test_out_naming_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pictures.png").mkdir()
    assert "is a directory" in _exit_2(["--out", str(tmp_path / "pictures.png")], capsys)
    assert "must name a .png file" in _exit_2(["--out", str(tmp_path)], capsys)
    assert "must name a .png file" in _exit_2(["--out", str(tmp_path) + os.sep], capsys)


def test_out_below_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("x")
    err = _exit_2(["--out", str(tmp_path / "notes.txt" / "sub" / "ring.png")], capsys)
    assert "is not a directory" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_out_in_a_read_only_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert "cannot be written" in _exit_2(["--out", str(folder / "ring.png")], capsys)
        assert "cannot create folders" in _exit_2(["--out", str(folder / "new" / "ring.png")], capsys)
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_out_where_no_file_can_be_created_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot be written" in _exit_2(["--out", "/proc/sdeve-ring.png"], capsys)


def test_checking_out_creates_and_changes_nothing(tmp_path: Path) -> None:
    parser = cli.build_parser()
    new = tmp_path / "new.png"
    cli._check_out(parser, str(new))
    assert not new.exists()
    old = tmp_path / "old.png"
    old.write_bytes(b"keep")
    cli._check_out(parser, str(old))
    assert old.read_bytes() == b"keep"
    cli._check_out(parser, str(tmp_path / "a" / "b" / "ring.png"))
    assert not (tmp_path / "a").exists()


def test_memory_is_checked_against_what_is_available(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_available_memory", lambda: 10**6)
    err = _exit_2(["--batch", "2000", "--no-plot"], capsys)
    assert "--batch 2000 with --steps 500 needs about 2.3 MB of memory" in err and "1 MB is available" in err
    monkeypatch.setattr(cli, "_available_memory", lambda: None)  # unknown: not refused
    _settings(["--batch", str(10**9), "--no-plot"])


def _settings(argv: list[str]) -> Any:
    """The checks of the command line, without the run."""
    parser = cli.build_parser()
    return cli._settings(parser, parser.parse_args(argv))


def _accepted(argv: list[str]) -> bool:
    try:
        _settings(argv + ["--no-plot", "--no-progress"])
    except SystemExit as exc:
        assert exc.code == 2
        return False
    return True


@given(st.integers(min_value=0, max_value=2**80))
def test_any_seed_is_accepted_exactly_when_every_backend_takes_it(seed: int) -> None:
    assert _accepted(["--seed", str(seed)]) == (seed <= cli.MAX_SEED)


@given(st.floats(min_value=0.0, max_value=sys.float_info.max, exclude_min=True) | st.sampled_from([1e-320, 1.0]))
def test_any_snr_is_accepted_exactly_in_range(snr: float) -> None:
    assert _accepted(["--snr", repr(snr)]) == (snr <= MAX_SNR)


@given(st.integers(min_value=1, max_value=10**20))
def test_any_batch_is_accepted_exactly_when_it_fits(batch: int) -> None:
    available = 8 * 2**30
    original = cli._available_memory
    cli._available_memory = lambda: available
    try:
        needed = batch * cli.BYTES_PER_POINT + cli.DEFAULT_STEPS * cli.BYTES_PER_STEP
        assert _accepted(["--batch", str(batch)]) == (needed <= available)
    finally:
        cli._available_memory = original


@given(st.floats(min_value=1e-300, max_value=1e300))
def test_any_sigma_max_is_accepted_exactly_when_float32_holds_it(sigma_max: float) -> None:
    largest = math.sqrt(float(np.finfo(np.float32).max)) / cli.FLOAT32_HEADROOM
    assert _accepted(["--sigma-min", "1e-30", "--sigma-max", repr(sigma_max)]) == (1e-30 < sigma_max <= largest)


def _report_numbers(text: str) -> list[float]:
    rows = [line for line in text.splitlines() if line.startswith("  ") and ("error" in line or "log-lik" in line)]
    assert len(rows) == 4, text
    return [float(field.rstrip("%")) for row in rows for field in row.split()[-2:]]


def test_a_component_without_samples_reads_n_a_not_inf(capsys: pytest.CaptureFixture[str]) -> None:
    """With 16 points some of the 8 components get none: the report has no figure there, and says why."""
    assert cli.main(["--no-plot", "--no-progress", "--steps", "3", "--batch", "16"]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out and "nan" not in out
    assert "n/a: a component received no samples" in out


def test_figures_too_wide_for_their_column_use_exponents() -> None:
    assert cli._cell(219685.5681, ".4f") == "2.197e+05" and cli._cell(0.5, ".2f", 100.0, "%") == "50.00%"
    assert cli._cell(math.inf, ".4f") == cli._cell(math.nan, ".4f") == "n/a"


def test_the_extreme_accepted_sigmas_give_a_finite_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(FAST + ["--sigma-min", "1.2e-38", "--sigma-max", "1.8e17", "--snr", "1"]) == 0
    assert all(math.isfinite(v) for v in _report_numbers(capsys.readouterr().out))


def test_the_extreme_accepted_sigmas_are_finite_on_jax(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jax")
    status = cli.main(FAST + ["--backend", "jax", "--sigma-min", "1.2e-38", "--sigma-max", "12"])
    assert status == 0 and all(math.isfinite(v) for v in _report_numbers(capsys.readouterr().out))


def test_a_run_that_still_goes_non_finite_exits_1_without_a_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "sample", lambda model, shape, **kwargs: np.full(shape, np.inf, dtype=np.float32))
    assert cli.main(FAST) == 1
    captured = capsys.readouterr()
    assert "non-finite samples; no report" in captured.err and "quality" not in captured.out


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_the_largest_seed_runs_on_backends_with_limits(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(backend)
    assert cli.main(FAST + ["--backend", backend, "--seed", str(cli.MAX_SEED), "--steps", "1"]) == 0
    assert all(math.isfinite(v) for v in _report_numbers(capsys.readouterr().out))


# ---------------------------------------------------------------------------------------------- shape of the code
_TREE = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
_FUNCTIONS = [node for node in ast.walk(_TREE) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("function", _FUNCTIONS, ids=lambda f: f.name)
def test_every_function_is_small(function: ast.FunctionDef) -> None:
    assert function.end_lineno is not None and function.end_lineno - function.lineno + 1 <= 50


def test_no_project_import_is_hidden_inside_a_function() -> None:
    for function in _FUNCTIONS:
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and not (node.module or "").startswith("sdeve"), (function.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("sdeve") for alias in node.names), function.name
