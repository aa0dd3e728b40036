"""Property-based tests (Hypothesis): cross-backend agreement on drawn configs, shapes, dtypes and values, and
the invariants of the math.

Arrays are drawn with ``hypothesis.extra.array_api`` strategies of each namespace: NumPy's and
``array_api_strict``'s directly (``make_strategies_namespace``); for torch, JAX and Dask, where those
strategies do not apply, drawn with NumPy's and converted. Profiles (``ci``: derandomized, 30 examples;
``dev``: 300) come from :mod:`conformance.profiles`. A failure shrinks to a minimal example that the report
shows (``Falsifying example: ...``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.array_api import make_strategies_namespace

import sdeve
from conformance import reference as ref
from conformance.backends import CONFORMANCE_BACKENDS, LoadedBackend, load_backend
from conformance.tolerances import EPS, MAX, check_meta, corrector_rtol, max_relative_error, rtol_for, to_numpy

XPS_NUMPY = make_strategies_namespace(np)
MAX_ELEMENTS = 2048

# --------------------------------------------------------------------------------------------- strategies


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    """sigma_max in [1, 1e4], sigma_min in [1e-4, min(1, sigma_max)), N in [1, 1e4], snr, correct_steps 0..3."""
    log_max = draw(st.floats(0.0, 4.0))
    log_min = draw(st.floats(-4.0, min(0.0, log_max) - 0.01)) if log_max > -3.99 else -4.0
    steps = draw(st.one_of(st.integers(1, 12), st.integers(1, 10_000)))
    return {
        "sigma_min": 10.0**log_min,
        "sigma_max": 10.0**log_max,
        "num_train_timesteps": steps,
        "sampling_eps": 10.0 ** draw(st.floats(-5.0, -0.5)),
        "snr": draw(st.floats(0.01, 1.0)),
        "correct_steps": draw(st.integers(0, 3)),
    }


@st.composite
def shapes(draw: Any) -> tuple[int, ...]:
    """Rank 1..5, batch 1..64, odd and size-1 axes, at most MAX_ELEMENTS elements."""
    batch = draw(st.one_of(st.sampled_from([1, 2, 7, 64]), st.integers(1, 64)))
    rest = draw(XPS_NUMPY.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=9))
    shape = (batch, *rest)
    assume(math.prod(shape) <= MAX_ELEMENTS)
    return shape


def _strategies_for(backend: LoadedBackend) -> Any:
    """The array-API strategies of the backend's namespace where they apply, else NumPy's (converted)."""
    if backend.backend.module == "array_api_strict":
        return make_strategies_namespace(backend.xp)
    return XPS_NUMPY


def _draw_arrays(data: Any, backend: LoadedBackend, shape: tuple[int, ...], dtype_name: str, count: int) -> list[Any]:
    """``count`` standard-ish arrays of ``shape`` drawn in the backend's namespace (or NumPy's, converted)."""
    xps = _strategies_for(backend)
    elements = {"min_value": -4.0, "max_value": 4.0, "allow_nan": False, "allow_infinity": False}
    out = []
    for _ in range(count):
        if xps is XPS_NUMPY:
            drawn = data.draw(xps.arrays(np.float64, shape, elements=elements))
            out.append(backend.asarray(drawn, backend.dtypes()[dtype_name]))
        else:
            out.append(data.draw(xps.arrays(getattr(backend.xp, dtype_name), shape, elements=elements)))
    return out


def _loaded(name: str) -> LoadedBackend:
    backend = next(b for b in CONFORMANCE_BACKENDS if b.name == name)
    try:
        return load_backend(backend)
    except Exception as exc:  # noqa: BLE001 - any reason a backend cannot run is a skip
        pytest.skip(f"{name}: {exc}")


def _scheduler(config: dict[str, Any], backend: LoadedBackend) -> sdeve.ScoreSdeVeScheduler:
    scheduler = sdeve.ScoreSdeVeScheduler(**config, xp=backend.xp, device=backend.device)
    return scheduler


def _log_condition(config: dict[str, Any]) -> float:
    """``1 + max |log sigma|``: the condition of levels computed as ``exp`` of a rounded logarithm."""
    return 1 + max(abs(math.log(config["sigma_min"])), abs(math.log(config["sigma_max"])))


def _few(n: int) -> int:
    """Fewer examples for backends that compile per shape (JAX) or build graphs (Dask)."""
    return max(5, n // 3)


CPU_BACKENDS = ["numpy", "numpy_readonly", "array_api_strict", "torch", "jax", "jax:x64", "dask"]
SLOW = {"jax", "jax:x64", "dask"}


# --------------------------------------------------------------------------------------------- agreement
def _fits(dtype_name: str, *arrays: np.ndarray) -> bool:
    """Whether float64 results are finite and representable in ``dtype_name`` (float16 overflows at 65504)."""
    return all(np.all(np.isfinite(a)) and float(np.max(np.abs(a), initial=0.0)) < MAX[dtype_name] / 4 for a in arrays)


def _agreement(backend_name: str, config: dict[str, Any], shape: tuple[int, ...], dtype_name: str, data: Any) -> None:
    backend = _loaded(backend_name)
    with backend.context():
        if dtype_name not in backend.dtypes():
            return
        dtype = backend.dtypes()[dtype_name]
        scheduler = _scheduler(config, backend)
        n = config["num_train_timesteps"]
        x, s, z = _draw_arrays(data, backend, shape, dtype_name, 3)
        xv, sv, zv = (to_numpy(a) for a in (x, s, z))
        position = data.draw(st.integers(0, n - 1), label="position")
        t = float(ref.timesteps(n, config["sampling_eps"])[position])
        level = float(ref.discrete_sigmas(n, config["sigma_min"], config["sigma_max"])[ref.index_of(t, n)])
        # The score of a Gaussian at the step's level, so every term has a realistic size.
        s = s / level
        sv = to_numpy(s)
        prev_ref, mean_ref, terms = ref.step_pred(xv, sv, zv, np.full(shape[0], t), n, config["sigma_min"], config["sigma_max"], n)
        out = scheduler.step_pred(s, t, x, noise=z)
        sched = "float64" if "float64" in backend.dtypes() else "float32"
        log_cond = _log_condition(config)
        tol = rtol_for(dtype, schedule_dtype=sched, condition=2 * log_cond * float(np.max(terms["kappa"])))
        for actual, want, scale in ((out.prev_sample, prev_ref, terms["prev"]), (out.prev_sample_mean, mean_ref, terms["mean"])):
            check_meta(actual, x)
            if _fits(dtype_name, want):
                assert max_relative_error(actual, want, scale, dtype=dtype) <= tol
        corr = scheduler.step_correct(s, x, noise=z).prev_sample
        check_meta(corr, x)
        with np.errstate(invalid="ignore", divide="ignore"):  # an all-zero score: the step size is 0/0
            corr_ref, _, corr_terms = ref.step_correct(xv, sv, zv, config["snr"])
        if np.any(sv != 0) and _fits(dtype_name, corr_ref):
            tol = corrector_rtol(dtype, math.prod(shape[1:]))
            assert max_relative_error(corr, corr_ref, corr_terms["prev"], dtype=dtype) <= tol
        noisy = scheduler.add_noise(x, z, position)
        want, scale = ref.add_noise(xv, zv, np.full(shape[0], position), ref.discrete_sigmas(n, config["sigma_min"], config["sigma_max"]))
        check_meta(noisy, x)
        if _fits(dtype_name, want):
            assert max_relative_error(noisy, want, scale, dtype=dtype) <= rtol_for(dtype, schedule_dtype=sched, condition=log_cond)


def _make_agreement_test(backend_name: str) -> Any:
    examples = settings.default.max_examples
    examples = _few(examples) if backend_name in SLOW else examples

    @settings(max_examples=examples)
    @given(config=configs(), shape=shapes(), dtype_name=st.sampled_from(["float16", "bfloat16", "float32", "float64"]), data=st.data())
    def test(config: dict[str, Any], shape: tuple[int, ...], dtype_name: str, data: Any) -> None:
        _agreement(backend_name, config, shape, dtype_name, data)

    test.__name__ = f"test_agreement_{backend_name.replace(':', '_')}"
    test.__doc__ = f"{backend_name} agrees with the float64 reference on drawn configs, shapes, dtypes and values."
    return test


for _name in CPU_BACKENDS:
    globals()[f"test_agreement_{_name.replace(':', '_')}"] = _make_agreement_test(_name)


# --------------------------------------------------------------------------------------------- invariants
INVARIANT_BACKENDS = ["numpy", "array_api_strict", "torch"]


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs(), shape=shapes(), data=st.data())
def test_zero_score_zero_noise_is_identity(backend_name: str, config: dict[str, Any], shape: tuple[int, ...], data: Any) -> None:
    """A zero score with zero noise leaves the sample unchanged, bit for bit, in both steps."""
    backend = _loaded(backend_name)
    scheduler = _scheduler(config, backend)
    (x,) = _draw_arrays(data, backend, shape, "float32", 1)
    zero = backend.asarray(np.zeros(shape), x.dtype)
    t = data.draw(st.floats(0.0, 1.0))
    out = scheduler.step_pred(zero, t, x, noise=zero)
    for actual in (out.prev_sample, out.prev_sample_mean, scheduler.step_correct(zero, x, noise=zero).prev_sample):
        check_meta(actual, x)
        np.testing.assert_array_equal(to_numpy(actual), to_numpy(x))


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs(), shape=shapes(), data=st.data())
def test_noise_term_is_diffusion_times_noise(backend_name: str, config: dict[str, Any], shape: tuple[int, ...], data: Any) -> None:
    """``prev_sample - prev_sample_mean == sqrt(g^2) * noise`` with ``g^2 = sigma_j^2 - sigma_{j-1}^2``."""
    backend = _loaded(backend_name)
    scheduler = _scheduler(config, backend)
    x, s, z = _draw_arrays(data, backend, shape, "float64", 3)
    n = config["num_train_timesteps"]
    t = data.draw(st.floats(0.0, 1.0))
    out = scheduler.step_pred(s, t, x, noise=z)
    j = ref.index_of(t, n)
    g = math.sqrt(float(ref.g2(j, config["sigma_min"], config["sigma_max"], n)))
    diff = to_numpy(out.prev_sample) - to_numpy(out.prev_sample_mean)
    scale = np.abs(to_numpy(out.prev_sample)) + np.abs(to_numpy(out.prev_sample_mean))
    kappa = float(ref.condition_g2(j, config["sigma_min"], config["sigma_max"], n))
    log_cond = _log_condition(config)
    tol = rtol_for("float64", schedule_dtype="float64", condition=2 * log_cond * kappa)
    assert max_relative_error(diff, g * to_numpy(z), scale, dtype="float64") <= tol


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs(), shape=shapes(), a=st.floats(-3.0, 3.0), data=st.data())
def test_step_pred_is_affine_in_the_score(backend_name: str, config: dict[str, Any], shape: tuple[int, ...], a: float, data: Any) -> None:
    """``f(a s1 + (1 - a) s2) == a f(s1) + (1 - a) f(s2)`` for fixed sample, time and noise (float64)."""
    backend = _loaded(backend_name)
    scheduler = _scheduler(config, backend)
    x, s1, s2, z = _draw_arrays(data, backend, shape, "float64", 4)
    t = data.draw(st.floats(0.0, 1.0))
    mix = a * s1 + (1 - a) * s2
    outs = [scheduler.step_pred(s, t, x, noise=z) for s in (mix, s1, s2)]
    for field in ("prev_sample", "prev_sample_mean"):
        lhs, r1, r2 = (to_numpy(getattr(o, field)) for o in outs)
        rhs = a * r1 + (1 - a) * r2
        scale = np.abs(lhs) + abs(a) * np.abs(r1) + abs(1 - a) * np.abs(r2) + np.abs(to_numpy(x))
        assert max_relative_error(lhs, rhs, scale, dtype="float64") <= 8 * rtol_for("float64")


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs(), shape=shapes(), data=st.data())
def test_add_noise_at_index_zero_adds_sigma_min_noise(backend_name: str, config: dict[str, Any], shape: tuple[int, ...], data: Any) -> None:
    """``add_noise(x, z, 0) - x == sigma_min * z`` (float64)."""
    backend = _loaded(backend_name)
    scheduler = _scheduler(config, backend)
    x, z = _draw_arrays(data, backend, shape, "float64", 2)
    noisy = to_numpy(scheduler.add_noise(x, z, 0))
    xv, zv = to_numpy(x), to_numpy(z)
    scale = np.abs(xv) + np.abs(noisy) + config["sigma_min"] * np.abs(zv)
    log_cond = 1 + abs(math.log(config["sigma_min"]))
    assert max_relative_error(noisy - xv, config["sigma_min"] * zv, scale, dtype="float64") <= rtol_for(
        "float64", schedule_dtype="float64", condition=log_cond
    )


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs())
def test_discrete_sigmas_are_geometric_from_sigma_min_to_sigma_max(backend_name: str, config: dict[str, Any]) -> None:
    """``discrete_sigmas[0] = sigma_min``, ``[-1] = sigma_max``, constant ratio ``(max/min)^(1/(N-1))``."""
    backend = _loaded(backend_name)
    levels = to_numpy(_scheduler(config, backend).discrete_sigmas)
    n = config["num_train_timesteps"]
    log_cond = _log_condition(config)
    tol = rtol_for("float64", schedule_dtype="float64", condition=log_cond)
    assert levels.shape == (n,)
    assert abs(levels[0] / config["sigma_min"] - 1) <= tol
    if n > 1:
        assert abs(levels[-1] / config["sigma_max"] - 1) <= tol
        log_ratio = math.log(config["sigma_max"] / config["sigma_min"]) / (n - 1)
        # log of each ratio against the expected one, in units of the levels' own relative error.
        assert np.max(np.abs(np.diff(np.log(levels)) - log_ratio)) <= 2 * tol
        assert np.all(np.diff(levels) > 0)


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs())
def test_timesteps_decrease_from_one_to_sampling_eps(backend_name: str, config: dict[str, Any]) -> None:
    """``timesteps[0] = 1``, ``timesteps[-1] = sampling_eps``, strictly decreasing."""
    backend = _loaded(backend_name)
    times = to_numpy(_scheduler(config, backend).timesteps)
    n = config["num_train_timesteps"]
    assert times.shape == (n,)
    assert times[0] == 1.0
    if n > 1:
        assert abs(times[-1] - config["sampling_eps"]) <= 4 * EPS["float64"]
        assert np.all(np.diff(times) < 0)


@pytest.mark.parametrize("backend_name", INVARIANT_BACKENDS)
@given(config=configs(), shape=shapes(), data=st.data())
def test_corrector_step_size_follows_the_snr_rule(backend_name: str, config: dict[str, Any], shape: tuple[int, ...], data: Any) -> None:
    """``eps = 2 (snr * mean ||z_b|| / mean ||s_b||)^2``, and ``step_correct`` moves the sample by
    ``eps * s + sqrt(2 eps) * z`` (float64)."""
    backend = _loaded(backend_name)
    scheduler = _scheduler(config, backend)
    x, s, z = _draw_arrays(data, backend, shape, "float64", 3)
    sv, zv = to_numpy(s), to_numpy(z)
    # A score whose norm is tiny makes the step size overflow (1 / 1e-248 squared): outside the rule's domain.
    assume(float(np.mean(np.abs(sv))) > 1e-3)
    want = ref.corrector_step_size(sv, zv, config["snr"])
    got = float(to_numpy(sdeve.corrector_step_size(s, z, config["snr"])))
    assert abs(got - want) <= rtol_for("float64") * want
    moved = to_numpy(scheduler.step_correct(s, x, noise=z).prev_sample) - to_numpy(x)
    expected = want * sv + math.sqrt(2 * want) * zv
    scale = np.abs(to_numpy(x)) + np.abs(want * sv) + math.sqrt(2 * want) * np.abs(zv)
    assert max_relative_error(moved, expected, scale, dtype="float64") <= 2 * corrector_rtol("float64", math.prod(shape[1:]))
