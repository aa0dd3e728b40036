"""JAX: noise from PRNG keys, and the state-passing Flax API (``FlaxScoreSdeVeScheduler``) that works on
current JAX, under ``jax.jit`` and inside ``jax.lax`` loops.

Compared with the last diffusers release that had it (0.31), which fails on current JAX:

- ``step_pred`` indexes with ``astype`` rather than torch's ``.long()``, so it runs, also with a traced timestep.
- Noise is drawn from the key as given (shape ``()`` typed keys or ``(2,)`` raw keys), not from the ``(1, 2)``
  array that ``random.split(key, num=1)`` returns.
- The corrector uses the per-example-norm rule of every other backend (batch mean of per-example norms), not
  one norm over the whole batch.
- ``set_sigmas`` passes ``sampling_eps`` as the sampling epsilon (0.31 passed it as ``shape``, ignoring it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sdeve import schedule as _schedule
from sdeve import updates as _updates
from sdeve._xp import compute_dtype, is_concrete_on_host, schedule_dtype
from sdeve.config import SdeVeConfig
from sdeve.validation import check_pair

from ._base import Adapter

__all__ = [
    "ADAPTER",
    "FlaxScoreSdeVeScheduler",
    "FlaxSdeVeOutput",
    "JaxAdapter",
    "ScoreSdeVeSchedulerState",
    "as_key",
]


def as_key(generator: Any) -> jax.Array:
    """A JAX PRNG key from a key (typed, or raw ``uint32[2]``, also ``[1, 2]``), an int seed, or ``None``
    (fresh entropy from the operating system)."""
    if generator is None:
        return jax.random.PRNGKey(int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0]))
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return jax.random.PRNGKey(int(generator))
    if isinstance(generator, (jax.Array, np.ndarray)):
        # Shapes are checked first: a key already in shape is returned with no dispatch (this is on every step).
        if jax.dtypes.issubdtype(generator.dtype, jax.dtypes.prng_key):
            if generator.shape == ():
                return generator
            if generator.shape != (1,):
                raise ValueError(f"expected one PRNG key, got a key array of shape {generator.shape}")
            return generator.reshape(())
        if generator.dtype == jnp.uint32 and generator.size == 2:
            return generator if generator.shape == (2,) else jnp.reshape(generator, (2,))
        raise TypeError(f"expected a JAX PRNG key, got an array of dtype {generator.dtype} and shape {generator.shape}")
    raise TypeError(f"expected a JAX PRNG key, an int seed or None, got {type(generator).__name__}")


class JaxAdapter(Adapter):
    """Noise from a JAX PRNG key (or an int seed; ``None`` for fresh entropy). The same key gives the same
    noise: split keys yourself between calls, as JAX code does."""

    name = "jax"

    def make_generator(self, generator: Any, device: Any = None) -> jax.Array:
        """A PRNG key (see :func:`as_key`)."""
        return as_key(generator)

    def split(self, generator: Any) -> tuple[jax.Array, jax.Array]:
        """``(key to draw from, key to carry on)``: ``jax.random.split``, so no key is used twice."""
        later, now = jax.random.split(as_key(generator))
        return now, later

    def compiled_loop(self, run: Any) -> jax.Array | None:
        """All timesteps of a :func:`sdeve.sample` run as one compiled program, or ``None`` when the model is
        not traceable (``sdeve.sample`` then runs step by step)."""
        return _compiled_loop(run, strict=False)

    # Fused fast paths for the generic scheduler on eager JAX arrays: one compiled dispatch per update instead
    # of a dozen eager ones. Inside a user's jax.jit (tracers) the core's own functions are traced instead.
    draws_in_update = True  # noise=None: drawn from the key inside the compiled update

    def predictor_update(
        self, sample: Any, model_output: Any, noise: Any, sigma: Any, adjacent_sigma: Any, *, owns_noise: bool,
        generator: Any = None,
    ) -> tuple[jax.Array, jax.Array] | None:
        if isinstance(sample, jax.core.Tracer):
            return None
        source = _noise_source(noise, generator)
        if isinstance(sigma, float) and isinstance(adjacent_sigma, float):
            # Host coefficients in float64 (sigma^2 - adjacent^2 cancels), each rounded once on the way in.
            diffusion = math.sqrt((sigma - adjacent_sigma) * (sigma + adjacent_sigma))
            return _predictor_axpy(sample, model_output, source, diffusion * diffusion, diffusion)
        return _predictor_core(sample, model_output, source, sigma, adjacent_sigma)

    def corrector_update(
        self, sample: Any, model_output: Any, noise: Any, snr: float, *, norm: str, owns_noise: bool,
        generator: Any = None,
    ) -> tuple[jax.Array, jax.Array] | None:
        if isinstance(sample, jax.core.Tracer):
            return None
        return _corrector_core(sample, model_output, _noise_source(noise, generator), snr=float(snr), norm=norm)

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> jax.Array:
        # jax.random.normal in float16/bfloat16 transforms half-precision uniforms: bfloat16 draws are visibly
        # skewed (KS p ~ 0 on 10^5 draws, see conformance's noise.ks). Draw in float32 and round once.
        draw = dtype if jnp.dtype(dtype).itemsize >= 4 else jnp.float32
        noise = jax.random.normal(as_key(generator), tuple(shape), dtype=draw)
        noise = noise if draw == dtype else noise.astype(dtype)
        if device is not None and not isinstance(noise, jax.core.Tracer) and noise.sharding.device_set != {device}:
            noise = jax.device_put(noise, device)
        return noise


ADAPTER = JaxAdapter()


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ScoreSdeVeSchedulerState:
    """The Flax scheduler's state, a pytree: ``timesteps`` ``(M,)``, ``discrete_sigmas`` ``(N,)`` and
    ``sigmas`` ``(M,)`` (each ``None`` until set)."""

    timesteps: jax.Array | None = None
    discrete_sigmas: jax.Array | None = None
    sigmas: jax.Array | None = None

    @classmethod
    def create(cls) -> ScoreSdeVeSchedulerState:
        """An empty state."""
        return cls()

    def replace(self, **changes: Any) -> ScoreSdeVeSchedulerState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FlaxSdeVeOutput:
    """Output of the Flax step methods: ``state``, ``prev_sample`` and (``step_pred`` only) ``prev_sample_mean``."""

    state: ScoreSdeVeSchedulerState
    prev_sample: jax.Array
    prev_sample_mean: jax.Array | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return (self.state, self.prev_sample, self.prev_sample_mean)


# The Flax step methods validate in Python and then run one compiled kernel. Eager calls are then a single
# dispatch, and they give the same bits as `jax.jit(scheduler.step_pred)`: compiled, XLA contracts `a + b * c`
# into fused multiply-adds (also in the norms' sums of squares), op-by-op eager JAX does not, and no XLA flag
# turns contraction off; with one compiled kernel both paths run the same program.
@jax.jit
def _predictor_kernel(timesteps: jax.Array, discrete: jax.Array, model_output: jax.Array, t: jax.Array,
                      sample: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    index = _schedule.timestep_index(t, timesteps.shape[0], xp=jnp)
    sigma = discrete[index]
    adjacent = _schedule.adjacent_sigmas(discrete, index, xp=jnp)
    noise = ADAPTER.normal(key, tuple(sample.shape), dtype=sample.dtype)
    return _updates.predictor_update(sample, model_output, noise, sigma, adjacent, xp=jnp)


@functools.partial(jax.jit, static_argnames=("snr",))
def _corrector_kernel(model_output: jax.Array, sample: jax.Array, key: jax.Array, *, snr: float) -> jax.Array:
    noise = ADAPTER.normal(key, tuple(sample.shape), dtype=sample.dtype)
    return _updates.corrector_update(sample, model_output, noise, snr, xp=jnp)[0]


def _noise_source(noise: Any, generator: Any) -> Any:
    """What the fused kernels take as noise: the noise itself, or a key to draw it from inside the kernel."""
    return noise if noise is not None else (as_key(generator),)


def _materialise(source: Any, sample: jax.Array) -> jax.Array:
    """Inside a kernel: the noise, drawn here when ``source`` is ``(key,)`` (one dispatch draws and updates)."""
    if isinstance(source, tuple):
        return ADAPTER.normal(source[0], tuple(sample.shape), dtype=sample.dtype)
    return source


@jax.jit
def _predictor_axpy(sample: jax.Array, model_output: jax.Array, noise: Any, drift_scale: Any, diffusion: Any) -> tuple[jax.Array, jax.Array]:
    """The predictor of :func:`sdeve.updates.predictor_update` given its two host coefficients ``g^2`` and ``g``."""
    noise = _materialise(noise, sample)
    dtype = compute_dtype(jnp, sample.dtype)
    prev_mean = sample.astype(dtype) + drift_scale * model_output.astype(dtype)
    prev = prev_mean + diffusion * noise.astype(dtype)
    return prev.astype(sample.dtype), prev_mean.astype(sample.dtype)


@jax.jit
def _predictor_core(sample: jax.Array, model_output: jax.Array, noise: Any, sigma: Any, adjacent: Any) -> tuple[jax.Array, jax.Array]:
    return _updates.predictor_update(sample, model_output, _materialise(noise, sample), sigma, adjacent, xp=jnp)


@functools.partial(jax.jit, static_argnames=("snr", "norm"))
def _corrector_core(sample: jax.Array, model_output: jax.Array, noise: Any, *, snr: float, norm: str) -> tuple[jax.Array, jax.Array]:
    noise = _materialise(noise, sample)
    return _updates.corrector_update(sample, model_output, noise, snr, norm=norm, xp=jnp)  # type: ignore[arg-type]


def _static_flag(value: Any, name: str) -> bool:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"{name} must be a static Python bool: under jax.jit mark it static (static_argnames=('{name}',))")
    return bool(value)


class FlaxScoreSdeVeScheduler:
    """The state-passing VE SDE scheduler of diffusers' Flax API, on the sdeve core.

    Every method takes a :class:`ScoreSdeVeSchedulerState` and returns a new one; nothing is mutated, so
    ``jax.jit(scheduler.step_pred)`` and ``jax.jit(scheduler.step_correct)`` work with traced timesteps and
    inside ``jax.lax.fori_loop``/``scan``. Schedules are float64 with ``jax_enable_x64`` on, else float32
    (or ``dtype=`` given).
    """

    has_state: bool = True
    order: int = 1

    def __init__(
        self,
        num_train_timesteps: int = 2000,
        snr: float = 0.15,
        sigma_min: float = 0.01,
        sigma_max: float = 1348.0,
        sampling_eps: float = 1e-5,
        correct_steps: int = 1,
        dtype: Any = None,
    ) -> None:
        self.config = SdeVeConfig(num_train_timesteps, snr, sigma_min, sigma_max, sampling_eps, correct_steps)
        self.dtype = dtype
        self.init_noise_sigma = self.config.sigma_max

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    def _dtype(self) -> Any:
        return self.dtype if self.dtype is not None else schedule_dtype(jnp)

    def create_state(self) -> ScoreSdeVeSchedulerState:
        """A state with the training schedule (``num_train_timesteps`` levels) set."""
        cfg = self.config
        return self.set_sigmas(ScoreSdeVeSchedulerState.create(), cfg.num_train_timesteps, cfg.sigma_min, cfg.sigma_max, cfg.sampling_eps)

    def set_timesteps(
        self, state: ScoreSdeVeSchedulerState, num_inference_steps: int, shape: tuple[int, ...] = (), sampling_eps: float | None = None
    ) -> ScoreSdeVeSchedulerState:
        """``state`` with ``timesteps = linspace(1, sampling_eps, num_inference_steps)``. ``shape`` is accepted
        for diffusers' signature and unused."""
        eps = self.config.sampling_eps if sampling_eps is None else float(sampling_eps)
        return state.replace(timesteps=_schedule.timesteps(num_inference_steps, eps, xp=jnp, dtype=self._dtype()))

    def set_sigmas(
        self,
        state: ScoreSdeVeSchedulerState,
        num_inference_steps: int,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        sampling_eps: float | None = None,
    ) -> ScoreSdeVeSchedulerState:
        """``state`` with ``discrete_sigmas`` (``num_inference_steps`` levels) and ``sigmas`` for its timesteps
        (set first from ``num_inference_steps`` and ``sampling_eps`` when the state has none)."""
        sigma_min = self.config.sigma_min if sigma_min is None else float(sigma_min)
        sigma_max = self.config.sigma_max if sigma_max is None else float(sigma_max)
        eps = self.config.sampling_eps if sampling_eps is None else float(sampling_eps)
        self.config.replace(sigma_min=sigma_min, sigma_max=sigma_max, sampling_eps=eps)
        if state.timesteps is None:
            state = self.set_timesteps(state, num_inference_steps, sampling_eps=eps)
        discrete = _schedule.discrete_sigmas(num_inference_steps, sigma_min, sigma_max, xp=jnp, dtype=self._dtype())
        sigmas = _schedule.continuous_sigmas(state.timesteps, sigma_min, sigma_max, xp=jnp)
        return state.replace(discrete_sigmas=discrete, sigmas=sigmas)

    def get_adjacent_sigma(self, state: ScoreSdeVeSchedulerState, timesteps: jax.Array, t: jax.Array) -> jax.Array:
        """``discrete_sigmas[timesteps - 1]``, 0 where ``timesteps == 0``."""
        return _schedule.adjacent_sigmas(state.discrete_sigmas, jnp.asarray(timesteps), xp=jnp)

    @staticmethod
    def _require(state: ScoreSdeVeSchedulerState) -> None:
        if state.timesteps is None or state.discrete_sigmas is None:
            raise ValueError("state.timesteps is not set: call set_timesteps and set_sigmas (or create_state) first")
        if state.timesteps.shape[0] > state.discrete_sigmas.shape[0]:
            raise ValueError(
                f"the state has {state.timesteps.shape[0]} timesteps but {state.discrete_sigmas.shape[0]} discrete "
                "sigmas: call set_sigmas with the same number of steps"
            )

    def step_pred(
        self,
        state: ScoreSdeVeSchedulerState,
        model_output: jax.Array,
        timestep: Any,
        sample: jax.Array,
        key: jax.Array,
        return_dict: bool = True,
    ) -> FlaxSdeVeOutput | tuple[jax.Array, jax.Array, ScoreSdeVeSchedulerState]:
        """Predictor step; see :meth:`sdeve.ScoreSdeVeScheduler.step_pred`. ``timestep`` may be traced.

        Returns ``FlaxSdeVeOutput(state, prev_sample, prev_sample_mean)`` or
        ``(prev_sample, prev_sample_mean, state)``.
        """
        return_dict = _static_flag(return_dict, "return_dict")
        self._require(state)
        check_pair(model_output, sample)
        t = jnp.asarray(timestep, dtype=state.timesteps.dtype)
        if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, sample.shape[0])):
            raise ValueError(f"timestep must be a scalar or of shape (B,), got {t.shape}")
        # Values are read only where that is free (host memory, not traced): on a GPU a read would synchronise
        # every step; there an out-of-range time is clamped to the nearest end of the schedule instead.
        if isinstance(timestep, (int, float)) and not isinstance(timestep, bool):
            if not 0.0 <= float(timestep) <= 1.0:
                raise ValueError(f"timestep must be a continuous time in [0, 1], got {timestep}")
        elif is_concrete_on_host(t) and not bool(jnp.all((t >= 0) & (t <= 1))):
            raise ValueError("timestep must be a continuous time in [0, 1]")
        prev, prev_mean = _predictor_kernel(state.timesteps, state.discrete_sigmas, model_output, t, sample, as_key(key))
        if not return_dict:
            return (prev, prev_mean, state)
        return FlaxSdeVeOutput(state=state, prev_sample=prev, prev_sample_mean=prev_mean)

    def step_correct(
        self,
        state: ScoreSdeVeSchedulerState,
        model_output: jax.Array,
        sample: jax.Array,
        key: jax.Array,
        return_dict: bool = True,
    ) -> FlaxSdeVeOutput | tuple[jax.Array, ScoreSdeVeSchedulerState]:
        """Corrector step (batch mean of per-example norms, as every backend); returns
        ``FlaxSdeVeOutput(state, prev_sample)`` or ``(prev_sample, state)``."""
        return_dict = _static_flag(return_dict, "return_dict")
        self._require(state)
        check_pair(model_output, sample)
        prev = _corrector_kernel(model_output, sample, as_key(key), snr=self.config.snr)
        if not return_dict:
            return (prev, state)
        return FlaxSdeVeOutput(state=state, prev_sample=prev)

    # -- persistence, diffusers' Flax names
    def save_pretrained(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write ``scheduler_config.json`` (diffusers' format)."""
        if push_to_hub:
            raise ValueError("push_to_hub is not supported: sdeve reads and writes local files only")
        self.config.save(save_directory)

    save_config = save_pretrained

    @classmethod
    def from_config(cls, config: Any = None, **kwargs: Any) -> FlaxScoreSdeVeScheduler:
        """A scheduler from an :class:`SdeVeConfig` or mapping; keyword arguments override."""
        base = config if isinstance(config, SdeVeConfig) else SdeVeConfig.from_dict(dict(config or {}))
        dtype = kwargs.pop("dtype", None)
        return cls(**base.replace(**kwargs).to_dict(), dtype=dtype)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], subfolder: str | None = None, **kwargs: Any
    ) -> tuple[FlaxScoreSdeVeScheduler, ScoreSdeVeSchedulerState]:
        """``(scheduler, state)`` from a local ``scheduler_config.json``, as diffusers' Flax ``from_pretrained``."""
        scheduler = cls.from_config(SdeVeConfig.load(pretrained_model_name_or_path, subfolder=subfolder), **kwargs)
        return scheduler, scheduler.create_state()


# ---------------------------------------------------------------------- sampling: pytree state, compiled loop
from sdeve import sampler as _sampler  # noqa: E402 - after the adapter, which the sampler looks up lazily

jax.tree_util.register_dataclass(
    _sampler.SamplerState, data_fields=["counter", "generator", "discrete_sigmas"], meta_fields=["sample_shape"]
)

# Raised while tracing a model that is not a pure JAX function (it reads values, converts to NumPy, ...).
_UNTRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _program(
    x: jax.Array, key: jax.Array, arrays: tuple[Any, ...], *, model: Any, static: tuple[Any, ...]
) -> jax.Array:
    """The whole sampling loop as one program: ``lax.fori_loop`` over :func:`sdeve.sampler.pc_timestep`, with
    the same key discipline (:func:`sdeve.sampler.draw_noises`) as the step-by-step loop."""
    num_steps, start, correct_steps, snr, norm, denoise, draws = static
    known, mask, model_sigmas, discrete = arrays
    plan = _sampler._Plan(num_steps, correct_steps, snr, norm, model_sigmas, discrete)

    def body(i: jax.Array, carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
        x, _, key = carry
        noises, key = _sampler.draw_noises(ADAPTER, key, x, draws)
        x, x_mean = _sampler.pc_timestep(model, x, i, noises, plan, known=known, mask=mask, xp=jnp)
        return x, x_mean, key

    x, x_mean, _ = jax.lax.fori_loop(start, num_steps, body, (x, x, key))
    return x_mean if denoise else x


# Compiled once per (model, settings, shapes, dtypes): a second sdeve.sample call with the same model reuses it.
_cached_program = jax.jit(_program, static_argnames=("model", "static"))


def _compiled_loop(run: Any, *, strict: bool) -> jax.Array | None:
    """Run all timesteps of a prepared :func:`sdeve.sample` run as one XLA program (see :func:`_program`), so
    the numbers agree with the step-by-step loop to rounding. Returns ``None`` (or raises, when ``strict``)
    if ``run.model`` cannot be traced."""
    plan = run.plan
    static = (plan.num_steps, run.start, plan.correct_steps, plan.snr, plan.norm, run.denoise, run.draws)
    arrays = (run.known, run.mask, plan.model_sigmas, plan.discrete)
    try:
        hash(run.model)
        program = functools.partial(_cached_program, model=run.model, static=static)
    except TypeError:  # an unhashable model: compile for this call only
        program = jax.jit(functools.partial(_program, model=run.model, static=static))
    try:
        return program(run.x, run.generator, arrays)
    except _UNTRACEABLE as exc:
        if strict:
            raise TypeError(
                f"sdeve_backends.jax.sample needs a model written in JAX (traceable by jax.jit): {exc}"
            ) from exc
        return None


def sample(model: Any, shape: Any, **kwargs: Any) -> jax.Array:
    """:func:`sdeve.sample` for a JAX model, with the whole loop compiled into one program.

    Same arguments as :func:`sdeve.sample` (``generator`` a PRNG key or an int seed), less ``progress`` and
    ``callback``, which need the host between steps. The model must be traceable by ``jax.jit``.
    ``sdeve.sample`` takes this path by itself for JAX arrays when no callback or progress bar is asked for.
    """
    for name in ("progress", "callback"):
        if kwargs.get(name):
            raise TypeError(f"{name} is not available in the compiled loop: use sdeve.sample(...) for it")
        kwargs.pop(name, None)
    kwargs.setdefault("xp", jnp)
    run = _sampler.prepare(model, shape, **kwargs)
    out = _compiled_loop(run, strict=True)
    assert out is not None
    return out


__all__ += ["sample"]
