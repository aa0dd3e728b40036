"""The suite's checks can fail: each is run once against a deliberately broken scheduler or adapter and must
report FAIL (a check that cannot fail proves nothing)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import sdeve
from conformance import runner
from conformance.backends import CONFORMANCE_BACKENDS, load_backend
from conformance.checks_frontends import numpy_calls_from_core
from conformance.registry import CHECKS, Result, run_check

runner.import_checks()


def _run(check: str, backend: str = "numpy", dtype: str = "float64") -> list[Any]:
    loaded = load_backend(next(b for b in CONFORMANCE_BACKENDS if b.name == backend))
    return run_check(CHECKS[check], loaded, dtype)


def _statuses(rows: list[Any]) -> dict[str, str]:
    return {r.operation: r.status for r in rows}


def test_unbroken_baseline_passes() -> None:
    for check in ("step_pred", "step_correct", "add_noise", "inputs_unchanged", "noise"):
        assert all(r.status == "pass" for r in _run(check)), check


# 4x the largest step_pred tolerance of the cases: 16 eps for float32 (a float64 schedule adds ~1e-11, far
# below float32's eps), and for float64 the float64-schedule term at N = 10^4 over [1e-4, 1e4] (3.9e-11).
@pytest.mark.parametrize(("dtype", "relative"), [("float32", 64 * 2.0**-23), ("float64", 1.6e-10)])
def test_a_perturbed_predictor_fails(monkeypatch: pytest.MonkeyPatch, dtype: str, relative: float) -> None:
    """``prev_sample`` off by four times its tolerance is reported, ``prev_sample_mean`` left exact passes."""
    real = sdeve.scheduler.ScoreSdeVeScheduler.step_pred

    def perturbed(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = real(self, *args, **kwargs)
        out.prev_sample = out.prev_sample * (1 + relative)
        return out

    monkeypatch.setattr(sdeve.scheduler.ScoreSdeVeScheduler, "step_pred", perturbed)
    statuses = _statuses(_run("step_pred", dtype=dtype))
    assert statuses == {"step_pred.prev_sample": "FAIL", "step_pred.prev_sample_mean": "pass"}


def test_a_wrong_step_size_in_the_corrector_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sdeve.updates.corrector_update

    def wrong(sample: Any, model_output: Any, noise: Any, snr: float, **kwargs: Any) -> Any:
        return real(sample, model_output, noise, snr * (1 + 1e-6), **kwargs)

    monkeypatch.setattr(sdeve.updates, "corrector_update", wrong)
    assert _statuses(_run("step_correct"))["step_correct.prev_sample"] == "FAIL"


def test_a_write_into_the_input_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sdeve.scheduler.ScoreSdeVeScheduler.step_correct

    def writes(self: Any, model_output: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
        out = real(self, model_output, sample, *args, **kwargs)
        sample[...] = out.prev_sample  # the bug the read-only backend exists to catch
        return out

    monkeypatch.setattr(sdeve.scheduler.ScoreSdeVeScheduler, "step_correct", writes)
    assert _statuses(_run("inputs_unchanged"))["inputs_unchanged"] == "FAIL"
    assert _run("inputs_unchanged", backend="numpy_readonly")[0].status == "FAIL"  # raises: read-only


def test_non_normal_noise_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uniform noise of the right variance passes the mean and variance but not the KS test or kurtosis."""
    from sdeve_backends import numpy as numpy_adapter

    def uniform(generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> Any:
        rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
        return (rng.uniform(-np.sqrt(3), np.sqrt(3), shape)).astype(dtype)

    monkeypatch.setattr(numpy_adapter.ADAPTER, "normal", uniform)
    statuses = _statuses(_run("noise"))
    assert statuses["noise.ks"] == "FAIL" and statuses["noise.moments"] == "FAIL"


def test_a_numpy_call_from_the_core_is_caught() -> None:
    """A function compiled as if it lived in ``sdeve/updates.py`` that calls NumPy is reported."""
    namespace: dict[str, Any] = {"np": np}
    source = "def norms(x):\n    return np.sqrt(np.sum(np.asarray(x) ** 2))\n"
    exec(compile(source, sdeve.updates.__file__, "exec"), namespace)  # noqa: S102 - a fixed string
    calls = numpy_calls_from_core(lambda: namespace["norms"]([3.0, 4.0]))
    assert calls, "the profiler saw no NumPy call from the core"


def test_an_eager_path_that_indexes_differently_from_jit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexing a concrete float32 0-d JAX timestep on the host in float64 (not in t's dtype) picks another level
    than the compiled float32 product at ``timesteps[1]`` and ``[2]`` of 2000: the jit check reports it."""
    pytest.importorskip("jax")
    real = sdeve.scheduler.host_index

    def in_float64(t: float, num_timesteps: int, dtype: Any = None) -> int:
        return real(t, num_timesteps, "float64")

    monkeypatch.setattr(sdeve.scheduler, "host_index", in_float64)
    assert _statuses(_run("jit", backend="jax", dtype="float32"))["jit.step_pred"] == "FAIL"


def test_a_wrong_ancestral_noise_fails_the_pc_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PC rows hold every pair to Song's formulas: the ancestral predictor's noise off by 1e-6 fails."""
    assert _statuses(_run("pc_pairs"))["pc_pairs"] == "pass"
    real = sdeve.updates.ancestral_coefficients

    def wrong(sigma: Any, adjacent: Any, *, sqrt: Any) -> Any:
        drift, std = real(sigma, adjacent, sqrt=sqrt)
        return drift, std * (1 + 1e-6)

    monkeypatch.setattr(sdeve.updates, "ancestral_coefficients", wrong)
    assert _statuses(_run("pc_pairs"))["pc_pairs"] == "FAIL"


def test_a_wrong_heun_step_fails_the_ode_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdeve.samplers import ode

    assert _statuses(_run("ode_fixed"))["ode_fixed"] == "pass"
    real = ode._heun

    def wrong(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **kwargs) * (1 + 1e-6)

    monkeypatch.setattr(ode, "_heun", wrong)
    assert _statuses(_run("ode_fixed"))["ode_fixed"] == "FAIL"


def test_a_backend_where_nothing_applied_is_not_called_a_pass() -> None:
    skip = Result("numpy", "cpu", "float64", "step_pred", "step_pred", None, None, "skip")
    passed = Result("numpy", "cpu", "float64", "step_pred", "step_pred", 0.0, 1e-6, "pass")
    assert ": NOTHING CHECKED: 0 passed" in runner.Report(results=[skip]).summary("numpy")
    assert ": PASS: 1 passed" in runner.Report(results=[skip, passed]).summary("numpy")
    failed = dataclasses.replace(passed, status="FAIL", error=1.0)
    assert ": FAIL: 1 passed, 1 failed" in runner.Report(results=[passed, failed]).summary("numpy")
