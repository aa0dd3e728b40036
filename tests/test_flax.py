"""The state-passing Flax API of ``sdeve_backends.jax``: state, schedule, both steps eager, under ``jax.jit``
with a traced timestep and inside ``lax.fori_loop``/``lax.scan``, in both JAX 64-bit modes, against the
independent float64 reference in ``conformance/reference.py`` with the same noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from conformance.tolerances import assert_close, rtol_for
from sdeve_backends.jax import (
    FlaxScoreSdeVeScheduler,
    FlaxSdeVeOutput,
    ScoreSdeVeSchedulerState,
)
from conformance import reference as ref

N = 10
SHAPE = (3, 4, 2)


@pytest.fixture(params=[False, True], ids=["x32", "x64"])
def x64(request: pytest.FixtureRequest) -> Any:
    """Both JAX 64-bit modes, scoped to the test (the global flag is left as it is)."""
    with jax.enable_x64(request.param):
        yield request.param


def _state(scheduler: FlaxScoreSdeVeScheduler, n: int = N) -> ScoreSdeVeSchedulerState:
    state = scheduler.create_state()
    state = scheduler.set_timesteps(state, n)
    return scheduler.set_sigmas(state, n)


def _inputs(dtype: Any, seed: int = 0, sigma: float = 30.0, shape: tuple[int, ...] = SHAPE):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * sigma
    s = -x / sigma**2 + rng.standard_normal(shape) / sigma
    return jnp.asarray(x, dtype=dtype), jnp.asarray(s, dtype=dtype)


def _np(x: Any) -> np.ndarray:
    return np.asarray(jnp.asarray(x, dtype=jnp.float32) if x.dtype == jnp.bfloat16 else x, dtype=np.float64)


def _key_noise(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """The noise the adapter draws from ``key``: ``jax.random.normal`` in the dtype, except half precision,
    which is drawn in float32 and rounded once (JAX's half-precision normals are visibly skewed)."""
    if jnp.dtype(dtype).itemsize < 4:
        return jax.random.normal(key, shape, jnp.float32).astype(dtype)
    return jax.random.normal(key, shape, dtype)


def _level(t: Any) -> float:
    """The noise level of timestep ``t``: the scale of a realistic sample there."""
    return float(ref.discrete_sigmas(N)[ref.level_index(_np(t), N)])


def _dtypes(x64: bool) -> list[Any]:
    return [jnp.float16, jnp.bfloat16, jnp.float32] + ([jnp.float64] if x64 else [])


# ---------------------------------------------------------------------------------------------- state, schedule
def test_state_is_a_pytree_and_schedule_dtype_follows_x64(x64: bool) -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    assert scheduler.has_state is True and scheduler.order == 1 and len(scheduler) == 2000
    empty = ScoreSdeVeSchedulerState.create()
    assert jax.tree_util.tree_leaves(empty) == []
    state = scheduler.create_state()
    leaves = jax.tree_util.tree_leaves(state)
    assert len(leaves) == 3 and all(leaf.shape == (2000,) for leaf in leaves)
    want = jnp.float64 if x64 else jnp.float32
    assert state.timesteps.dtype == state.discrete_sigmas.dtype == state.sigmas.dtype == want
    doubled = jax.tree_util.tree_map(lambda a: a * 2, state)
    assert isinstance(doubled, ScoreSdeVeSchedulerState)
    np.testing.assert_allclose(_np(doubled.discrete_sigmas), 2 * _np(state.discrete_sigmas))
    tol = 1e-12 if x64 else 1e-5
    np.testing.assert_allclose(_np(state.timesteps), ref.timesteps(2000), rtol=tol, atol=tol)
    np.testing.assert_allclose(_np(state.discrete_sigmas), ref.discrete_sigmas(2000), rtol=100 * tol)
    np.testing.assert_allclose(_np(state.sigmas), ref.continuous_sigmas(ref.timesteps(2000)), rtol=100 * tol)


def test_set_timesteps_and_set_sigmas_overrides(x64: bool) -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    tol = 1e-12 if x64 else 2e-6
    state = scheduler.set_timesteps(ScoreSdeVeSchedulerState.create(), 5, shape=(), sampling_eps=0.2)
    np.testing.assert_allclose(_np(state.timesteps), [1.0, 0.8, 0.6, 0.4, 0.2], rtol=tol)
    state = scheduler.set_timesteps(state, 4)
    np.testing.assert_allclose(_np(state.timesteps), ref.timesteps(4), rtol=tol)
    # On a state with no timesteps, set_sigmas sets them from its own sampling_eps (diffusers 0.31 ignored it).
    state = scheduler.set_sigmas(ScoreSdeVeSchedulerState.create(), 5, sigma_min=0.1, sigma_max=10.0, sampling_eps=0.2)
    np.testing.assert_allclose(_np(state.timesteps), [1.0, 0.8, 0.6, 0.4, 0.2], rtol=tol)
    np.testing.assert_allclose(_np(state.discrete_sigmas), ref.discrete_sigmas(5, 0.1, 10.0), rtol=10 * tol)
    np.testing.assert_allclose(_np(state.sigmas), ref.continuous_sigmas([1.0, 0.8, 0.6, 0.4, 0.2], 0.1, 10.0), rtol=10 * tol)
    # With timesteps already set, sigmas follows them (diffusers' rule), whatever num_inference_steps says.
    state = scheduler.set_sigmas(state.replace(timesteps=jnp.asarray([1.0, 0.5])), 3)
    assert state.sigmas.shape == (2,) and state.discrete_sigmas.shape == (3,)
    np.testing.assert_allclose(_np(state.sigmas), ref.continuous_sigmas([1.0, 0.5]), rtol=10 * tol)


def test_get_adjacent_sigma(x64: bool) -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler)
    levels = ref.discrete_sigmas(N)
    got = scheduler.get_adjacent_sigma(state, jnp.asarray([0, 1, 4, N - 1]), state.timesteps[0])
    np.testing.assert_allclose(_np(got), [0.0, levels[0], levels[3], levels[N - 2]], rtol=1e-6)
    assert _np(scheduler.get_adjacent_sigma(state, jnp.asarray(0), None)) == 0.0


# ---------------------------------------------------------------------------------------------- values
def _assert_same_bits(eager: Any, jitted: Any) -> None:
    """Eager calls and ``jax.jit(scheduler.step_*)`` give the same bits.

    Under ``jax.jit`` XLA fuses the update into one loop and LLVM contracts ``x + c * s`` into fused
    multiply-adds (also in the norms' sums of squares; no XLA flag turns this off on CPU or GPU), while
    op-by-op eager JAX rounds each product: the same formulas written op by op differ from their jitted
    selves by up to 3 ulps of the result (float32, measured). The Flax methods therefore run one compiled
    kernel in both cases; any difference here means the eager path went op by op again.
    """
    np.testing.assert_array_equal(_np(eager), _np(jitted))


def _pred_reference(x: Any, s: Any, z: Any, t: Any):
    levels = ref.discrete_sigmas(N)
    t_ref = _np(t)
    want, want_mean = ref.predictor(_np(x), _np(s), _np(z), t_ref, N, levels)
    g2 = np.reshape(ref.predictor_g2(t_ref, N, levels), (-1,) + (1,) * (x.ndim - 1) if np.ndim(t_ref) else ())
    return want, want_mean, ref.term_scale(_np(x), g2 * _np(s), np.sqrt(g2) * _np(z))


def test_step_pred_eager_and_jit_match_reference(x64: bool) -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler)
    jitted = jax.jit(scheduler.step_pred)
    key = jax.random.key(3)
    for dtype in _dtypes(x64):
        for i in (0, 4, N - 1):
            t = state.timesteps[i]
            x, s = _inputs(dtype, sigma=_level(t))
            z = _key_noise(key, x.shape, dtype)
            want, want_mean, scale = _pred_reference(x, s, z, t)
            outs = [step(state, s, t, x, key) for step in (scheduler.step_pred, jitted)]
            for out in outs:
                assert isinstance(out, FlaxSdeVeOutput) and out.state is not None
                assert_close(out.prev_sample, want, like=x, scale=scale)
                assert_close(out.prev_sample_mean, want_mean, like=x, scale=scale)
            _assert_same_bits(outs[0].prev_sample, outs[1].prev_sample)
            _assert_same_bits(outs[0].prev_sample_mean, outs[1].prev_sample_mean)
        # A (B,) timestep, one per example, traced under jit.
        t = jnp.asarray([state.timesteps[3], state.timesteps[5], state.timesteps[N - 1]])
        x, s = _inputs(dtype, sigma=_level(t[0]))
        want, _, scale = _pred_reference(x, s, z, t)
        assert_close(jitted(state, s, t, x, key).prev_sample, want, like=x, scale=scale)


def test_step_correct_eager_and_jit_match_reference(x64: bool) -> None:
    scheduler = FlaxScoreSdeVeScheduler(snr=0.2)
    state = _state(scheduler)
    jitted = jax.jit(scheduler.step_correct)
    key = jax.random.key(4)
    for dtype in _dtypes(x64):
        x, s = _inputs(dtype, seed=1)
        z = _key_noise(key, x.shape, dtype)
        want, _ = ref.corrector(_np(x), _np(s), _np(z), 0.2, "batch")
        eps = ref.corrector_eps(_np(s), _np(z), 0.2, "batch")
        scale = ref.term_scale(_np(x), eps * _np(s), np.sqrt(2 * eps) * _np(z))
        outs = [step(state, s, x, key) for step in (scheduler.step_correct, jitted)]
        for out in outs:
            assert out.prev_sample_mean is None
            assert_close(out.prev_sample, want, like=x, scale=scale)
        _assert_same_bits(outs[0].prev_sample, outs[1].prev_sample)


def test_corrector_batch_rule_is_the_mean_of_per_example_norms() -> None:
    """Examples of very different sizes: one norm over the whole batch (diffusers' old Flax rule) differs."""
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler)
    key = jax.random.key(5)
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.standard_normal((3, 8)), dtype=jnp.float32)
    s = jnp.asarray(rng.standard_normal((3, 8)) * np.array([[1.0], [10.0], [100.0]]), dtype=jnp.float32)
    z = jax.random.normal(key, x.shape, jnp.float32)
    got = _np(scheduler.step_correct(state, s, x, key).prev_sample)
    want, _ = ref.corrector(_np(x), _np(s), _np(z), 0.15, "batch")
    np.testing.assert_allclose(got, want, rtol=1e-5)
    whole = 2 * (0.15 * np.linalg.norm(_np(z)) / np.linalg.norm(_np(s))) ** 2
    old = _np(x) + whole * _np(s) + np.sqrt(2 * whole) * _np(z)
    assert not np.allclose(got, old, rtol=1e-2)
    # The same rule as the torch drop-in, given the same noise.
    torch = pytest.importorskip("torch")
    from sdeve_backends.torch import ScoreSdeVeScheduler as TorchScheduler

    torch_out = TorchScheduler().step_correct(torch.tensor(np.asarray(s)), torch.tensor(np.asarray(x)),
                                             noise=torch.tensor(np.asarray(z))).prev_sample
    np.testing.assert_allclose(got, torch_out.double().numpy(), rtol=1e-6)


def test_return_dict_false_tuples() -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler)
    x, s = _inputs(jnp.float32)
    key = jax.random.key(0)
    prev, prev_mean, new_state = scheduler.step_pred(state, s, state.timesteps[2], x, key, return_dict=False)
    out = scheduler.step_pred(state, s, state.timesteps[2], x, key)
    np.testing.assert_array_equal(np.asarray(prev), np.asarray(out.prev_sample))
    np.testing.assert_array_equal(np.asarray(prev_mean), np.asarray(out.prev_sample_mean))
    assert isinstance(new_state, ScoreSdeVeSchedulerState)
    corrected, new_state = scheduler.step_correct(state, s, x, key, return_dict=False)
    np.testing.assert_array_equal(np.asarray(corrected), np.asarray(scheduler.step_correct(state, s, x, key).prev_sample))
    assert isinstance(new_state, ScoreSdeVeSchedulerState)
    jitted = jax.jit(scheduler.step_pred, static_argnames=("return_dict",))
    prev_j, _, _ = jitted(state, s, state.timesteps[2], x, key, return_dict=False)
    assert prev_j.shape == x.shape


# ---------------------------------------------------------------------------------------------- keys
def test_same_key_same_output_different_keys_differ() -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler)
    x, s = _inputs(jnp.float32)
    t = state.timesteps[3]
    for key_a, key_b in ((jax.random.key(1), jax.random.key(2)), (jax.random.PRNGKey(1), jax.random.PRNGKey(2))):
        a = scheduler.step_pred(state, s, t, x, key_a).prev_sample
        np.testing.assert_array_equal(np.asarray(a), np.asarray(scheduler.step_pred(state, s, t, x, key_a).prev_sample))
        assert not np.allclose(np.asarray(a), np.asarray(scheduler.step_pred(state, s, t, x, key_b).prev_sample))
        c = scheduler.step_correct(state, s, x, key_a).prev_sample
        np.testing.assert_array_equal(np.asarray(c), np.asarray(scheduler.step_correct(state, s, x, key_a).prev_sample))
        assert not np.allclose(np.asarray(c), np.asarray(scheduler.step_correct(state, s, x, key_b).prev_sample))
    # The noise is exactly jax.random.normal of the key, for typed and raw keys alike.
    z = jax.random.normal(jax.random.key(1), x.shape, jnp.float32)
    want, _, scale = _pred_reference(x, s, z, t)
    assert_close(scheduler.step_pred(state, s, t, x, jax.random.key(1)).prev_sample, want, scale=scale)
    raw = scheduler.step_pred(state, s, t, x, jax.random.PRNGKey(1)).prev_sample
    np.testing.assert_array_equal(np.asarray(raw), np.asarray(scheduler.step_pred(state, s, t, x, jax.random.key(1)).prev_sample))


# ---------------------------------------------------------------------------------------------- loops
def _model(x: Any, sigma: Any) -> Any:
    """The exact score of N(0, (1 + sigma^2) I): -x / (1 + sigma^2)."""
    return -x / (1.0 + sigma**2)


def _eager_loop(scheduler: FlaxScoreSdeVeScheduler, state: ScoreSdeVeSchedulerState, x: Any, key: Any):
    for i in range(N):
        t, sigma = state.timesteps[i], state.sigmas[i]
        key, k1, k2 = jax.random.split(key, 3)
        x, state = scheduler.step_correct(state, _model(x, sigma), x, k1, return_dict=False)
        x, x_mean, state = scheduler.step_pred(state, _model(x, sigma), t, x, k2, return_dict=False)
    return x, x_mean


def _reference_loop(state: ScoreSdeVeSchedulerState, x: Any, key: Any) -> np.ndarray:
    levels = ref.discrete_sigmas(N)
    xv = _np(x)
    for i in range(N):
        t, sigma = _np(state.timesteps[i]), _np(state.sigmas[i])
        key, k1, k2 = jax.random.split(key, 3)
        z1, z2 = (_np(jax.random.normal(k, x.shape, x.dtype)) for k in (k1, k2))
        xv, _ = ref.corrector(xv, -xv / (1.0 + sigma**2), z1)
        xv, mean = ref.predictor(xv, -xv / (1.0 + sigma**2), z2, t, N, levels)
    return mean


def test_fori_loop_and_scan_agree_with_the_eager_loop_and_the_reference() -> None:
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler)
    key = jax.random.key(7)
    x0 = jax.random.normal(jax.random.key(8), SHAPE, jnp.float32) * scheduler.init_noise_sigma

    def body(i: Any, carry: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
        x, _, state, key = carry
        t, sigma = state.timesteps[i], state.sigmas[i]
        key, k1, k2 = jax.random.split(key, 3)
        x, state = scheduler.step_correct(state, _model(x, sigma), x, k1, return_dict=False)
        x, x_mean, state = scheduler.step_pred(state, _model(x, sigma), t, x, k2, return_dict=False)
        return x, x_mean, state, key

    looped = jax.jit(lambda x, state, key: jax.lax.fori_loop(0, N, body, (x, x, state, key)))
    x_f, mean_f, state_f, _ = looped(x0, state, key)
    assert isinstance(state_f, ScoreSdeVeSchedulerState)

    def scan_body(carry: tuple[Any, Any, Any], i: Any) -> tuple[tuple[Any, Any, Any], Any]:
        x, state, key = carry
        x, x_mean, state, key = body(i, (x, x, state, key))
        return (x, state, key), x_mean

    (x_s, _, _), means = jax.lax.scan(scan_body, (x0, state, key), jnp.arange(N))
    x_e, mean_e = _eager_loop(scheduler, state, x0, key)
    want = _reference_loop(state, x0, key)
    # The loop's results are O(1) after starting at sigma_max = 1348: compare to the start's scale.
    scale = float(np.max(np.abs(_np(x0))))
    for got in (mean_f, means[-1], mean_e):
        assert_close(got, want, like=x0, scale=scale, rtol=64 * rtol_for(jnp.float32))
    np.testing.assert_array_equal(np.asarray(x_f), np.asarray(x_s))
    assert np.max(np.abs(_np(x_f) - _np(x_e))) <= 64 * rtol_for(jnp.float32) * scale
