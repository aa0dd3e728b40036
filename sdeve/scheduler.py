"""``ScoreSdeVeScheduler``: diffusers' object API over the core, for arrays of any supported library.

The schedule is held in one namespace and device (NumPy on the CPU unless ``xp=``/``device=`` say otherwise).
A step takes arrays of any supported library: the schedule is rebuilt once in the sample's namespace and
device and cached there; the sample is never moved to the schedule. Every array this class hands back has
the sample's namespace, device and dtype.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping
from typing import Any

from . import schedule as _schedule
from . import updates as _updates
from ._xp import (
    Array,
    Namespace,
    array_namespace,
    device_of,
    index_dtype,
    is_concrete_on_host,
    namespace_name,
    resolve_namespace,
    scalars_on_host,
    schedule_dtype,
    to_device,
)
from .config import CONFIG_NAME, ConfigError, SdeVeConfig
from .outputs import SchedulerOutput, SdeVeOutput
from .updates import CorrectorNorm
from .validation import batch_size, check_pair, check_unit_interval, is_python_scalar

__all__ = ["ScoreSdeVeScheduler"]

# Keyword arguments of diffusers' from_pretrained that concern the Hub; accepted and ignored (we read local files).
_HUB_KWARGS = frozenset(
    {"cache_dir", "force_download", "resume_download", "proxies", "output_loading_info", "local_files_only",
     "token", "use_auth_token", "revision", "mirror", "user_agent", "_from_pipeline", "_commit_hash"}
)


class ScoreSdeVeScheduler:
    """The variance-exploding SDE predictor-corrector scheduler (Song et al. 2021), diffusers' API.

    Parameters
    ----------
    num_train_timesteps, snr, sigma_min, sigma_max, sampling_eps, correct_steps
        See :class:`sdeve.SdeVeConfig` (diffusers' names and defaults).
    xp
        Namespace the schedule arrays (``timesteps``, ``sigmas``, ``discrete_sigmas``) are built in: a module
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
    config_name: str = CONFIG_NAME
    _bound_namespace: str | None = None  # subclasses tie the schedule to one library

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
        self.timesteps: Array | None = None
        self.sigmas: Array | None = None
        self.discrete_sigmas: Array | None = None
        # The recipes the schedule arrays were built from, so that they can be rebuilt in any namespace.
        self._timesteps_recipe: tuple[int, float] | None = None
        self._sigmas_recipe: tuple[tuple[int, float], int, float, float] | None = None
        self._discrete_cache: dict[tuple[str, str], Array] = {}
        self._host_table: list[tuple[float, float]] | bool | None = None  # see _host_levels
        self.set_sigmas(self._config.num_train_timesteps, sigma_min, sigma_max, sampling_eps)

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> SdeVeConfig:
        """The scheduler's settings (immutable; attribute and key access)."""
        return self._config

    @property
    def xp(self) -> Namespace:
        """The namespace the schedule arrays live in."""
        return self._xp

    @property
    def device(self) -> Any:
        """The device the schedule arrays live on (``None``: the namespace's default)."""
        return self._device

    def _resolve_xp(self, xp: Namespace | str | None) -> Namespace:
        if self._bound_namespace is not None:
            bound = resolve_namespace(self._bound_namespace)
            if xp is not None and namespace_name(resolve_namespace(xp)) != namespace_name(bound):
                raise ValueError(f"{type(self).__name__} is bound to {self._bound_namespace}, got xp={xp!r}")
            return bound
        return resolve_namespace(xp)

    def _schedule_dtype(self, xp: Namespace, device: Any) -> Any:
        """The dtype of schedule arrays in ``xp`` on ``device``: float64 where available."""
        return schedule_dtype(xp, device)

    def __len__(self) -> int:
        return self._config.num_train_timesteps

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self._config.to_json_string()}"

    def __getstate__(self) -> dict[str, Any]:
        # Modules do not pickle (copy.deepcopy, multiprocessing): keep the namespace by its module name; the
        # per-namespace cache (keyed by modules) is rebuilt on demand.
        state = self.__dict__.copy()
        state["_xp"] = self._xp.__name__
        state["_discrete_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _xp=importlib.import_module(state["_xp"]))

    # ------------------------------------------------------------------ schedule
    def _build_timesteps(self, xp: Namespace, device: Any) -> Array:
        assert self._timesteps_recipe is not None
        steps, eps = self._timesteps_recipe
        return _schedule.timesteps(steps, eps, xp=xp, device=device, dtype=self._schedule_dtype(xp, device))

    def _build_sigmas(self, xp: Namespace, device: Any) -> tuple[Array, Array]:
        assert self._sigmas_recipe is not None
        (steps, eps), levels, sigma_min, sigma_max = self._sigmas_recipe
        dtype = self._schedule_dtype(xp, device)
        # Timesteps are built in the held dtype (so that they equal the ones handed out), the levels in the
        # widest dtype available and then rounded once to the held dtype.
        wide = schedule_dtype(xp, device)
        times = xp.astype(_schedule.timesteps(steps, eps, xp=xp, device=device, dtype=dtype), wide)
        sigmas = _schedule.continuous_sigmas(times, sigma_min, sigma_max, xp=xp)
        discrete = _schedule.discrete_sigmas(levels, sigma_min, sigma_max, xp=xp, device=device, dtype=wide)
        return xp.astype(sigmas, dtype), xp.astype(discrete, dtype)

    def set_timesteps(
        self,
        num_inference_steps: int,
        sampling_eps: float | None = None,
        device: Any = None,
        *,
        xp: Namespace | str | None = None,
    ) -> None:
        """Set the continuous timesteps ``linspace(1, sampling_eps, num_inference_steps)``.

        ``device`` (and ``xp``) move the whole schedule there: later steps and ``set_sigmas`` build in it.
        As in diffusers, ``sigmas`` and ``discrete_sigmas`` are left as they are: call :meth:`set_sigmas` to
        follow the new timesteps.
        """
        steps = _schedule.check_num_steps(num_inference_steps)
        eps = self._config.sampling_eps if sampling_eps is None else float(sampling_eps)
        if not (0.0 < eps < 1.0):
            raise ValueError(f"sampling_eps must lie in (0, 1), got {eps}")
        if xp is not None:
            self._xp = self._resolve_xp(xp)
        if device is not None:
            self._device = device
        self._timesteps_recipe = (steps, eps)
        self.timesteps = self._build_timesteps(self._xp, self._device)
        if self._sigmas_recipe is not None and (xp is not None or device is not None):
            self.sigmas, self.discrete_sigmas = self._build_sigmas(self._xp, self._device)
            self._discrete_cache.clear()
            self._host_table = None

    def set_sigmas(
        self,
        num_inference_steps: int,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        sampling_eps: float | None = None,
    ) -> None:
        """Set the noise levels: ``sigmas`` for the current timesteps and ``num_inference_steps`` geometric
        ``discrete_sigmas`` between ``sigma_min`` and ``sigma_max`` (config values unless overridden).

        As in diffusers, the timesteps are only set here (from ``num_inference_steps`` and ``sampling_eps``)
        when none are set yet; otherwise ``sigmas`` follows the timesteps already set.
        """
        levels = _schedule.check_num_steps(num_inference_steps)
        sigma_min = self._config.sigma_min if sigma_min is None else float(sigma_min)
        sigma_max = self._config.sigma_max if sigma_max is None else float(sigma_max)
        eps = self._config.sampling_eps if sampling_eps is None else float(sampling_eps)
        # The same range checks as the config's, for the overrides.
        self._config.replace(sigma_min=sigma_min, sigma_max=sigma_max, sampling_eps=eps)
        if self._timesteps_recipe is None:
            self.set_timesteps(levels, eps)
        assert self._timesteps_recipe is not None
        self._sigmas_recipe = (self._timesteps_recipe, levels, sigma_min, sigma_max)
        self.sigmas, self.discrete_sigmas = self._build_sigmas(self._xp, self._device)
        self._discrete_cache.clear()
        self._host_table = None

    def scale_model_input(self, sample: Array, timestep: Any = None) -> Array:
        """Return ``sample`` unchanged (the VE SDE feeds the model the raw sample)."""
        return sample

    def _discrete_sigmas_for(self, xp: Namespace, device: Any) -> Array:
        """``discrete_sigmas`` in ``xp`` on ``device``: the held array when it is already there, else a
        rebuilt copy, cached (not under a JAX trace, where ``device`` is ``None``)."""
        assert self.discrete_sigmas is not None and self._sigmas_recipe is not None
        key = (namespace_name(xp), str(device))
        if key == (namespace_name(self._xp), str(device_of(self.discrete_sigmas))):
            return self.discrete_sigmas
        cached = self._discrete_cache.get(key)
        if cached is not None:
            return cached
        if device is None and namespace_name(xp) == namespace_name(self._xp):
            # Under jax.jit (no device): the held, eagerly built levels, not a traced rebuild. XLA fuses the
            # rebuilt linspace/exp differently and moves a level by an ulp, which g^2 = sigma^2 - adj^2 then
            # amplifies up to ~270 times (conformance's jit check measured 2e-4 in float32 at N = 10^4).
            return self.discrete_sigmas
        built = self._build_sigmas(xp, device)[1]
        if device is not None:
            self._discrete_cache[key] = built
        return built

    def get_adjacent_sigma(self, timesteps: Array, t: Array) -> Array:
        """``discrete_sigmas[timesteps - 1]``, and 0 where ``timesteps == 0`` (diffusers' signature; ``t`` only
        fixes the result's device). ``timesteps`` is an integer index array."""
        xp = array_namespace(timesteps)
        discrete = self._discrete_sigmas_for(xp, device_of(timesteps))
        self._check_indices(timesteps, discrete.shape[0], "timesteps")
        return _schedule.adjacent_sigmas(discrete, timesteps, xp=xp)

    # ------------------------------------------------------------------ noise hooks
    def _noise(self, generator: Any, sample: Array, purpose: str) -> Array:
        """Standard-normal noise like ``sample`` from ``generator`` via the sample's adapter.

        ``purpose`` is ``"pred"``, ``"correct"`` or ``"add_noise"``; front ends that must reproduce another
        library's draws (the diffusers drop-in) override this.
        """
        return self._adapter(sample).normal_like(generator, sample)

    def _prepare_noise(self, generator: Any, sample: Array, noise: Array | None, purpose: str) -> tuple[Any, Any, bool]:
        """``(adapter, noise, owns_noise)`` for a step. ``noise`` stays ``None`` when the adapter draws it inside
        its fused update (one dispatch on JAX) and this class draws as the adapter does (the drop-in does not)."""
        adapter = self._adapter(sample)
        if noise is not None:
            check_pair(noise, sample)
            return adapter, noise, False
        if not (adapter.draws_in_update and type(self)._noise is ScoreSdeVeScheduler._noise):
            noise = self._noise(generator, sample, purpose)
        return adapter, noise, True

    @staticmethod
    def _adapter(sample: Array) -> Any:
        """The ``sdeve_backends`` adapter for ``sample``'s library (noise, devices, fused fast paths)."""
        from sdeve_backends import adapter_for  # noqa: PLC0415 - the adapters import frameworks lazily

        return adapter_for(sample)

    # ------------------------------------------------------------------ index helpers
    def _host_index(self, t: float, num_timesteps: int) -> int:
        """``floor(t * (M - 1))`` for a host scalar ``t`` (float64 arithmetic)."""
        return min(max(math.floor(t * (num_timesteps - 1)), 0), num_timesteps - 1)

    @staticmethod
    def _check_indices(indices: Any, levels: int, name: str) -> None:
        if is_python_scalar(indices):
            if not float(indices).is_integer():
                raise TypeError(f"{name} must be integer indices into discrete_sigmas, got {indices!r}")
            if not 0 <= int(indices) < levels:
                raise ValueError(f"{name} must lie in [0, {levels - 1}], got {indices}")
            return
        xp = array_namespace(indices)
        if not xp.isdtype(indices.dtype, "integral"):
            raise TypeError(f"{name} must be integer indices into discrete_sigmas, got dtype {indices.dtype}")
        if is_concrete_on_host(indices) and not bool(xp.all((indices >= 0) & (indices < levels))):
            raise ValueError(f"{name} must lie in [0, {levels - 1}]")

    def _require_schedule(self) -> tuple[int, int]:
        if self.timesteps is None or self._timesteps_recipe is None or self._sigmas_recipe is None:
            raise ValueError("`self.timesteps` is not set, you need to run 'set_timesteps' after creating the scheduler")
        num_timesteps = self._timesteps_recipe[0]
        levels = self._sigmas_recipe[1]
        if num_timesteps > levels:
            raise ValueError(
                f"the schedule has {num_timesteps} timesteps but only {levels} discrete sigmas: call "
                f"set_sigmas({num_timesteps}) after set_timesteps({num_timesteps})"
            )
        return num_timesteps, levels

    def _host_levels(self) -> list[tuple[float, float]] | None:
        """``(sigma, adjacent_sigma)`` of every level as Python floats, when the held schedule is in host
        memory (read once per schedule with ``tolist``), else ``None``.

        With a host timestep a step then needs no device read and no 0-d array arithmetic, whatever the
        sample's library or device: the coefficients reach the update as scalars (kernel arguments on a GPU).
        """
        if self._host_table is None:
            held = self.discrete_sigmas
            if held is not None and hasattr(held, "tolist") and is_concrete_on_host(held):
                levels = held.tolist()
                self._host_table = [(level, levels[j - 1] if j else 0.0) for j, level in enumerate(levels)]
            else:
                self._host_table = False
        return self._host_table if isinstance(self._host_table, list) else None

    def _predictor_sigmas(self, timestep: Any, sample: Array, xp: Namespace) -> tuple[Any, Any]:
        """``(sigma, adjacent_sigma)`` for ``timestep``: Python floats (host) or 0-d arrays for a scalar time,
        ``(B,)`` arrays for a batch of times."""
        num_timesteps, _ = self._require_schedule()
        is_array = hasattr(timestep, "shape") and hasattr(timestep, "dtype")
        # A host scalar: index on the host, no device arrays built. Not for JAX: there the index is computed
        # as under jax.jit (product in t's dtype); a float32 t indexed in float64 on the host moved some steps
        # a level (timesteps[1] and [2] of 2000, found by conformance's jit check).
        if is_array and timestep.ndim == 0 and scalars_on_host(timestep):
            timestep = float(timestep)
            is_array = False
        if not is_array:
            if not is_python_scalar(timestep):
                raise TypeError(f"timestep must be a real number or an array, got {type(timestep).__name__}")
            check_unit_interval(timestep)
            index = self._host_index(float(timestep), num_timesteps)
            table = self._host_levels()
            if table is not None:
                return table[index]
            discrete = self._discrete_sigmas_for(xp, device_of(sample))
            if scalars_on_host(discrete):
                return float(discrete[index]), (float(discrete[index - 1]) if index > 0 else 0.0)
            return discrete[index], _schedule.adjacent_sigmas(discrete, index, xp=xp)
        device = device_of(sample)
        discrete = self._discrete_sigmas_for(xp, device)
        if timestep.ndim > 1 or (timestep.ndim == 1 and timestep.shape[0] not in (1, batch_size(sample))):
            raise ValueError(f"timestep must be a scalar or of shape (B,) = ({sample.shape[0]},), got {tuple(timestep.shape)}")
        if namespace_name(array_namespace(timestep)) != namespace_name(xp):
            raise TypeError("a timestep array must come from the same library as the sample (or be a Python number)")
        if not xp.isdtype(timestep.dtype, "real floating"):
            timestep = xp.astype(timestep, self._schedule_dtype(xp, device))
        check_unit_interval(timestep)
        timestep = to_device(timestep, device)
        index = _schedule.timestep_index(timestep, num_timesteps, xp=xp)
        sigma = xp.take(discrete, xp.reshape(index, (-1,)), axis=0)
        adjacent = _schedule.adjacent_sigmas(discrete, xp.reshape(index, (-1,)), xp=xp)
        if timestep.ndim == 0:
            sigma, adjacent = xp.reshape(sigma, ()), xp.reshape(adjacent, ())
        return sigma, adjacent

    # ------------------------------------------------------------------ steps
    def step_pred(
        self,
        model_output: Array,
        timestep: Any,
        sample: Array,
        generator: Any = None,
        return_dict: bool = True,
        *,
        noise: Array | None = None,
    ) -> SdeVeOutput | tuple[Array, Array]:
        """Reverse-diffusion predictor step from continuous ``timestep`` (Song et al. 2021, eq. 47).

        Parameters
        ----------
        model_output
            The score ``grad_x log p_sigma(x)`` at ``sample``, shape ``(B, ...)``.
        timestep
            Continuous time in ``[0, 1]`` (usually an element of ``timesteps``): a number, a 0-d array or a
            ``(B,)`` array. The level used is ``discrete_sigmas[floor(t * (M - 1))]`` with ``M`` timesteps.
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
        sigma, adjacent = self._predictor_sigmas(timestep, sample, xp)
        adapter, noise, owns_noise = self._prepare_noise(generator, sample, noise, "pred")
        fused = adapter.predictor_update(
            sample, model_output, noise, sigma, adjacent, owns_noise=owns_noise, generator=generator
        )
        if fused is None:
            noise = self._noise(generator, sample, "pred") if noise is None else noise
            fused = _updates.predictor_update(sample, model_output, noise, sigma, adjacent, xp=xp)
        prev, prev_mean = fused
        if not return_dict:
            return (prev, prev_mean)
        return SdeVeOutput(prev_sample=prev, prev_sample_mean=prev_mean)

    def step_correct(
        self,
        model_output: Array,
        sample: Array,
        generator: Any = None,
        return_dict: bool = True,
        *,
        noise: Array | None = None,
    ) -> SchedulerOutput | tuple[Array]:
        """Langevin corrector step (Song et al. 2021, Alg. 5) with the snr step-size rule.

        Same arguments as :meth:`step_pred` less the timestep. With an all-zero ``model_output`` the step
        size would be infinite; the sample is returned unchanged instead.

        Returns
        -------
        SchedulerOutput(prev_sample), or ``(prev_sample,)`` when ``return_dict=False``.
        """
        self._require_schedule()
        xp = check_pair(model_output, sample)
        adapter, noise, owns_noise = self._prepare_noise(generator, sample, noise, "correct")
        snr, norm = self._config.snr, self.corrector_norm
        fused = adapter.corrector_update(
            sample, model_output, noise, snr, norm=norm, owns_noise=owns_noise, generator=generator
        )
        if fused is None:
            noise = self._noise(generator, sample, "correct") if noise is None else noise
            fused = _updates.corrector_update(sample, model_output, noise, snr, norm=norm, xp=xp)
        prev = fused[0]
        if not return_dict:
            return (prev,)
        return SchedulerOutput(prev_sample=prev)

    def add_noise(
        self, original_samples: Array, noise: Array | None, timesteps: Any, *, generator: Any = None
    ) -> Array:
        """Forward VE noising ``original + discrete_sigmas[timesteps] * noise`` for samples of any rank >= 1.

        ``timesteps`` holds integer indices into ``discrete_sigmas``: a number, or an array of shape ``()`` or
        ``(B,)``. ``noise=None`` draws it from ``generator``.
        """
        if not hasattr(original_samples, "shape"):
            raise TypeError(f"original_samples must be an array, got {type(original_samples).__name__}")
        xp = array_namespace(original_samples)
        if noise is None:
            noise = self._noise(generator, original_samples, "add_noise")
        xp = check_pair(noise, original_samples)
        discrete = self._discrete_sigmas_for(xp, device_of(original_samples))
        levels = discrete.shape[0]
        self._check_indices(timesteps, levels, "timesteps")
        if is_python_scalar(timesteps):
            sigma = discrete[int(timesteps)]
        else:
            if namespace_name(array_namespace(timesteps)) != namespace_name(xp):
                raise TypeError("timesteps must come from the same library as original_samples (or be an int)")
            if timesteps.ndim > 1 or (timesteps.ndim == 1 and timesteps.shape[0] not in (1, batch_size(original_samples))):
                raise ValueError(f"timesteps must be a scalar or of shape (B,), got {tuple(timesteps.shape)}")
            indices = to_device(timesteps, device_of(original_samples))
            indices = xp.clip(indices, 0, levels - 1)
            sigma = xp.take(discrete, xp.astype(xp.reshape(indices, (-1,)), index_dtype(xp, device_of(discrete))), axis=0)
            if timesteps.ndim == 0:
                sigma = xp.reshape(sigma, ())
        return _updates.add_noise(original_samples, noise, sigma, xp=xp)

    # ------------------------------------------------------------------ generic init/step (Bumblebee's behaviour)
    def init(
        self, num_inference_steps: int, sample_shape: Any, generator: Any = None, xp: Namespace | str | None = None,
        device: Any = None,
    ) -> tuple[Any, Array]:
        """Start a sampling loop that any model loop can drive (Bumblebee's ``init``; see :func:`sdeve.sample`).

        Returns ``(state, sigmas)``: ``state`` is a :class:`sdeve.sampler.SamplerState` (a pytree on JAX)
        holding the step counter and the noise source (``generator``: the framework's generator, a JAX key, or
        an int seed); ``sigmas``, shape ``(N * (correct_steps + 1),)``, is the noise level to give the model at
        every step, in order. ``xp``/``device`` default to the scheduler's. Start from
        :meth:`initial_sample` (or your own ``sigma_max * N(0, I)``), then call :meth:`step` once per entry
        of ``sigmas``.
        """
        from .sampler import init_state  # noqa: PLC0415 - sampler imports this module

        return init_state(self, num_inference_steps, sample_shape, generator=generator,
                          xp=self._xp if xp is None else self._resolve_xp(xp),
                          device=self._device if xp is None and device is None else device)

    def initial_sample(self, state: Any, dtype: Any = None) -> tuple[Any, Array]:
        """``(state, sigma_max * z)``: the starting sample drawn from the state's noise source (the same draw
        :func:`sdeve.sample` makes first, so that equal generators give equal results)."""
        from .sampler import initial_state_sample  # noqa: PLC0415

        return initial_state_sample(self, state, dtype)

    def step(self, state: Any, sample: Array, model_output: Array) -> tuple[Any, Array]:
        """``(state, sample)`` after the update that comes next: one of ``correct_steps`` Langevin corrector
        updates, then the predictor update, per timestep; the last step returns the denoised mean.

        ``model_output`` is the score at ``sample`` and level ``sigmas[k]``, ``k`` the number of steps taken.
        The counter lives in ``state``; no Python branch reads it, so ``jax.jit(scheduler.step)`` works and a
        CUDA loop does not synchronise.
        """
        from .sampler import step_state  # noqa: PLC0415

        return step_state(self, state, sample, model_output)

    # ------------------------------------------------------------------ persistence (diffusers' names)
    def save_config(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write ``scheduler_config.json`` (diffusers' format) into ``save_directory``."""
        if push_to_hub:
            raise ValueError("push_to_hub is not supported: sdeve reads and writes local files only")
        self._config.save(save_directory)

    def save_pretrained(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Same as :meth:`save_config`, as in diffusers."""
        self.save_config(save_directory, push_to_hub=push_to_hub, **kwargs)

    @classmethod
    def _split_kwargs(cls, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Split keyword arguments into config overrides, constructor options, and unused ones."""
        fields = set(SdeVeConfig.field_names())
        overrides = {k: v for k, v in kwargs.items() if k in fields}
        options = {k: v for k, v in kwargs.items() if k in ("xp", "device", "corrector_norm")}
        unused = {k: v for k, v in kwargs.items() if k not in fields and k not in options and k not in _HUB_KWARGS}
        return overrides, options, unused

    @classmethod
    def from_config(
        cls, config: SdeVeConfig | Mapping[str, Any] | None = None, return_unused_kwargs: bool = False, **kwargs: Any
    ) -> Any:
        """Build a scheduler from a config (an :class:`SdeVeConfig` or a mapping such as diffusers'
        ``scheduler.config``); keyword arguments override its values (and may give ``xp``/``device``)."""
        if config is None:
            base = SdeVeConfig()
        elif isinstance(config, SdeVeConfig):
            base = config
        elif isinstance(config, Mapping):
            base = SdeVeConfig.from_dict(dict(config))
        else:
            raise TypeError(f"config must be an SdeVeConfig or a mapping, got {type(config).__name__}")
        overrides, options, unused = cls._split_kwargs(kwargs)
        scheduler = cls(**base.replace(**overrides).to_dict(), **options)
        return (scheduler, unused) if return_unused_kwargs else scheduler

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        subfolder: str | None = None,
        return_unused_kwargs: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Load ``scheduler_config.json`` from a local directory (or the file itself), optionally in
        ``subfolder``. Keyword arguments override config values; Hub options are accepted and ignored."""
        config = SdeVeConfig.load(pretrained_model_name_or_path, subfolder=subfolder)
        return cls.from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)

    @classmethod
    def load_config(cls, pretrained_model_name_or_path: str | os.PathLike[str], subfolder: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The JSON dict of a local ``scheduler_config.json`` (validated), as diffusers' ``load_config``."""
        return SdeVeConfig.load(pretrained_model_name_or_path, subfolder=subfolder).to_json_dict()


__all__ += ["ConfigError"]
