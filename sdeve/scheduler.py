"""``ScoreSdeVeScheduler``: diffusers' object API over the core, for arrays of any supported library.

The schedule is a :class:`sdeve.schedule.Schedule` value, built on the host and replaced in one assignment by
``set_timesteps``/``set_sigmas`` (so a step in another thread sees the old schedule or the new one, never a
mix). Its arrays are handed out in the scheduler's namespace and device (NumPy on the CPU unless ``xp=``/
``device=`` say otherwise); a step takes arrays of any supported library and uses the schedule moved once to
the sample's namespace and device. Every array a step returns has the sample's namespace, device and dtype.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from . import state as _state
from . import updates
from ._xp import Array, Namespace, array_namespace, device_of, namespace_name, resolve_namespace, to_device
from .backends import backend_for
from .config import ConfigError, SdeVeConfig
from .outputs import SchedulerOutput, SdeVeOutput
from .persistence import DiffusersConfigMixin
from .protocols import Backend
from .schedule import FLOAT64, HOST_DTYPES, Rounding, Schedule, check_num_steps, host_index, timestep_index
from .updates import CorrectorNorm
from .validation import as_float, batch_size, check_pair, check_sigma_max, check_unit_interval, is_python_scalar

__all__ = ["ConfigError", "ScoreSdeVeScheduler"]

_FITS: set[tuple[type, Any, float]] = set()  # (array type, dtype, sigma_max) found to fit

class ScoreSdeVeScheduler(DiffusersConfigMixin):
    """The variance-exploding SDE predictor-corrector scheduler (Song et al. 2021), diffusers' API.

    Parameters
    ----------
    num_train_timesteps, snr, sigma_min, sigma_max, sampling_eps, correct_steps
        See :class:`sdeve.SdeVeConfig` (diffusers' names and defaults).
    xp
        Namespace the schedule arrays (``timesteps``, ``sigmas``, ``discrete_sigmas``) are handed out in: a module
        (``numpy``, ``torch``, ``jax.numpy``, ``cupy``, ``dask.array``, ``array_api_strict``) or its name.
        Default NumPy. Steps accept arrays of any supported library regardless.
    device
        Device for the schedule arrays, in ``xp``'s terms (e.g. ``"cuda"``). Default: the namespace's default.
    corrector_norm
        ``"batch"`` (diffusers, Song et al.: one step size from batch means of norms) or ``"example"``
        (one step size per example, so an example's result does not depend on its batch).

    Attributes
    ----------
    config : SdeVeConfig
    order : int
        1, as in diffusers.
    init_noise_sigma : float
        ``sigma_max``: the standard deviation of the initial sample.
    timesteps : array, shape (M,)
        Continuous times from 1 down to ``sampling_eps``.
    sigmas : array, shape (M,)
        The noise level ``sigma(t)`` for each timestep, to pass to the model.
    discrete_sigmas : array, shape (N,)
        Geometric levels from ``sigma_min`` to ``sigma_max``, used by the updates.
    """

    order: int = 1
    config_name: str = "scheduler_config.json"
    _bound_namespace: str | None = None  # subclasses tie the schedule to one library
    _rounding: Rounding = FLOAT64  # how the schedule's values are computed and held
    _python_time_dtype: str = "float64"  # the dtype a Python-number timestep is indexed in

    def __init__(
        self,
        num_train_timesteps: int = 2000,
        snr: float = 0.15,
        sigma_min: float = 0.01,
        sigma_max: float = 1348.0,
        sampling_eps: float = 1e-5,
        correct_steps: int = 1,
        *,
        xp: Namespace | str | None = None,
        device: Any = None,
        corrector_norm: CorrectorNorm = "batch",
    ) -> None:
        self._config = SdeVeConfig(
            num_train_timesteps=num_train_timesteps, snr=snr, sigma_min=sigma_min, sigma_max=sigma_max,
            sampling_eps=sampling_eps, correct_steps=correct_steps,
        )
        if corrector_norm not in ("batch", "example"):
            raise ValueError(f"corrector_norm must be 'batch' or 'example', got {corrector_norm!r}")
        self.corrector_norm: CorrectorNorm = corrector_norm
        self._xp = self._resolve_xp(xp)
        self._device = device
        self.init_noise_sigma: float = self._config.sigma_max
        self._schedule: Schedule | None = None
        self.set_sigmas(self._config.num_train_timesteps)  # the config's (validated) levels

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> Any:
        """The scheduler's settings (immutable; attribute and key access)."""
        return self._config

    @property
    def xp(self) -> Namespace:
        """The namespace the schedule arrays are handed out in."""
        return self._xp

    @property
    def device(self) -> Any:
        """The device the schedule arrays live on (``None``: the namespace's default)."""
        return self._device

    @property
    def schedule(self) -> Schedule:
        """The current schedule value (host arrays, immutable)."""
        if self._schedule is None:
            raise ValueError("`self.timesteps` is not set, you need to run 'set_timesteps' after creating the scheduler")
        return self._schedule

    def _resolve_xp(self, xp: Namespace | str | None) -> Namespace:
        if self._bound_namespace is not None:
            bound = resolve_namespace(self._bound_namespace)
            if xp is not None and namespace_name(resolve_namespace(xp)) != namespace_name(bound):
                raise ValueError(f"{type(self).__name__} is bound to {self._bound_namespace}, got xp={xp!r}")
            return bound
        return resolve_namespace(xp)

    def __len__(self) -> int:
        return self._config.num_train_timesteps

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self._config.to_json_string()}"

    def __getstate__(self) -> dict[str, Any]:
        # Modules do not pickle (copy.deepcopy, multiprocessing): keep the namespace by its module name.
        return {**self.__dict__, "_xp": self._xp.__name__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _xp=resolve_namespace(state["_xp"]))

    # ------------------------------------------------------------------ schedule
    def _held(self, field: str) -> Array | None:
        if self._schedule is None:
            return None
        return getattr(self._schedule.arrays(self._xp, self._device), field)

    @property
    def timesteps(self) -> Array | None:
        """Continuous times ``(M,)`` from 1 down to ``sampling_eps``."""
        return self._held("timesteps")

    @property
    def sigmas(self) -> Array | None:
        """``sigma(t)`` ``(M,)`` for each timestep (set by :meth:`set_sigmas`)."""
        return self._held("sigmas")

    @property
    def discrete_sigmas(self) -> Array | None:
        """Geometric levels ``(N,)`` from ``sigma_min`` to ``sigma_max``."""
        return self._held("discrete_sigmas")

    def set_timesteps(self, num_inference_steps: int, sampling_eps: float | None = None, device: Any = None, *,
                      xp: Namespace | str | None = None) -> None:
        """Set the continuous timesteps ``linspace(1, sampling_eps, num_inference_steps)``.

        ``device`` (and ``xp``) move the schedule's arrays there. As in diffusers, ``sigmas`` and
        ``discrete_sigmas`` are left as they are: call :meth:`set_sigmas` to follow the new timesteps.
        """
        steps = check_num_steps(num_inference_steps)
        eps = self._override(sampling_eps, "sampling_eps")
        if xp is not None:
            self._xp = self._resolve_xp(xp)
        if device is not None:
            self._device = device
        times = self._rounding.timesteps(steps, eps)
        if self._schedule is None:
            self._schedule = Schedule.with_levels(times, steps, self._config.sigma_min, self._config.sigma_max,
                                                  rounding=self._rounding)
        else:
            self._schedule = self._schedule.with_timesteps(times)

    def set_sigmas(self, num_inference_steps: int, sigma_min: float | None = None, sigma_max: float | None = None,
                   sampling_eps: float | None = None) -> None:
        """Set the noise levels: ``sigmas`` for the current timesteps and ``num_inference_steps`` geometric
        ``discrete_sigmas`` between ``sigma_min`` and ``sigma_max`` (config values unless overridden).

        As in diffusers, the timesteps are only set here (from ``num_inference_steps`` and ``sampling_eps``)
        when none are set yet; otherwise ``sigmas`` follows the timesteps already set.
        """
        levels = check_num_steps(num_inference_steps)
        low, high = self._override(sigma_min, "sigma_min"), self._override(sigma_max, "sigma_max")
        eps = self._override(sampling_eps, "sampling_eps")
        if (sigma_min, sigma_max, sampling_eps) != (None, None, None):  # the config's checks of the combination
            self._config.replace(sigma_min=low, sigma_max=high, sampling_eps=eps)
        times = self._rounding.timesteps(levels, eps) if self._schedule is None else self._schedule.timesteps
        self._schedule = Schedule.with_levels(times, levels, low, high, rounding=self._rounding, reuse=self._schedule)

    def _override(self, value: Any, name: str) -> float:
        """A ``set_*`` override of a config value: the config's type checks (no bools, no strings)."""
        if value is None:
            return float(getattr(self._config, name))
        if name == "sampling_eps" and is_python_scalar(value) and not 0.0 < as_float(value, name) < 1.0:
            raise ValueError(f"sampling_eps must lie in (0, 1), got {float(value)}")
        return float(getattr(self._config.replace(**{name: value}), name))

    def scale_model_input(self, sample: Array, timestep: Any = None) -> Array:
        """Return ``sample`` unchanged (the VE SDE feeds the model the raw sample)."""
        return sample

    def get_adjacent_sigma(self, timesteps: Array, t: Array) -> Array:
        """``discrete_sigmas[timesteps - 1]``, and 0 where ``timesteps == 0`` (diffusers' signature; ``t`` only
        fixes the result's device). ``timesteps`` is an integer index array."""
        schedule = self.schedule
        check_indices(timesteps, schedule.num_levels, "timesteps")
        if not hasattr(timesteps, "shape"):
            return schedule.level(int(timesteps) - 1) if int(timesteps) else 0.0
        xp = array_namespace(timesteps)
        levels = schedule.arrays(xp, device_of(timesteps)).discrete_sigmas
        below = xp.take(levels, xp.clip(timesteps - 1, 0, levels.shape[0] - 1), axis=0)
        return xp.where(timesteps == 0, xp.zeros_like(below), below)

    def _ready(self, sample: Array, xp: Namespace) -> Schedule:
        """The schedule, with a level for every timestep; ``ValueError`` when ``sigma_max**2`` overflows the
        compute dtype of ``sample`` (checked once a dtype)."""
        schedule = self._schedule if self._schedule is not None else self.schedule  # the property raises
        if not schedule.complete:
            raise ValueError(
                f"the schedule has {schedule.num_timesteps} timesteps but only {schedule.num_levels} discrete "
                f"sigmas: call set_sigmas({schedule.num_timesteps}) after set_timesteps({schedule.num_timesteps})"
            )
        # The array type first: dtypes of different libraries then never meet in a comparison (array_api_strict's
        # compare through NumPy); str() of a JAX dtype costs 10 µs.
        key = (type(sample), sample.dtype, self._config.sigma_max)
        if key not in _FITS:
            check_sigma_max(self._config.sigma_max, sample.dtype, xp=xp)
            _FITS.add(key)
        return schedule

    # ------------------------------------------------------------------ noise
    def _draw(self, backend: Backend, generator: Any, sample: Array, purpose: str) -> Array:
        """Standard-normal noise like ``sample`` drawn from ``generator`` itself, unsplit: the same JAX key gives
        the same noise, as ``jax.random.normal(key, ...)`` does (``purpose``: ``"pred"``, ``"correct"`` or
        ``"add_noise"``; a front end reproducing another library's draws chooses per purpose)."""
        device = device_of(sample)
        source = backend.make_generator(generator, device)
        return backend.normal(source, tuple(sample.shape), dtype=sample.dtype, device=device, like=sample)

    def _noise(self, backend: Backend, generator: Any, sample: Array, noise: Array | None, purpose: str) -> Array:
        if noise is None:
            return self._draw(backend, generator, sample, purpose)
        check_pair(noise, sample, name="noise")
        return noise

    # ------------------------------------------------------------------ steps
    def step_pred(self, model_output: Array, timestep: Any, sample: Array, generator: Any = None,
                  return_dict: bool = True, *, noise: Array | None = None) -> SdeVeOutput | tuple[Array, Array]:
        """Reverse-diffusion predictor step from continuous ``timestep`` (Song et al. 2021, eq. 47).

        Parameters
        ----------
        model_output
            The score ``grad_x log p_sigma(x)`` at ``sample``, shape ``(B, ...)``.
        timestep
            Continuous time in ``[0, 1]`` (usually an element of ``timesteps``): a number, a 0-d array or a
            ``(B,)`` array. The level used is ``discrete_sigmas[floor(t * (M - 1))]`` with ``M`` timesteps,
            the product taken in ``t``'s dtype.
        sample
            The current sample, shape ``(B, ...)``, any real floating dtype.
        generator
            The sample framework's generator (``numpy.random.Generator``, ``torch.Generator``, a JAX key, ...)
            or an int seed; ``None`` draws fresh noise. Ignored when ``noise`` is given.
        noise
            Standard-normal noise of ``sample``'s shape to use instead of drawing.

        Returns
        -------
        SdeVeOutput(prev_sample, prev_sample_mean), or that tuple when ``return_dict=False``.
        """
        xp = check_pair(model_output, sample)
        schedule = self._ready(sample, xp)
        backend = backend_for(sample)
        level = host_level(timestep, backend, schedule.num_timesteps, self._python_time_dtype)
        if level is None:
            a, b = device_coefficients(schedule, timestep, sample, xp, backend)
        else:
            a, b = schedule.predictor_coefficients(level)
        drawing = _compiled_with_draw(self, backend, predictor_with_draw, ("backend", "xp")) if noise is None else None
        if drawing is not None:
            source = backend.make_generator(generator, _new_source_device(generator, sample))
            prev, prev_mean = drawing(sample, a, model_output, b, source, backend=backend, xp=xp)
        else:
            z = self._noise(backend, generator, sample, noise, "pred")
            prev, prev_mean = updates.combine_with(backend.combine, sample, a, model_output, b, z, xp=xp,
                                                    reuse=noise is None)
        return SdeVeOutput(prev, prev_mean) if return_dict else (prev, prev_mean)

    def step_correct(self, model_output: Array, sample: Array, generator: Any = None, return_dict: bool = True, *,
                     noise: Array | None = None) -> SchedulerOutput | tuple[Array]:
        """Langevin corrector step (Song et al. 2021, Alg. 5) with the snr step-size rule.

        Same arguments as :meth:`step_pred` less the timestep. With an all-zero ``model_output`` the step
        size would be infinite; the sample is returned unchanged instead.

        Returns
        -------
        SchedulerOutput(prev_sample), or ``(prev_sample,)`` when ``return_dict=False``.
        """
        xp = check_pair(model_output, sample)
        self._ready(sample, xp)
        backend = backend_for(sample)
        drawing = _compiled_with_draw(self, backend, corrector_with_draw, ("backend", "norm", "xp")) \
            if noise is None else None
        if drawing is not None:
            source = backend.make_generator(generator, _new_source_device(generator, sample))
            prev, _ = drawing(sample, model_output, source, self._config.snr, backend=backend,
                              norm=self.corrector_norm, xp=xp)
            return SchedulerOutput(prev) if return_dict else (prev,)
        z = self._noise(backend, generator, sample, noise, "correct")
        # The core's corrector, compiled where the backend compiles.
        update = backend.jit(updates.corrector_update,
                             static_argnames=("norm", "xp", "fused", "norms", "host", "reuse", "host_norms"))
        # Eagerly, with a score that may be read as a constant, the batch step size is a Python float (it depends
        # on the score and the noise only, so a sample under autograd keeps its gradient).
        host = update is updates.corrector_update and backend.readable(model_output)
        prev, _ = update(sample, model_output, z, self._config.snr, norm=self.corrector_norm, xp=xp,
                         fused=backend.combine, norms=backend.norms, host=host, reuse=noise is None,
                         host_norms=backend.host_norms)
        return SchedulerOutput(prev) if return_dict else (prev,)

    def add_noise(self, original_samples: Array, noise: Array | None, timesteps: Any, *,
                  generator: Any = None) -> Array:
        """Forward VE noising ``original + discrete_sigmas[timesteps] * noise`` for samples of any rank >= 1.

        ``timesteps`` holds integer indices into ``discrete_sigmas``: a number, or an array of shape ``()`` or
        ``(B,)``. ``noise=None`` draws it from ``generator``.
        """
        if not hasattr(original_samples, "shape"):
            raise TypeError(f"original_samples must be an array, got {type(original_samples).__name__}")
        backend = backend_for(original_samples)
        noise = self._noise(backend, generator, original_samples, noise, "add_noise")
        xp = check_pair(noise, original_samples, name="noise")
        schedule = self.schedule
        check_indices(timesteps, schedule.num_levels, "timesteps")
        if not hasattr(timesteps, "shape") or is_python_scalar(timesteps):
            return updates.add_noise(original_samples, noise, schedule.level(int(timesteps)), xp=xp)
        if namespace_name(array_namespace(timesteps)) != namespace_name(xp):
            raise TypeError("timesteps must come from the same library as original_samples (or be an int)")
        if timesteps.ndim > 1 or (timesteps.ndim == 1 and timesteps.shape[0] not in (1, batch_size(original_samples))):
            raise ValueError(f"timesteps must be a scalar or of shape (B,), got {tuple(timesteps.shape)}")
        levels = schedule.arrays(xp, device_of(original_samples)).discrete_sigmas
        indices = xp.clip(to_device(timesteps, device_of(original_samples)), 0, schedule.num_levels - 1)
        sigma = xp.take(levels, xp.reshape(indices, (-1,)), axis=0)
        return updates.add_noise(original_samples, noise, xp.reshape(sigma, tuple(timesteps.shape)), xp=xp)

    # ------------------------------------------------------------------ generic init/step (Bumblebee's behaviour)
    def init(self, num_inference_steps: int, sample_shape: Any, generator: Any = None,
             xp: Namespace | str | None = None, device: Any = None) -> tuple[_state.SamplerState, Array]:
        """Start a sampling loop that any model loop can drive (Bumblebee's ``init``; see :func:`sdeve.sample`).

        Returns ``(state, sigmas)``: ``state`` is a :class:`sdeve.SamplerState` (a pytree on JAX) holding the
        step counter and the noise source (``generator``: the framework's generator, a JAX key, or an int
        seed); ``sigmas``, shape ``(N * (correct_steps + 1),)``, is the noise level to give the model at every
        step, in order. ``xp``/``device`` default to the scheduler's. Start from :meth:`initial_sample` (or
        your own ``sigma_max * N(0, I)``), then call :meth:`step` once per entry of ``sigmas``.
        """
        namespace = self._xp if xp is None else self._resolve_xp(xp)
        place = self._device if xp is None and device is None else device
        return _state.init_state(self._config, num_inference_steps, sample_shape, generator=generator,
                                 xp=namespace, device=place)

    def initial_sample(self, state: _state.SamplerState, dtype: Any = None) -> tuple[_state.SamplerState, Array]:
        """``(state, sigma_max * z)``: the starting sample drawn from the state's noise source (the same draw
        :func:`sdeve.sample` makes first, so that equal generators give equal results)."""
        return _state.initial_state_sample(self._config, state, dtype)

    def step(self, state: _state.SamplerState, sample: Array, model_output: Array) -> tuple[_state.SamplerState, Array]:
        """``(state, sample)`` after the update that comes next: one of ``correct_steps`` Langevin corrector
        updates, then the predictor update, per timestep; the last step returns the denoised mean.

        ``model_output`` is the score at ``sample`` and level ``sigmas[k]``, ``k`` the number of steps taken.
        """
        return _state.step_state(self._config, self.corrector_norm, state, sample, model_output)


def _compiled_with_draw(scheduler: ScoreSdeVeScheduler, backend: Backend, fn: Callable[..., Any],
                        static: tuple[str, ...]) -> Callable[..., Any] | None:
    """``fn`` (an update that draws its own noise) compiled by ``backend``, so that a step's draw and update are
    one program (JAX: one dispatch rather than two for an eager step); ``None`` where the backend does not
    compile or the front end draws otherwise than the generic scheduler."""
    key = (type(scheduler), backend, fn)
    if key not in _DRAWING:  # once per front end, backend and update: looking it up costs microseconds a step
        compiled = backend.jit(fn, static_argnames=static) if type(scheduler)._draw is ScoreSdeVeScheduler._draw else fn
        _DRAWING[key] = None if compiled is fn else compiled
    return _DRAWING[key]


def _new_source_device(generator: Any, sample: Array) -> Any:
    """The sample's device where ``make_generator`` makes a new source (from ``None`` or a seed), else ``None``:
    a generator or key is kept as it is, and reading a JAX array's device costs microseconds a step."""
    return device_of(sample) if generator is None or is_python_scalar(generator) else None


_DRAWING: dict[tuple[type, Backend, Callable[..., Any]], Callable[..., Any] | None] = {}


def predictor_with_draw(sample: Array, a: Any, model_output: Array, b: Any, source: Any, *, backend: Backend,
                        xp: Namespace) -> tuple[Array, Array]:
    """:func:`sdeve.updates.combine` (the predictor, Song et al. 2021, eq. 47) with its noise drawn from
    ``source`` by ``backend``, as :meth:`ScoreSdeVeScheduler._draw` draws it, for :meth:`Backend.jit`."""
    noise = backend.normal(source, tuple(sample.shape), dtype=sample.dtype, like=sample)
    return updates.combine(sample, a, model_output, b, noise, xp=xp)


def corrector_with_draw(sample: Array, model_output: Array, source: Any, snr: Any, *, backend: Backend,
                        norm: CorrectorNorm, xp: Namespace) -> tuple[Array, Array]:
    """:func:`sdeve.updates.corrector_update` (Song et al. 2021, Alg. 5) with its noise drawn from ``source``
    by ``backend``, as :meth:`ScoreSdeVeScheduler._draw` draws it, for :meth:`Backend.jit` (``snr`` traced, so
    one program serves every value)."""
    noise = backend.normal(source, tuple(sample.shape), dtype=sample.dtype, like=sample)
    return updates.corrector_update(sample, model_output, noise, snr, norm=norm, xp=xp)


def check_indices(indices: Any, levels: int, name: str) -> None:
    """``TypeError``/``ValueError`` unless ``indices`` are integer indices in ``[0, levels - 1]`` (arrays read
    only where that is cheap)."""
    if isinstance(indices, bool) or (is_python_scalar(indices) and not hasattr(indices, "__index__")):
        raise TypeError(f"{name} must be integer indices into discrete_sigmas, got {indices!r}")
    if hasattr(indices, "__index__") and getattr(indices, "ndim", 0) == 0 and not hasattr(indices, "__array_namespace__"):
        if not 0 <= operator.index(indices) < levels:
            raise ValueError(f"{name} must lie in [0, {levels - 1}], got {indices}")
        return
    if is_python_scalar(indices):  # a NumPy integer scalar
        if not 0 <= int(indices) < levels:
            raise ValueError(f"{name} must lie in [0, {levels - 1}], got {indices}")
        return
    xp = array_namespace(indices)
    if not xp.isdtype(indices.dtype, "integral"):
        raise TypeError(f"{name} must be integer indices into discrete_sigmas, got dtype {indices.dtype}")
    if backend_for(indices).readable(indices) and not bool(xp.all((indices >= 0) & (indices < levels))):
        raise ValueError(f"{name} must lie in [0, {levels - 1}]")


def host_level(timestep: Any, backend: Backend, num_timesteps: int, python_dtype: str) -> int | None:
    """The level of a timestep that can be indexed on the host (a number, or a readable 0-d float32/64
    array, in its own dtype), else ``None``."""
    if is_python_scalar(timestep):
        check_unit_interval(timestep)
        return host_index(float(timestep), num_timesteps, python_dtype)
    if getattr(timestep, "ndim", None) != 0 or not backend.readable(timestep):
        return None
    dtype = _host_dtype_name(timestep)
    if dtype is None:
        return None
    value = float(timestep)  # one read; the range check is on the host value
    check_unit_interval(value)
    return host_index(value, num_timesteps, dtype)


_HOST_DTYPE_NAMES: dict[tuple[type, Any], str | None] = {}


def _host_dtype_name(t: Array) -> str | None:
    """``"float32"``/``"float64"`` for an array of that dtype, else ``None`` (once per array type and dtype)."""
    key = (type(t), t.dtype)
    if key not in _HOST_DTYPE_NAMES:
        xp = array_namespace(t)
        _HOST_DTYPE_NAMES[key] = next((name for name in HOST_DTYPES if t.dtype == getattr(xp, name)), None)
    return _HOST_DTYPE_NAMES[key]


def device_coefficients(schedule: Schedule, timestep: Any, sample: Array, xp: Namespace,
                        backend: Backend) -> tuple[Array, Array]:
    """``(g^2, g)`` gathered on the sample's device for an array timestep: 0-d or ``(B,)``."""
    if not hasattr(timestep, "shape"):
        raise TypeError(f"timestep must be a real number or an array, got {type(timestep).__name__}")
    if timestep.ndim > 1 or (timestep.ndim == 1 and timestep.shape[0] not in (1, batch_size(sample))):
        raise ValueError(f"timestep must be a scalar or of shape (B,) = ({sample.shape[0]},), got {tuple(timestep.shape)}")
    if namespace_name(array_namespace(timestep)) != namespace_name(xp):
        raise TypeError("a timestep array must come from the same library as the sample (or be a Python number)")
    device = device_of(sample)
    moved = schedule.arrays(xp, device)
    if not xp.isdtype(timestep.dtype, "real floating"):
        timestep = xp.astype(timestep, moved.drift.dtype)
    check_unit_interval(timestep, readable=backend.readable(timestep))
    index = xp.reshape(timestep_index(to_device(timestep, device), schedule.num_timesteps, xp=xp), (-1,))
    drift, diffusion = xp.take(moved.drift, index, axis=0), xp.take(moved.diffusion, index, axis=0)
    if timestep.ndim == 0:
        return xp.reshape(drift, ()), xp.reshape(diffusion, ())
    return drift, diffusion
