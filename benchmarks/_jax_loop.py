"""The JAX predictor-corrector loop, compiled as one program and stepped from Python, with a toy linear score.

The model is the exact score of Gaussian data ``N(0, I)`` noised to level ``sigma``:
``score(x, sigma) = -x / (1 + sigma^2)``. Both loops run the same body (corrector then predictor, as
diffusers' ``ScoreSdeVePipeline``): split the key, score, ``step_correct``, score, ``step_pred``. The compiled
loop is a ``jax.lax.fori_loop`` over :class:`~sdeve_backends.jax.FlaxScoreSdeVeScheduler` built here
(:func:`loops`) and, where the sampler exists, ``sdeve_backends.jax.sample`` (:func:`sampler_loops`, stepped:
``sdeve.sample`` with a callback, which makes it step from Python). The stepped loop calls the jitted step methods
(and a jitted model and key split) once per step from a Python ``for`` over the schedule, unstacked beforehand:
the strongest stepped baseline, each call one dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sdeve_backends.jax import FlaxScoreSdeVeScheduler

__all__ = ["batch_linear_score", "draws_loop", "linear_score", "loops", "sampler_loops"]


def linear_score(x: jax.Array, sigma: jax.Array) -> jax.Array:
    """The score of ``N(0, (1 + sigma^2) I)``."""
    return -x / (1 + sigma * sigma)


def _state(scheduler: FlaxScoreSdeVeScheduler, steps: int, device: Any) -> Any:
    state = scheduler.create_state()
    state = scheduler.set_timesteps(state, steps)
    state = scheduler.set_sigmas(state, steps)
    return jax.device_put(state, device)


def loops(device: Any, shape: tuple[int, ...], steps: int) -> tuple[Callable[[], Any], Callable[[], Any], str]:
    """``(compiled, stepped, note)``: zero-argument closures that each run the whole loop and return the
    final mean (arrays on ``device``), and a note saying which compiled loop is used."""
    scheduler = FlaxScoreSdeVeScheduler()
    state = _state(scheduler, steps, device)
    x0 = jax.device_put(np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * scheduler.init_noise_sigma,
                        device)
    key0 = jax.device_put(jax.random.key(0), device)

    def body(i: Any, carry: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        x, _, key = carry
        key, k_correct, k_pred = jax.random.split(key, 3)
        sigma = state.sigmas[i]
        x = scheduler.step_correct(state, linear_score(x, sigma), x, k_correct).prev_sample
        out = scheduler.step_pred(state, linear_score(x, sigma), state.timesteps[i], x, k_pred)
        return out.prev_sample, out.prev_sample_mean, key

    @jax.jit
    def compiled_loop(x: Any, key: Any) -> Any:
        return jax.lax.fori_loop(0, steps, body, (x, x, key))[1]

    note = "lax.fori_loop over FlaxScoreSdeVeScheduler, built in benchmarks"

    jit_correct = jax.jit(scheduler.step_correct, static_argnames=("return_dict",))
    jit_pred = jax.jit(scheduler.step_pred, static_argnames=("return_dict",))
    jit_score = jax.jit(linear_score)
    split3 = jax.jit(lambda k: tuple(jax.random.split(k, 3)))

    # Unstacked once, as a Python loop over the schedule would (and indexing inside the loop would move each
    # Python index to the device, which jax.transfer_guard forbids).
    schedule = list(zip(state.timesteps, state.sigmas))

    def stepped() -> Any:
        x, key, x_mean = x0, key0, x0
        for t, sigma in schedule:
            key, k_correct, k_pred = split3(key)
            x = jit_correct(state, jit_score(x, sigma), x, k_correct).prev_sample
            out = jit_pred(state, jit_score(x, sigma), t, x, k_pred)
            x, x_mean = out.prev_sample, out.prev_sample_mean
        return x_mean

    return (lambda: compiled_loop(x0, key0)), stepped, note


def batch_linear_score(x: jax.Array, sigma: jax.Array) -> jax.Array:
    """:func:`linear_score` for the sampler's model signature: ``sigma`` of shape ``(B,)``."""
    s = jnp.reshape(sigma, (-1,) + (1,) * (x.ndim - 1))
    return -x / (1 + s * s)


def sampler_loops(device: Any, shape: tuple[int, ...], steps: int) -> tuple[Callable[[], Any], Callable[[], Any], str] | None:
    """``(compiled, stepped, note)`` through the library's sampler, or ``None`` where it is absent: compiled
    is ``sdeve_backends.jax.sample`` as a user calls it (one call, compilation included if it recompiles),
    stepped is ``sdeve.sample`` with a callback (the step-by-step path)."""
    try:
        import sdeve
        from sdeve_backends.jax import sample as jax_sample  # type: ignore[attr-defined]
    except ImportError:
        return None
    generic_sample = getattr(sdeve, "sample", None)
    if generic_sample is None:
        return None
    kwargs = {"num_inference_steps": steps, "generator": 0, "device": device, "xp": jnp}

    def compiled() -> Any:
        return jax_sample(batch_linear_score, shape, **kwargs)

    def stepped() -> Any:
        return generic_sample(batch_linear_score, shape, callback=lambda info: None, **kwargs)

    return compiled, stepped, "sdeve_backends.jax.sample vs sdeve.sample(callback=...) (stepped)"


def draws_loop(device: Any, shape: tuple[int, ...], steps: int) -> Callable[[], Any]:
    """The compiled loop's random numbers alone: per step the same key split and two normal draws of
    ``shape``, summed into the carry so that nothing is optimised away. What a compiled loop cannot beat."""
    key0 = jax.device_put(jax.random.key(0), device)
    acc0 = jax.device_put(np.zeros(shape, dtype=np.float32), device)

    def body(i: Any, carry: tuple[Any, Any]) -> tuple[Any, Any]:
        acc, key = carry
        key, k1, k2 = jax.random.split(key, 3)
        acc = acc + jax.random.normal(k1, shape, dtype=acc.dtype) + jax.random.normal(k2, shape, dtype=acc.dtype)
        return acc, key

    @jax.jit
    def program(acc: Any, key: Any) -> Any:
        return jax.lax.fori_loop(0, steps, body, (acc, key))[0]

    return lambda: program(acc0, key0)
