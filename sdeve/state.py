"""The generic ``init``/``step`` interface (Bumblebee's scheduler behaviour) for any model loop.

``init`` returns an explicit state (step counter, noise source, levels) and the noise level to give the model
at every step; ``step`` applies the update that the counter says comes next: one of ``correct_steps`` Langevin
corrector updates, then the reverse-diffusion predictor, per timestep. No Python branch reads the counter, so
``jax.jit(scheduler.step)`` works and a CUDA loop does not synchronise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from . import updates
from ._xp import Array, Namespace, array_namespace, default_float, device_of, index_dtype, resolve_namespace
from .backends import backend_for
from .config import SdeVeConfig
from .protocols import NoiseSource
from .samplers._loop import static_field
from .sampling import check_shape
from .schedule import Schedule, adjacent_sigmas, check_num_steps
from .updates import CorrectorNorm
from .validation import check_pair

__all__ = ["SamplerState", "init_state", "initial_state_sample", "step_state"]


@dataclasses.dataclass(frozen=True)
class SamplerState:
    """The state of the generic ``init``/``step`` interface (:meth:`sdeve.ScoreSdeVeScheduler.init`).

    A pytree on JAX: ``counter``, ``generator`` and ``discrete_sigmas`` are leaves, ``sample_shape`` is static.

    Attributes
    ----------
    counter
        0-d integer array: the number of model evaluations done (``step`` calls so far).
    generator
        The noise source: a stateful generator (NumPy, torch, CuPy, Dask) or a JAX PRNG key.
    discrete_sigmas
        ``(N,)`` geometric noise levels, increasing; the update at timestep ``i`` uses level ``N - 1 - i``.
    sample_shape
        The shape of the samples, batch first.
    """

    counter: Array
    generator: Any
    discrete_sigmas: Array
    sample_shape: tuple[int, ...] = static_field(default=())

    @property
    def num_inference_steps(self) -> int:
        """``N``, the number of timesteps."""
        return int(self.discrete_sigmas.shape[0])

    def replace(self, **changes: Any) -> SamplerState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def init_state(config: SdeVeConfig, num_inference_steps: int, sample_shape: Sequence[int], *, generator: Any = None,
               xp: Namespace | str | None = None, device: Any = None) -> tuple[SamplerState, Array]:
    """:meth:`sdeve.ScoreSdeVeScheduler.init`: the state, and the model's noise level for every step
    (``(N * (correct_steps + 1),)``: each timestep's ``sigma(t_i)`` repeated once per update)."""
    steps = check_num_steps(num_inference_steps)
    shape = check_shape(sample_shape)
    ns = resolve_namespace(xp)
    schedule = Schedule.build(steps, steps, config.sigma_min, config.sigma_max, config.sampling_eps)
    moved = schedule.arrays(ns, device)
    per_timestep = config.correct_steps + 1
    repeated = ns.broadcast_to(ns.reshape(moved.sigmas, (steps, 1)), (steps, per_timestep))
    counter = ns.asarray(0, dtype=index_dtype(ns, device), device=device)
    state = SamplerState(counter, backend_for(ns).make_generator(generator, device), moved.discrete_sigmas, shape)
    return state, ns.reshape(repeated, (steps * per_timestep,))


def initial_state_sample(config: SdeVeConfig, state: SamplerState, dtype: Any = None) -> tuple[SamplerState, Array]:
    """:meth:`sdeve.ScoreSdeVeScheduler.initial_sample`: ``sigma_max * N(0, I)`` from the state's generator."""
    xp = array_namespace(state.discrete_sigmas)
    device = device_of(state.discrete_sigmas)
    dtype = default_float(xp, device) if dtype is None else dtype
    if not xp.isdtype(dtype, "real floating"):
        raise TypeError(f"dtype must be a real floating dtype, got {dtype}")
    noise = NoiseSource(backend_for(xp), state.generator)
    z = noise.draw(state.sample_shape, dtype=dtype, device=device)
    return state.replace(generator=noise.source), z * config.sigma_max


def _levels(state: SamplerState, timestep: Array, *, xp: Namespace) -> tuple[Any, Any]:
    """``(g^2, g)`` of the reverse-diffusion predictor at timestep ``timestep`` (level ``N - 1 - timestep``)."""
    j = xp.reshape((state.num_inference_steps - 1) - timestep, (1,))
    sigma = xp.reshape(xp.take(state.discrete_sigmas, j, axis=0), ())
    adjacent = xp.reshape(adjacent_sigmas(state.discrete_sigmas, j, xp=xp), ())
    return updates.reverse_diffusion_coefficients(sigma, adjacent, sqrt=xp.sqrt)


def step_state(config: SdeVeConfig, norm: CorrectorNorm, state: SamplerState, sample: Array,
               model_output: Array) -> tuple[SamplerState, Array]:
    """:meth:`sdeve.ScoreSdeVeScheduler.step`: the update the counter says comes next.

    Both the corrector and the predictor result are computed and one is selected with ``where``.
    """
    xp = check_pair(model_output, sample)
    if tuple(sample.shape) != tuple(state.sample_shape):
        raise ValueError(f"sample must have the shape given to init, {state.sample_shape}, got {tuple(sample.shape)}")
    correct, steps = config.correct_steps, state.num_inference_steps
    total = steps * (correct + 1)
    k = state.counter
    backend = backend_for(sample)
    if backend.readable(k) and not 0 <= int(k) < total:
        raise ValueError(f"the sampler is done: all {total} steps were taken (state.counter = {int(k)})")
    noise = NoiseSource(backend, state.generator)
    z = noise(sample)
    timestep = xp.clip(k // (correct + 1), 0, steps - 1)
    a, b = _levels(state, timestep, xp=xp)
    pred, pred_mean = updates.combine(sample, a, model_output, b, z, xp=xp)
    out = xp.where(k == total - 1, pred_mean, pred)
    if correct:
        corrected, _ = updates.corrector_update(sample, model_output, z, config.snr, norm=norm, xp=xp)
        out = xp.where(k % (correct + 1) == correct, out, corrected)
    return state.replace(counter=k + 1, generator=noise.source), out

