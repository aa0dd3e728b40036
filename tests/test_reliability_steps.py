"""Issue 12 in the schedulers, the sampler, the oracle and the adapters: every input a clear answer, the same on
every backend; caches that forget. (Config files and the CLI: ``test_reliability_config.py``,
``test_cli_limits.py``; the distributed engine: ``test_distributed.py``.)"""

from __future__ import annotations

import decimal
import fractions
import gc
import weakref
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sdeve
from sdeve import oracles

HUGE = 10**400


def _scheduler(**kwargs: Any) -> sdeve.ScoreSdeVeScheduler:
    scheduler = sdeve.ScoreSdeVeScheduler(**kwargs)
    scheduler.set_timesteps(10)
    scheduler.set_sigmas(10)
    return scheduler


def _model(x: Any, sigma: Any) -> Any:
    return -x / (1 + sigma[:, None] ** 2)


# ---------------------------------------------------------------------------------------------- class 1: huge numbers
@given(st.integers(min_value=10**6 + 1, max_value=2**80))
def test_huge_step_counts_are_a_value_error_everywhere(steps: int) -> None:
    scheduler = _scheduler()
    for call in (lambda: scheduler.set_timesteps(steps), lambda: scheduler.set_sigmas(steps),
                 lambda: scheduler.init(steps, (2, 2)),
                 lambda: sdeve.sample(_model, (2, 2), num_inference_steps=steps)):
        with pytest.raises(ValueError, match="num_inference_steps must be <= 1000000"):
            call()


def test_huge_step_counts_never_reach_the_flax_or_torch_schedules() -> None:
    pytest.importorskip("jax")
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler

    flax = FlaxScoreSdeVeScheduler()
    with pytest.raises(ValueError, match="<= 1000000"):
        flax.set_timesteps(flax.create_state(), 2**63 - 1)  # once aborted the process inside XLA
    pytest.importorskip("torch")
    from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn

    with pytest.raises(ValueError, match="<= 1000000"):
        DropIn().set_timesteps(2**63 - 1)


@pytest.mark.parametrize("value", [HUGE, -HUGE])
def test_numbers_beyond_the_float_range_are_value_errors(value: int) -> None:
    scheduler = _scheduler()
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="timestep"):
        scheduler.step_pred(-x, value, x, generator=0)
    with pytest.raises(ValueError, match="strength"):
        sdeve.sample(_model, (2, 2), init=np.ones((2, 2)), strength=value, num_inference_steps=3)
    for name in ("sigma_max", "sigma_min"):
        with pytest.raises(ValueError, match=name):
            scheduler.set_sigmas(10, **{name: value})
    with pytest.raises(ValueError, match="sampling_eps"):
        scheduler.set_timesteps(10, sampling_eps=value)


@pytest.mark.parametrize("library", ["numpy", "torch", "jax", "dask"])
@pytest.mark.parametrize("seed", [-1, 2**63, 2**70])
def test_out_of_range_seeds_are_one_value_error_on_every_backend(library: str, seed: int) -> None:
    pytest.importorskip(library)
    with pytest.raises(ValueError, match=r"seed \(generator\) must lie in \[0, 2\*\*63 - 1\]"):
        sdeve.sample(_model, (2, 2), num_inference_steps=2, xp=library, generator=seed)


def _on(library: str, values: np.ndarray) -> Any:
    if library == "numpy":
        return values
    if library == "dask":
        import dask.array as da

        return da.from_array(values, chunks=(1, 3))
    return sdeve._xp.resolve_namespace(library).asarray(values)


def _host(x: Any) -> np.ndarray:
    x = x.compute() if hasattr(x, "compute") else x
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)


@pytest.mark.parametrize("score", [1e-20, 1e-30, 1e30, 1e38, 0.0], ids=lambda v: f"score={v:g}")
def test_a_score_too_small_or_large_for_the_step_is_one_answer_on_every_backend(score: float) -> None:
    """float32: the step size either fits or the sample is returned unchanged, whatever a library does with
    subnormal numbers (NumPy and torch keep them, XLA flushes them)."""
    x = np.ones((2, 3), dtype=np.float32)
    z = np.full((2, 3), 0.5, dtype=np.float32)
    s = np.full((2, 3), score, dtype=np.float32)
    results = {}
    for library in ("numpy", "torch", "jax", "dask", "array_api_strict"):
        try:
            xp = sdeve._xp.resolve_namespace(library)
        except ImportError:
            continue
        arrays = [_on(library, v) if library != "array_api_strict" else xp.asarray(v) for v in (s, x, z)]
        out = _scheduler().step_correct(arrays[0], arrays[1], noise=arrays[2]).prev_sample
        results[library] = _host(out)
    reference = results.pop("numpy")
    assert np.all(np.isfinite(reference))
    for library, got in results.items():
        np.testing.assert_allclose(got, reference, rtol=1e-6, err_msg=library)
    if score < 1e-19 or score > 1e19:
        np.testing.assert_array_equal(reference, x)  # the step cannot be represented: nothing moves


def test_a_huge_sample_shape_names_the_shape() -> None:
    for shape in ((2**63, 2), (2**40, 2**40)):
        with pytest.raises(ValueError, match="shape"):
            sdeve.sample(_model, shape, num_inference_steps=2)
    with pytest.raises(ValueError, match="shape"):
        oracles.ring().sample(2**63)


def test_the_oracle_refuses_numbers_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="weights"):
        oracles.GaussianMixture([HUGE], [[0.0, 0.0]], [1.0])
    with pytest.raises(ValueError, match="stds"):
        oracles.GaussianMixture([1.0], [[0.0, 0.0]], [1e200])
    assert np.all(np.isfinite(oracles.ring().score(np.ones((2, 2), np.float32), 1e15)))
    with pytest.raises(ValueError, match="sigma=1e\\+200 is too large"):
        oracles.ring().score(np.ones((2, 2), np.float32), 1e200)
    with pytest.raises(TypeError, match="real floating"):
        oracles.ring().score(np.ones((2, 2), np.int32), 1.0)


# ---------------------------------------------------------------------------------------------- class 2: valid configs
def test_extreme_but_valid_levels_give_a_finite_schedule() -> None:
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=1e-200, sigma_max=1e200)
    for name in ("timesteps", "sigmas", "discrete_sigmas"):
        assert np.all(np.isfinite(getattr(scheduler, name))) and np.all(getattr(scheduler, name) > 0)
    span = np.log(1e200) - np.log(1e-200)
    np.testing.assert_allclose(scheduler.sigmas[[0, -1]], [1e200, np.exp(np.log(1e-200) + 1e-5 * span)], rtol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_levels_a_dtype_cannot_hold_are_refused_before_the_run(dtype: str) -> None:
    huge = sdeve.ScoreSdeVeScheduler(sigma_min=1e-3, sigma_max=1e200)
    with pytest.raises(ValueError, match=f"sigma_max=1e\\+200 is too large for {dtype}"):
        sdeve.sample(_model, (2, 2), scheduler=huge, num_inference_steps=3, dtype=dtype)
    with pytest.raises(ValueError, match="sigma_max"):
        huge.step_pred(np.ones((2, 2), dtype), 0.5, np.ones((2, 2), dtype), generator=0)
    if dtype == "float32":
        tiny = sdeve.ScoreSdeVeScheduler(sigma_min=1e-40, sigma_max=10.0)
        with pytest.raises(ValueError, match="sigma_min=1e-40 is below the smallest normal"):
            sdeve.sample(_model, (2, 2), scheduler=tiny, num_inference_steps=3, dtype=dtype)


def test_the_drop_in_refuses_levels_its_float32_schedule_cannot_hold() -> None:
    pytest.importorskip("torch")
    from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn

    for kwargs in ({"sigma_max": 1e39}, {"sigma_min": 1e-45}):
        with pytest.raises(ValueError, match="float32"):
            DropIn(**kwargs)


def test_non_floating_dtypes_are_refused() -> None:
    jnp = pytest.importorskip("jax.numpy")
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler

    for dtype in (jnp.int32, jnp.complex64, jnp.bool_):
        with pytest.raises(TypeError, match="real floating"):
            FlaxScoreSdeVeScheduler(dtype=dtype)
    state, _ = _scheduler().init(3, (2, 2))
    for dtype in (np.int32, np.bool_, np.complex64):
        with pytest.raises(TypeError, match="real floating"):
            _scheduler().initial_sample(state, dtype=dtype)


def test_ndarray_subclasses_are_refused_with_the_conversion_to_use() -> None:
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match=r"numpy.asarray\(sample\)"):
        _scheduler().step_pred(-x, 0.5, np.asmatrix(x), generator=0)
    with pytest.raises(TypeError, match="ndarray subclass"):
        sdeve.sample(lambda x, s: np.asmatrix(-x), (2, 3), num_inference_steps=2)


def test_longdouble_samples_compute_in_longdouble() -> None:
    x = np.full((2, 3), 1 + 1e-18, dtype=np.longdouble)
    if x[0, 0] == 1:
        pytest.skip("longdouble is float64 here")
    out = _scheduler().step_correct(np.zeros_like(x), x, noise=np.zeros_like(x)).prev_sample
    assert out.dtype == np.longdouble
    np.testing.assert_array_equal(out, x)
    tiny = _scheduler().step_pred(np.full_like(x, 1e-30), 0.5, x, noise=np.zeros_like(x)).prev_sample_mean
    assert np.all(tiny > x)  # a float64 computation would lose the update in the rounding


# ---------------------------------------------------------------------------------------------- class 3: validation
@pytest.mark.parametrize("shape", ["32", (3, 2.5), (3, True), (3, "2"), 3, None, (2, np.float64(2.0))])
def test_shapes_must_be_sequences_of_ints(shape: Any) -> None:
    with pytest.raises(TypeError, match="shape must be a tuple of ints"):
        sdeve.sample(_model, shape, num_inference_steps=2)
    with pytest.raises(TypeError, match="shape must be a tuple of ints"):
        _scheduler().init(3, shape)


@pytest.mark.parametrize("strength", [np.float32(0.5), np.float64(0.5), fractions.Fraction(1, 2),
                                      decimal.Decimal("0.5"), 0.5, np.int64(1)])
def test_any_real_strength_is_accepted(strength: Any) -> None:
    init = np.zeros((2, 2), dtype=np.float32)
    out = sdeve.sample(_model, (2, 2), init=init, strength=strength, num_inference_steps=4, generator=0)
    assert out.shape == (2, 2)


@pytest.mark.parametrize(("flag", "value"), [("denoise", "no"), ("denoise", 1), ("progress", "yes")])
def test_flags_must_be_bools(flag: str, value: Any) -> None:
    with pytest.raises(TypeError, match=f"{flag} must be a bool"):
        sdeve.sample(_model, (2, 2), num_inference_steps=2, **{flag: value})


def test_the_sampler_checks_the_model_output_as_the_steps_do() -> None:
    cases = [(lambda x, s: (-x).astype(np.complex64), TypeError, "real floating"),
             (lambda x, s: np.ones(x.shape, dtype=np.int32), TypeError, "real floating"),
             (lambda x, s: np.ones((1, 2)), ValueError, "score with x's shape")]
    torch = pytest.importorskip("torch")
    cases.append((lambda x, s: torch.zeros(x.shape), TypeError, "one library"))
    for model, exc, message in cases:
        with pytest.raises(exc, match=message):
            sdeve.sample(model, (2, 2), num_inference_steps=2)
    with pytest.raises(TypeError, match="one library"):
        sdeve.sample(lambda x, s: np.zeros(tuple(x.shape), dtype=np.float32), (2, 2), num_inference_steps=2,
                     xp="torch")


def test_a_wrong_noise_is_blamed_on_the_noise() -> None:
    x = np.ones((2, 3))
    scheduler = _scheduler()
    for call in (lambda n: scheduler.step_pred(-x, 0.5, x, noise=n), lambda n: scheduler.step_correct(-x, x, noise=n),
                 lambda n: scheduler.add_noise(x, n, 1)):
        with pytest.raises(ValueError, match="noise and sample must have the same shape"):
            call(np.ones((2, 4)))
        with pytest.raises(TypeError, match="noise must have a real floating dtype"):
            call(np.ones((2, 3), dtype=np.int32))


@pytest.mark.parametrize(("name", "value"), [("sigma_max", True), ("sigma_max", "5"), ("sigma_min", None or b"1")])
def test_overrides_are_checked_as_the_config_checks_them(name: str, value: Any) -> None:
    with pytest.raises(TypeError, match=name):
        _scheduler().set_sigmas(10, **{name: value})


@pytest.mark.parametrize("value", ["0.1", True])
def test_sampling_eps_overrides_are_numbers(value: Any) -> None:
    with pytest.raises(TypeError, match="sampling_eps"):
        _scheduler().set_timesteps(10, sampling_eps=value)


def test_integral_reals_count_steps_and_decimal_times_are_times() -> None:
    scheduler = _scheduler()
    scheduler.set_timesteps(np.float32(5.0))
    assert scheduler.timesteps.shape == (5,)
    x = np.ones((2, 3))
    a = scheduler.step_pred(-x, decimal.Decimal("0.5"), x, noise=x).prev_sample
    b = scheduler.step_pred(-x, fractions.Fraction(1, 2), x, noise=x).prev_sample
    np.testing.assert_array_equal(a, b)


def test_indices_are_integers() -> None:
    scheduler = _scheduler()
    x = np.ones((2, 3))
    assert scheduler.get_adjacent_sigma(5, None) == pytest.approx(float(scheduler.discrete_sigmas[4]))
    assert scheduler.get_adjacent_sigma(0, None) == 0.0
    for bad in (True, np.float32(1), 1.0):
        with pytest.raises(TypeError, match="timesteps must be integer indices"):
            scheduler.add_noise(x, x, bad)


def test_the_flax_front_end_validates_as_the_generic_one() -> None:
    jnp = pytest.importorskip("jax.numpy")
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler

    flax = FlaxScoreSdeVeScheduler()
    state = flax.set_sigmas(flax.set_timesteps(flax.create_state(), 10), 10)
    x = jnp.ones((2, 3))
    with pytest.raises(TypeError, match="timestep must be a real number or an array"):
        flax.step_pred(state, -x, "0.5", x, key=0)
    for bad in ([10], [-5]):
        with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 9\]"):
            flax.get_adjacent_sigma(state, jnp.asarray(bad), None)
    for name, value in (("sigma_max", True), ("sigma_min", "1")):
        with pytest.raises(TypeError, match=name):
            flax.set_sigmas(state, 10, **{name: value})


# ---------------------------------------------------------------------------------------------- class 4: caches
def test_the_jax_program_cache_reuses_one_program_for_fresh_closures_and_keeps_none_alive() -> None:
    jnp = pytest.importorskip("jax.numpy")
    from sdeve_backends.jax import BACKEND

    BACKEND.programs.clear()
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_max=5.0)
    refs = []
    for k in range(4):
        params = jnp.full((512, 512), float(k))  # 1 MiB of "parameters" per model
        model = (lambda p: lambda x, s: -x / (1 + s[:, None] ** 2) + 0 * p[0, 0])(params)
        refs.append(weakref.ref(params))
        sdeve.sample(model, (4, 2), xp="jax", scheduler=scheduler, num_inference_steps=5, generator=k)
        del params, model
    assert len(BACKEND.programs) == 1  # one program: the parameters are arguments, not constants
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_the_jax_program_cache_forgets_an_object_model_when_it_dies() -> None:
    pytest.importorskip("jax")
    from sdeve_backends.jax import BACKEND

    BACKEND.programs.clear()
    mixture = oracles.ring()
    sdeve.sample(mixture, (8, 2), xp="jax", num_inference_steps=4, generator=0,
                 scheduler=sdeve.ScoreSdeVeScheduler(sigma_max=12.0))
    assert len(BACKEND.programs) == 1
    ref = weakref.ref(mixture)
    del mixture
    gc.collect()
    assert ref() is None and len(BACKEND.programs) == 0


def test_the_jax_program_cache_is_bounded() -> None:
    pytest.importorskip("jax")
    from sdeve_backends import jax as jax_backend

    programs = jax_backend._Programs(3)
    for k in range(6):
        programs.run(lambda model, dyn, static: dyn * 2, oracles.ring(), jax_backend.jnp.ones(2), ("static", k))
    assert len(programs) <= 3


def test_one_flax_corrector_program_serves_every_snr() -> None:
    jnp = pytest.importorskip("jax.numpy")
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler, _corrector_kernel

    x = jnp.ones((2, 3))
    before = None
    for snr in (0.05, 0.1, 0.15, 0.2, 0.3):
        flax = FlaxScoreSdeVeScheduler(snr=snr)
        flax.step_correct(flax.create_state(), -x, x, key=0)
        size = _corrector_kernel._cache_size()
        before = size if before is None else before
        assert size == before
