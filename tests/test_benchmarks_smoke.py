"""``python -m benchmarks --quick`` runs and writes well-formed JSON. A smoke test of the harness only: no
timing is asserted (benchmarks are not timed tests)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _quick_run(tmp_path: Path) -> tuple[dict, str]:
    out = tmp_path / "quick.json"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out),
         "--backends", "numpy,torch,jax,dask,array_api_strict", "--torch-threads", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


def test_quick_run(tmp_path: Path) -> None:
    """One test (one run, one xdist worker): the JSON's structure, the rows of issue 5, the markdown."""
    pytest.importorskip("torch")
    payload, stdout = _quick_run(tmp_path)

    assert {"machine", "settings", "rows", "checks", "skipped", "elapsed_s"} <= set(payload)
    assert payload["settings"]["quick"] is True
    assert payload["machine"]["cpu"] and payload["machine"]["cores"]
    assert payload["rows"], "no rows measured"
    for row in payload["rows"]:
        assert {"group", "op", "backend", "front_end", "shape", "times", "ratios"} <= set(row)
        assert row["times"] and row["ratios"]
        for timing in row["times"].values():
            assert _positive(timing["median_s"]) and _positive(timing["min_s"])
            assert timing["samples"] >= 1 and timing["number"] >= 1
        for name, ratio in row["ratios"].items():
            assert _positive(ratio["value"]), name
            assert set(ratio["numerator"]) | set(ratio["denominator"]) <= set(row["times"])
            assert ratio["met"] in (True, False, None)
    for item in payload["skipped"]:
        assert item["reason"]
    for check in payload["checks"]:
        assert check["passed"] in (True, False) and check["detail"]

    have = {(r["group"], r["op"], r["backend"]) for r in payload["rows"]}
    diffusers_skipped = any(s["group"] == "diffusers" for s in payload["skipped"])
    for op in ("step_pred", "step_correct"):
        if not diffusers_skipped:
            assert ("diffusers", op, "torch") in have
        assert ("floor", op, "numpy") in have
    assert {"floor", "overhead"} <= {r["group"] for r in payload["rows"]}
    assert all("ours/floor" in r["ratios"] for r in payload["rows"] if r["group"] == "floor")

    assert stdout.startswith("Machine: ")
    assert "| group | operation | backend · front end |" in stdout


def test_scaling_table_and_plot(tmp_path: Path) -> None:
    """The scaling report and plot from a made-up measurement (no timing run)."""
    pytest.importorskip("matplotlib")
    from benchmarks import scaling

    sweeps = {
        sweep: {name: {"x": xs, "median_s": [1e-3 * x for x in xs], "slope": 1.0} for name in ("numpy", "torch")}
        for sweep, xs in (("batch", [1, 4, 16]), ("steps", [10, 30, 100]))
    }
    payload = {"image": [3, 32, 32], "fixed_steps": 100, "fixed_batch": 4, "sweeps": sweeps,
               "how": {"numpy": "sdeve.sample"}, "skipped": {"jax": "not installed"}, "repeats": 3}
    table = scaling.markdown(payload)
    assert "| numpy | batch |" in table and "| torch | steps |" in table
    path = tmp_path / "scaling.png"
    scaling.plot(payload, str(path), {"cpu": "test", "usable_cores": 1})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
