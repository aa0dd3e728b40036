"""Bad input raises ``ValueError``/``TypeError`` saying what was expected (issue 2, section 4): never an
``IndexError``, a silent wrap-around or a NaN. Config files are covered in ``test_config_interop.py``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sdeve
from conformance.backends import LoadedBackend
from sdeve import ConfigError, SdeVeConfig

N = 5
VALID = {"num_train_timesteps": 10, "snr": 0.15, "sigma_min": 0.01, "sigma_max": 50.0, "sampling_eps": 1e-3,
         "correct_steps": 1}


def _front_ends() -> list[Any]:
    """Every constructor that takes the six settings."""
    out: list[Any] = [SdeVeConfig, sdeve.ScoreSdeVeScheduler]
    try:
        from sdeve_backends.numpy import ScoreSdeVeScheduler as NumpyScheduler

        out.append(NumpyScheduler)
    except ImportError:  # pragma: no cover
        pass
    for module, name in (("sdeve_backends.torch", "ScoreSdeVeScheduler"), ("sdeve_backends.jax", "FlaxScoreSdeVeScheduler")):
        try:
            out.append(getattr(__import__(module, fromlist=[name]), name))
        except ImportError:
            pass
    return out


FRONT_ENDS = _front_ends()
FRONT_END_IDS = [f"{c.__module__.split('.')[-1]}.{c.__name__}" for c in FRONT_ENDS]


# ---------------------------------------------------------------------------------------------- config values
BAD_VALUES = [
    # (field, value, exception, message)
    ("sigma_min", 50.0, ValueError, r"sigma_min must be < sigma_max, got sigma_min=50.0, sigma_max=50.0"),
    ("sigma_min", 60.0, ValueError, r"sigma_min must be < sigma_max"),
    ("sigma_min", 0.0, ValueError, r"sigma_min must be a finite number > 0, got 0.0"),
    ("sigma_min", -1.0, ValueError, r"sigma_min must be a finite number > 0"),
    ("sigma_min", math.nan, ValueError, r"sigma_min must be a finite number > 0, got nan"),
    ("sigma_max", -3.0, ValueError, r"sigma_max must be a finite number > 0"),
    ("sigma_max", math.inf, ValueError, r"sigma_max must be a finite number > 0, got inf"),
    ("sigma_max", math.nan, ValueError, r"sigma_max must be a finite number > 0"),
    ("snr", 0.0, ValueError, r"snr must be a finite number > 0, got 0.0"),
    ("snr", -0.1, ValueError, r"snr must be a finite number > 0"),
    ("snr", math.inf, ValueError, r"snr must be a finite number > 0"),
    ("snr", math.nan, ValueError, r"snr must be a finite number > 0"),
    ("num_train_timesteps", 0, ValueError, r"num_train_timesteps must be >= 1, got 0"),
    ("num_train_timesteps", -5, ValueError, r"num_train_timesteps must be >= 1"),
    ("num_train_timesteps", 2.5, TypeError, r"num_train_timesteps must be an int, got float 2.5"),
    ("num_train_timesteps", "10", TypeError, r"num_train_timesteps must be an int, got str"),
    ("num_train_timesteps", True, TypeError, r"num_train_timesteps must be an int, got bool"),
    ("correct_steps", -1, ValueError, r"correct_steps must be >= 0, got -1"),
    ("correct_steps", False, TypeError, r"correct_steps must be an int, got bool"),
    ("correct_steps", None, TypeError, r"correct_steps must be an int, got NoneType"),
    ("sampling_eps", 0.0, ValueError, r"sampling_eps must lie in the open interval \(0, 1\), got 0.0"),
    ("sampling_eps", 1.0, ValueError, r"sampling_eps must lie in the open interval \(0, 1\)"),
    ("sampling_eps", -1e-3, ValueError, r"sampling_eps must lie in the open interval \(0, 1\)"),
    ("sampling_eps", 1.5, ValueError, r"sampling_eps must lie in the open interval \(0, 1\)"),
    ("sampling_eps", math.nan, ValueError, r"sampling_eps must lie in the open interval \(0, 1\)"),
    ("snr", True, TypeError, r"snr must be a real number, got bool"),
    ("snr", "0.15", TypeError, r"snr must be a real number, got str '0.15'"),
    ("sigma_max", [1348.0], TypeError, r"sigma_max must be a real number, got list"),
]


@pytest.mark.parametrize("front_end", FRONT_ENDS, ids=FRONT_END_IDS)
@pytest.mark.parametrize(("field", "value", "exc", "message"), BAD_VALUES,
                         ids=[f"{f}={v!r}" for f, v, _, _ in BAD_VALUES])
def test_invalid_config_value(front_end: Any, field: str, value: Any, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message):
        front_end(**{**VALID, field: value})


def test_config_error_is_a_value_error_and_replace_validates() -> None:
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ConfigError, match="snr must be a finite number > 0"):
        SdeVeConfig().replace(snr=-1.0)
    with pytest.raises(ValueError, match="corrector_norm must be 'batch' or 'example', got 'global'"):
        sdeve.ScoreSdeVeScheduler(corrector_norm="global")


_FLOAT_FIELDS = ("snr", "sigma_min", "sigma_max", "sampling_eps")
_INT_FIELDS = ("num_train_timesteps", "correct_steps")
_bad_reals = st.one_of(st.floats(max_value=0.0), st.just(math.inf), st.just(math.nan), st.booleans(), st.text(max_size=3),
                       st.none())


@st.composite
def _invalid_config(draw: Any) -> tuple[str, dict[str, Any]]:
    """A config with one setting out of range or of a wrong type (the others valid)."""
    field = draw(st.sampled_from(_FLOAT_FIELDS + _INT_FIELDS))
    if field in _INT_FIELDS:
        low = 0 if field == "num_train_timesteps" else -1
        value = draw(st.one_of(st.integers(max_value=low), st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer()),
                               st.booleans(), st.text(max_size=3), st.none()))
    elif field == "sampling_eps":
        value = draw(st.one_of(_bad_reals, st.floats(min_value=1.0)))
    elif field == "sigma_min":
        value = draw(st.one_of(_bad_reals, st.floats(min_value=VALID["sigma_max"])))
    elif field == "sigma_max":
        value = draw(st.one_of(_bad_reals, st.floats(max_value=VALID["sigma_min"])))
    else:
        value = draw(_bad_reals)
    return field, {**VALID, field: value}


@given(_invalid_config())
def test_any_invalid_config_is_refused_naming_the_setting(case: tuple[str, dict[str, Any]]) -> None:
    field, kwargs = case
    with pytest.raises((ValueError, TypeError)) as info:
        SdeVeConfig(**kwargs)
    assert field in str(info.value)
    assert not isinstance(info.value, IndexError)


@given(st.floats(min_value=1e-6, max_value=1e3), st.floats(min_value=1.0 + 1e-6, max_value=1e6),
       st.floats(min_value=1e-6, max_value=1.0 - 1e-6), st.floats(min_value=1e-6, max_value=1.0))
def test_any_valid_config_builds_a_finite_schedule(sigma_min: float, ratio: float, eps: float, snr: float) -> None:
    scheduler = sdeve.ScoreSdeVeScheduler(num_train_timesteps=7, snr=snr, sigma_min=sigma_min,
                                          sigma_max=sigma_min * ratio, sampling_eps=eps)
    for name in ("timesteps", "sigmas", "discrete_sigmas"):
        assert np.all(np.isfinite(getattr(scheduler, name)))


# ---------------------------------------------------------------------------------------------- step counts
BAD_STEPS = [(0, ValueError, r"num_inference_steps must be >= 1, got 0"), (-3, ValueError, r">= 1, got -3"),
             (2.5, TypeError, r"num_inference_steps must be an int >= 1, got float 2.5"),
             ("3", TypeError, r"must be an int >= 1, got str"), (True, TypeError, r"must be an int >= 1, got True"),
             (None, TypeError, r"must be an int >= 1, got NoneType")]


@pytest.mark.parametrize(("steps", "exc", "message"), BAD_STEPS, ids=[repr(s) for s, _, _ in BAD_STEPS])
def test_bad_num_inference_steps(steps: Any, exc: type, message: str) -> None:
    scheduler = sdeve.ScoreSdeVeScheduler(**VALID)
    with pytest.raises(exc, match=message):
        scheduler.set_timesteps(steps)
    with pytest.raises(exc, match=message):
        scheduler.set_sigmas(steps)
    with pytest.raises(ValueError, match=r"sampling_eps must lie in \(0, 1\), got 0.0"):
        scheduler.set_timesteps(3, sampling_eps=0.0)
    with pytest.raises(ValueError, match=r"sigma_min must be < sigma_max"):
        scheduler.set_sigmas(3, sigma_min=10.0, sigma_max=1.0)


@pytest.mark.parametrize(("steps", "exc", "message"), BAD_STEPS, ids=[repr(s) for s, _, _ in BAD_STEPS])
def test_bad_num_inference_steps_flax(steps: Any, exc: type, message: str) -> None:
    jax_mod = pytest.importorskip("sdeve_backends.jax")
    scheduler = jax_mod.FlaxScoreSdeVeScheduler(**VALID)
    with pytest.raises(exc, match=message):
        scheduler.set_timesteps(scheduler.create_state(), steps)
    with pytest.raises(exc, match=message):
        scheduler.set_sigmas(jax_mod.ScoreSdeVeSchedulerState.create(), steps)


# ---------------------------------------------------------------------------------------------- arrays
def _scheduler() -> sdeve.ScoreSdeVeScheduler:
    scheduler = sdeve.ScoreSdeVeScheduler(**VALID)
    scheduler.set_timesteps(N)
    scheduler.set_sigmas(N)
    return scheduler


def _pair(backend: LoadedBackend, shape: tuple[int, ...] = (3, 4)) -> tuple[Any, Any]:
    dtype = backend.dtypes()["float32"]
    x = np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape)
    return backend.asarray(x, dtype), backend.asarray(-x, dtype)


BAD_TIMES = [1.5, -0.1, math.nan, math.inf]


@pytest.mark.parametrize("t", BAD_TIMES, ids=[repr(t) for t in BAD_TIMES])
def test_timestep_outside_unit_interval(backend: LoadedBackend, t: float) -> None:
    scheduler = _scheduler()
    x, s = _pair(backend)
    match = r"timestep must be a continuous time in \[0, 1\]"
    with pytest.raises(ValueError, match=match):
        scheduler.step_pred(s, t, x, generator=0)
    if backend.name == "dask":
        return  # reading a Dask array's values would compute it: array timesteps are checked where cheap only
    with pytest.raises(ValueError, match=match):
        scheduler.step_pred(s, backend.asarray(np.asarray(t)), x, generator=0)
    with pytest.raises(ValueError, match=match):
        scheduler.step_pred(s, backend.asarray(np.array([0.5, t, 0.2])), x, generator=0)


def test_timestep_ends_are_valid(backend: LoadedBackend) -> None:
    scheduler = _scheduler()
    x, s = _pair(backend)
    for t in (0.0, 1.0, 0, 1, backend.asarray(np.array([0.0, 1.0, 0.5]))):
        out = scheduler.step_pred(s, t, x, generator=0)
        assert np.all(np.isfinite(backend.to_numpy(out.prev_sample)))


def test_timestep_of_wrong_kind_or_shape(backend: LoadedBackend) -> None:
    scheduler = _scheduler()
    x, s = _pair(backend)
    shape_msg = r"timestep must be a scalar or of shape \(B,\) = \(3,\), got"
    for bad in (np.full(4, 0.5), np.full((3, 1), 0.5), np.full((1, 3), 0.5)):
        with pytest.raises(ValueError, match=shape_msg):
            scheduler.step_pred(s, backend.asarray(bad), x, generator=0)
    with pytest.raises(TypeError, match="timestep must be a real number or an array, got str"):
        scheduler.step_pred(s, "0.5", x, generator=0)
    with pytest.raises(TypeError, match="timestep must be a real number or an array, got NoneType"):
        scheduler.step_pred(s, None, x, generator=0)
    if backend.backend.module != "numpy":
        with pytest.raises(TypeError, match="same library as the sample"):
            scheduler.step_pred(s, np.full(3, 0.5), x, generator=0)


def test_model_output_and_sample_mismatch(backend: LoadedBackend) -> None:
    scheduler = _scheduler()
    x, _ = _pair(backend)
    _, s_big = _pair(backend, (3, 5))
    for step in (lambda s_, x_: scheduler.step_pred(s_, 0.5, x_, generator=0),
                 lambda s_, x_: scheduler.step_correct(s_, x_, generator=0)):
        with pytest.raises(ValueError, match=r"model_output and sample must have the same shape, got \(3, 5\) and \(3, 4\)"):
            step(s_big, x)
        if backend.backend.module != "numpy":
            with pytest.raises(TypeError, match="expected arrays of one supported array library"):
                step(np.zeros((3, 4), dtype=np.float32), x)
        with pytest.raises(TypeError, match="model_output must be an array, got list"):
            step([[0.0] * 4] * 3, x)
    with pytest.raises(ValueError, match="must have the same shape"):
        scheduler.add_noise(x, s_big, 1)


def test_integer_and_zero_dimensional_samples(backend: LoadedBackend) -> None:
    scheduler = _scheduler()
    x, s = _pair(backend)
    xp = backend.xp
    ints = xp.astype(x, xp.int32) if backend.name != "dask" else x.astype("int32")
    bools = x > 0
    for bad, name in ((ints, "sample"), (bools, "sample")):
        with pytest.raises(TypeError, match=f"{name} must have a real floating dtype"):
            scheduler.step_pred(s, 0.5, bad, generator=0)
        with pytest.raises(TypeError, match=f"{name} must have a real floating dtype"):
            scheduler.step_correct(s, bad, generator=0)
    with pytest.raises(TypeError, match="model_output must have a real floating dtype"):
        scheduler.step_pred(ints, 0.5, x, generator=0)
    scalar = backend.asarray(np.asarray(1.0), backend.dtypes()["float32"])
    with pytest.raises(ValueError, match="sample must have rank >= 1 with the batch first, got a 0-d array"):
        scheduler.step_pred(scalar, 0.5, scalar, generator=0)
    with pytest.raises(ValueError, match="rank >= 1"):
        scheduler.step_correct(scalar, scalar, generator=0)


def test_add_noise_indices(backend: LoadedBackend) -> None:
    scheduler = _scheduler()
    x, z = _pair(backend)
    range_msg = rf"timesteps must lie in \[0, {N - 1}\]"
    for bad in (-1, N, 10**6):
        with pytest.raises(ValueError, match=range_msg):
            scheduler.add_noise(x, z, bad)
    for bad in (2.5, math.nan):
        with pytest.raises(TypeError, match="timesteps must be integer indices into discrete_sigmas"):
            scheduler.add_noise(x, z, bad)
    with pytest.raises(TypeError, match="timesteps must be integer indices into discrete_sigmas, got dtype"):
        scheduler.add_noise(x, z, backend.asarray(np.array([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match=r"timesteps must be a scalar or of shape \(B,\)"):
        scheduler.add_noise(x, z, backend.asarray(np.array([0, 1, 2, 3])))
    if backend.name != "dask":
        for bad in (np.array([0, 1, N]), np.array([-1, 0, 0])):
            with pytest.raises(ValueError, match=range_msg):
                scheduler.add_noise(x, z, backend.asarray(bad))
    # In-range integer indices (Python, NumPy scalar, array) work.
    for good in (0, N - 1, np.int64(2), backend.asarray(np.array([0, 2, N - 1]))):
        assert np.all(np.isfinite(backend.to_numpy(scheduler.add_noise(x, z, good))))


def test_get_adjacent_sigma_out_of_range() -> None:
    scheduler = _scheduler()
    with pytest.raises(ValueError, match=rf"timesteps must lie in \[0, {N - 1}\]"):
        scheduler.get_adjacent_sigma(np.array([0, N]), None)
    with pytest.raises(TypeError, match="integer indices"):
        scheduler.get_adjacent_sigma(np.array([0.5]), None)


def test_dask_array_with_unknown_batch_size() -> None:
    da = pytest.importorskip("dask.array")
    scheduler = _scheduler()
    x = da.from_array(np.linspace(-1, 1, 12).reshape(6, 2), chunks=(3, 2))
    unknown = x[x[:, 0] > 0]  # boolean indexing: the batch size is NaN until computed
    assert math.isnan(unknown.shape[0])
    msg = r"sample has an unknown batch size .*compute_chunk_sizes\(\)"
    with pytest.raises(ValueError, match=msg):
        scheduler.step_pred(-unknown, 0.5, unknown, generator=0)
    with pytest.raises(ValueError, match=msg):
        scheduler.step_correct(-unknown, unknown, generator=0)
    with pytest.raises(ValueError, match="unknown"):
        scheduler.add_noise(unknown, -unknown, 1)
    known = unknown.compute_chunk_sizes()
    assert isinstance(scheduler.step_pred(-known, 0.5, known, generator=0).prev_sample, da.Array)


def test_more_timesteps_than_discrete_sigmas() -> None:
    scheduler = sdeve.ScoreSdeVeScheduler(**VALID)
    scheduler.set_sigmas(3)
    scheduler.set_timesteps(5)  # 5 timesteps, but only 3 levels: indices up to 4 would be out of range
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"the schedule has 5 timesteps but only 3 discrete sigmas: call set_sigmas\(5\)"):
        scheduler.step_pred(-x, 1.0, x, generator=0)
    with pytest.raises(ValueError, match="5 timesteps but only 3 discrete sigmas"):
        scheduler.step_correct(-x, x, generator=0)
    scheduler.set_sigmas(5)
    assert np.all(np.isfinite(scheduler.step_pred(-x, 1.0, x, generator=0).prev_sample))


def test_generators_of_the_wrong_kind(backend: LoadedBackend) -> None:
    scheduler = _scheduler()
    x, s = _pair(backend)
    with pytest.raises(TypeError, match="expected a"):
        scheduler.step_pred(s, 0.5, x, generator="seed")
    with pytest.raises(TypeError, match="expected a"):
        scheduler.step_correct(s, x, generator=1.5)


# ---------------------------------------------------------------------------------------------- Flax
def test_flax_bad_input() -> None:
    jax = pytest.importorskip("jax")
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler, ScoreSdeVeSchedulerState

    scheduler = FlaxScoreSdeVeScheduler(**VALID)
    x = jax.numpy.ones((2, 3))
    key = jax.random.key(0)
    empty = ScoreSdeVeSchedulerState.create()
    with pytest.raises(ValueError, match="state.timesteps is not set: call set_timesteps and set_sigmas"):
        scheduler.step_pred(empty, -x, 0.5, x, key)
    with pytest.raises(ValueError, match="state.timesteps is not set"):
        scheduler.step_correct(empty, -x, x, key)
    state = scheduler.set_sigmas(scheduler.set_timesteps(empty, 3), 3)
    state5 = scheduler.set_timesteps(state, 5)
    with pytest.raises(ValueError, match="the state has 5 timesteps but 3 discrete sigmas"):
        scheduler.step_pred(state5, -x, 0.5, x, key)
    for t in (1.5, -0.1, math.nan, jax.numpy.asarray([0.5, 2.0])):
        with pytest.raises(ValueError, match=r"timestep must be a continuous time in \[0, 1\]"):
            scheduler.step_pred(state, -x, t, x, key)
    with pytest.raises(ValueError, match=r"timestep must be a scalar or of shape \(B,\)"):
        scheduler.step_pred(state, -x, jax.numpy.full((3,), 0.5), x, key)
    with pytest.raises(ValueError, match="must have the same shape"):
        scheduler.step_pred(state, jax.numpy.ones((2, 4)), 0.5, x, key)
    with pytest.raises(TypeError, match="sample must have a real floating dtype"):
        scheduler.step_correct(state, -x, jax.numpy.ones((2, 3), dtype=jax.numpy.int32), key)
    with pytest.raises(ValueError, match="rank >= 1"):
        scheduler.step_correct(state, jax.numpy.ones(()), jax.numpy.ones(()), key)
    with pytest.raises(TypeError, match="expected a JAX PRNG key"):
        scheduler.step_correct(state, -x, x, "key")
    with pytest.raises(ValueError, match=r"expected one PRNG key, got a key array of shape \(2,\)"):
        scheduler.step_correct(state, -x, x, jax.random.split(key))
    with pytest.raises(TypeError, match="return_dict must be a static Python bool"):
        jax.jit(scheduler.step_correct)(state, -x, x, key, jax.numpy.asarray(True))
    # The old Flax set_sigmas bug: sampling_eps outside (0, 1) is refused, not ignored.
    with pytest.raises(ValueError, match=r"sampling_eps must lie in the open interval \(0, 1\)"):
        scheduler.set_sigmas(empty, 3, sampling_eps=1.5)


def test_unreadable_timesteps_are_clamped_never_wrapped() -> None:
    """Timesteps whose values cannot be read cheaply (a Dask graph, a JAX tracer) cannot raise: out-of-range
    values clamp to the nearest end of the schedule and NaN to level 0, never an undefined NaN-to-int cast."""
    scheduler = _scheduler()
    bad, clamped = np.array([0.5, math.nan, 2.0, -1.0]), np.array([0.5, 0.0, 1.0, 0.0])
    x = np.linspace(1.0, 2.0, 8).reshape(4, 2)
    z = np.ones((4, 2))
    want = scheduler.step_pred(-x, clamped, x, noise=z).prev_sample
    da = pytest.importorskip("dask.array")
    got = scheduler.step_pred(-da.from_array(x, chunks=2), da.from_array(bad, chunks=2), da.from_array(x, chunks=2),
                              noise=da.from_array(z, chunks=2)).prev_sample.compute()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    step = jax.jit(lambda t: scheduler.step_pred(-jnp.asarray(x), t, jnp.asarray(x), noise=jnp.asarray(z)).prev_sample)
    np.testing.assert_allclose(np.asarray(step(jnp.asarray(bad))), want, rtol=1e-5)
