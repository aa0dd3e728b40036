"""The predictor-corrector sampling loop (Song et al. 2021, Alg. 2, VE SDE) for any array namespace.

:func:`sample` runs the loop of diffusers' ``ScoreSdeVePipeline``: at each of ``N`` timesteps,
``correct_steps`` Langevin corrector updates and then one reverse-diffusion predictor update, each after one
model evaluation. It visits the ``N`` discrete noise levels with an integer counter, from ``sigma_max`` down to
``sigma_min``, so that every level is used exactly once (diffusers' continuous-time index repeats levels once
``sampling_eps * (N - 1) >= 1``). Image-to-image (SDEdit: ``init`` and ``strength``) and inpainting (``mask``,
as Song et al.'s controllable generation) run the same loop.

The math is the pure functions of :mod:`sdeve.updates`; noise comes from the adapter of the sample's
framework (:mod:`sdeve_backends`), which may also compile the whole loop (JAX) or one timestep
(``sdeve_backends.torch.sample``). This module imports no framework.

Noise order (the same in every path, so equal generators give equal results): the initial sample, then per
timestep ``correct_steps`` corrector draws and one predictor draw, each followed by one draw for the known
region when ``mask`` is given.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
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
    schedule_dtype,
)
from .updates import CorrectorNorm
from .validation import check_pair

__all__ = ["SamplerState", "sample"]

Model = Callable[[Array, Array], Array]


@dataclasses.dataclass(frozen=True)
class SamplerState:
    """The state of the generic ``init``/``step`` interface (:meth:`sdeve.ScoreSdeVeScheduler.init`).

    On JAX it is a pytree (registered by :mod:`sdeve_backends.jax`): ``counter``, ``generator`` and
    ``discrete_sigmas`` are leaves, ``sample_shape`` is static.

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
    sample_shape: tuple[int, ...] = ()

    @property
    def num_inference_steps(self) -> int:
        """``N``, the number of timesteps."""
        return int(self.discrete_sigmas.shape[0])

    def replace(self, **changes: Any) -> SamplerState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything a timestep needs besides the sample: the schedule in the sample's namespace and device."""

    num_steps: int
    correct_steps: int
    snr: float
    norm: CorrectorNorm
    model_sigmas: Array  # (N,), the sample's dtype: sigma(t_i), what the model is told
    discrete: Array  # (N,), schedule dtype: the levels the updates use


def _at(values: Array, index: Any, *, xp: Namespace) -> Array:
    """``values[index]`` as a 0-d array, for a Python int or a 0-d integer array (traced, or on a device:
    ``take`` rather than indexing, which would read the index on the host)."""
    if isinstance(index, int):
        return values[index]
    return xp.reshape(xp.take(values, xp.reshape(index, (1,)), axis=0), ())


def _levels(plan: _Plan, i: Any, *, xp: Namespace) -> tuple[Array, Array]:
    """``(sigma, adjacent_sigma)`` of timestep ``i``: levels ``N - 1 - i`` and ``N - 2 - i`` (0 below 0)."""
    j = (plan.num_steps - 1) - i
    if isinstance(j, int):
        return plan.discrete[j], _schedule.adjacent_sigmas(plan.discrete, j, xp=xp)
    below = _schedule.adjacent_sigmas(plan.discrete, xp.reshape(j, (1,)), xp=xp)
    return _at(plan.discrete, j, xp=xp), xp.reshape(below, ())


def draws_per_timestep(correct_steps: int, masked: bool) -> int:
    """How many noise arrays one timestep consumes: one per update, twice that with a mask."""
    return (correct_steps + 1) * (2 if masked else 1)


def _impose_known(
    x: Array, x_mean: Array, known: Array, mask: Array, level: Array, noise: Array, *, xp: Namespace
) -> tuple[Array, Array]:
    """Song et al.'s inpainting constraint: where ``mask`` is 1 the sample becomes ``known`` noised to
    ``level`` (a draw of the forward marginal), and its mean becomes ``known``."""
    noisy = _updates.add_noise(known, noise, level, xp=xp)
    keep = 1 - mask
    return x * keep + noisy * mask, x_mean * keep + known * mask


def pc_timestep(
    model: Model,
    x: Array,
    i: Any,
    noises: Sequence[Array],
    plan: _Plan,
    *,
    known: Array | None = None,
    mask: Array | None = None,
    xp: Namespace,
) -> tuple[Array, Array]:
    """One timestep of the PC sampler: ``correct_steps`` corrector updates, then one predictor update.

    ``i`` is the timestep (a Python int, or a 0-d integer array when traced or on a device); ``noises`` holds
    :func:`draws_per_timestep` standard-normal arrays like ``x``. No Python branch reads an array value, so
    this runs under ``jax.jit``/``lax.fori_loop`` and ``torch.compile`` and without host synchronisation.
    Returns ``(x, x_mean)`` after the predictor.
    """
    batch = x.shape[0]
    sigma_model = _at(plan.model_sigmas, i, xp=xp) * xp.ones((batch,), dtype=x.dtype, device=device_of(x))
    sigma, adjacent = _levels(plan, i, xp=xp)
    it = iter(noises)
    for _ in range(plan.correct_steps):
        score = _score(model, x, sigma_model)
        x, x_mean = _updates.corrector_update(x, score, next(it), plan.snr, norm=plan.norm, xp=xp)
        if mask is not None:
            x, x_mean = _impose_known(x, x_mean, known, mask, sigma, next(it), xp=xp)
    score = _score(model, x, sigma_model)
    x, x_mean = _updates.predictor_update(x, score, next(it), sigma, adjacent, xp=xp)
    if mask is not None:
        x, x_mean = _impose_known(x, x_mean, known, mask, adjacent, next(it), xp=xp)
    return x, x_mean


def _score(model: Model, x: Array, sigma: Array) -> Array:
    score = model(x, sigma)
    if tuple(getattr(score, "shape", ())) != tuple(x.shape):
        raise ValueError(
            f"model(x, sigma) must return the score with x's shape {tuple(x.shape)}, got "
            f"{type(score).__name__} of shape {tuple(getattr(score, 'shape', ()))}"
        )
    return score


def _default_float(xp: Namespace, device: Any) -> Any:
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
    except Exception:
        return xp.float32


def _start_index(num_steps: int, strength: float) -> int:
    """The first timestep kept by SDEdit: the last ``round(strength * N)`` timesteps run (at least one)."""
    kept = min(num_steps, max(1, int(round(strength * num_steps))))
    return num_steps - kept


_GENERATOR_LIBRARIES = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "cupy": "cupy", "dask": "dask"}


def _namespace_of_generator(generator: Any) -> str | None:
    """The library a generator belongs to (a ``torch.Generator`` or a list of them, a JAX key, ...), by its
    type's module name, importing nothing; ``None`` (NumPy) for NumPy generators, seeds and ``None``."""
    first = generator[0] if isinstance(generator, (list, tuple)) and generator else generator
    return _GENERATOR_LIBRARIES.get(type(first).__module__.split(".")[0])


def _check_shape(shape: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints (batch first), got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise ValueError(f"shape must have rank >= 1 and positive sizes (batch first), got {shape!r}")
    return out


def draw_noises(adapter: Any, generator: Any, like: Array, count: int) -> tuple[list[Array], Any]:
    """``count`` standard-normal arrays shaped like ``like`` (its dtype and device), each from
    ``adapter.split(generator)``; returns them and the generator to carry on with."""
    noises = []
    for _ in range(count):
        now, generator = adapter.split(generator)
        noises.append(adapter.normal(now, tuple(like.shape), dtype=like.dtype, device=device_of(like), like=like))
    return noises, generator


@dataclasses.dataclass
class _Run:
    """A prepared sampling run: what every loop implementation needs."""

    model: Model
    plan: _Plan
    xp: Namespace
    adapter: Any
    generator: Any
    x: Array
    start: int
    known: Array | None
    mask: Array | None
    denoise: bool
    host_times: list[float]
    host_sigmas: list[float]

    @property
    def draws(self) -> int:
        return draws_per_timestep(self.plan.correct_steps, self.mask is not None)

    def draw(self, generator: Any) -> tuple[Array, Any]:
        noises, generator = draw_noises(self.adapter, generator, self.x, 1)
        return noises[0], generator

    def draw_all(self, generator: Any) -> tuple[list[Array], Any]:
        return draw_noises(self.adapter, generator, self.x, self.draws)

    def timestep(self, x: Array, i: Any, noises: Sequence[Array]) -> tuple[Array, Array]:
        return pc_timestep(self.model, x, i, noises, self.plan, known=self.known, mask=self.mask, xp=self.xp)


def prepare(
    model: Model,
    shape: Any,
    *,
    scheduler: Any = None,
    num_inference_steps: int | None = None,
    generator: Any = None,
    xp: Namespace | str | None = None,
    device: Any = None,
    dtype: Any = None,
    denoise: bool = True,
    init: Array | None = None,
    strength: float = 1.0,
    mask: Array | None = None,
    corrector_norm: CorrectorNorm | None = None,
) -> _Run:
    """Validate :func:`sample`'s arguments and build the run: schedule, generator, initial sample."""
    from sdeve_backends import adapter_for  # noqa: PLC0415 - adapters import their framework lazily

    from .scheduler import ScoreSdeVeScheduler  # noqa: PLC0415 - scheduler imports this module

    if not callable(model):
        raise TypeError(f"model must be callable as model(x, sigma) -> score, got {type(model).__name__}")
    shape = _check_shape(shape)
    scheduler = ScoreSdeVeScheduler() if scheduler is None else scheduler
    config = getattr(scheduler, "config", None)
    fields = ("snr", "sigma_min", "sigma_max", "sampling_eps", "correct_steps")
    if config is None or not all(k in config for k in fields):
        raise TypeError(f"scheduler must be an sdeve.ScoreSdeVeScheduler, got {type(scheduler).__name__}")
    steps = _schedule.check_num_steps(
        config["num_train_timesteps"] if num_inference_steps is None else num_inference_steps
    )
    norm: CorrectorNorm = getattr(scheduler, "corrector_norm", "batch") if corrector_norm is None else corrector_norm
    if norm not in ("batch", "example"):
        raise ValueError(f"corrector_norm must be 'batch' or 'example', got {norm!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (0.0 < float(strength) <= 1.0):
        raise ValueError(f"strength must be a number in (0, 1], got {strength!r}")
    if init is None and float(strength) != 1.0:
        raise ValueError("strength < 1 needs init: the sample to start from (SDEdit image-to-image)")
    if mask is not None and init is None:
        raise ValueError("mask needs init: the sample whose known part (mask == 1) is kept (inpainting)")

    ns: Namespace
    if init is not None:
        if not hasattr(init, "shape"):
            raise TypeError(f"init must be an array, got {type(init).__name__}")
        ns = array_namespace(init)
        if xp is not None and namespace_name(resolve_namespace(xp)) != namespace_name(ns):
            raise TypeError(f"init is a {namespace_name(ns)} array but xp={xp!r}")
        if tuple(init.shape) != shape:
            raise ValueError(f"init must have the sample shape {shape}, got {tuple(init.shape)}")
        device = device_of(init) if device is None else device
    else:
        ns = resolve_namespace(_namespace_of_generator(generator) if xp is None else xp)
    if dtype is None:
        dtype = init.dtype if init is not None else _default_float(ns, device)
    if isinstance(dtype, str):  # a name: "float32", "bfloat16", ...
        named = getattr(ns, dtype, None)
        if named is None:
            raise TypeError(f"dtype {dtype!r} is not a dtype of {namespace_name(ns)}")
        dtype = named
    try:
        is_float = ns.isdtype(dtype, "real floating")
    except (TypeError, ValueError):
        is_float = False
    if not is_float:
        raise TypeError(f"dtype must be a real floating dtype, got {dtype}")

    cfg_min, cfg_max = float(config["sigma_min"]), float(config["sigma_max"])
    model_sigmas, discrete = _schedule_arrays(config, steps, xp=ns, device=device)
    plan = _Plan(
        steps, int(config["correct_steps"]), float(config["snr"]), norm, ns.astype(model_sigmas, dtype), discrete
    )
    eps = float(config["sampling_eps"])
    host_times = [1.0 + (eps - 1.0) * k / (steps - 1) if steps > 1 else 1.0 for k in range(steps)]
    host_sigmas = [cfg_min * math.exp(t * math.log(cfg_max / cfg_min)) for t in host_times]

    adapter = adapter_for(ns)
    gen = adapter.make_generator(generator, device)
    start = _start_index(steps, float(strength))
    run = _Run(model, plan, ns, adapter, gen, ns.zeros(shape, dtype=dtype, device=device), start, None, None,
               bool(denoise), host_times, host_sigmas)
    z0, run.generator = run.draw(gen)
    if init is None:
        run.x = z0 * cfg_max
    else:
        known = init if init.dtype == dtype else ns.astype(init, dtype)
        run.x = _updates.add_noise(known, z0, _at(discrete, steps - 1 - start, xp=ns), xp=ns)
        if mask is not None:
            if not hasattr(mask, "shape"):
                raise TypeError(f"mask must be an array, got {type(mask).__name__}")
            if namespace_name(array_namespace(mask)) != namespace_name(ns):
                raise TypeError("mask must be an array of the same library as init")
            trailing = zip(mask.shape[::-1], shape[::-1], strict=False)
            if len(mask.shape) > len(shape) or any(m not in (1, s) for m, s in trailing):
                raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the sample shape {shape}")
            run.known = known
            run.mask = ns.astype(mask, dtype) if mask.dtype != dtype else mask
    return run


def _schedule_arrays(config: Any, steps: int, *, xp: Namespace, device: Any) -> tuple[Array, Array]:
    """``(sigma(t_i) for the model, discrete levels)``, both ``(N,)`` in the widest float ``xp`` has on
    ``device``: ``t = linspace(1, sampling_eps, N)`` and ``N`` geometric levels (see :mod:`sdeve.schedule`)."""
    sigma_min, sigma_max = float(config["sigma_min"]), float(config["sigma_max"])
    wide = schedule_dtype(xp, device)
    times = _schedule.timesteps(steps, float(config["sampling_eps"]), xp=xp, device=device, dtype=wide)
    model_sigmas = _schedule.continuous_sigmas(times, sigma_min, sigma_max, xp=xp)
    return model_sigmas, _schedule.discrete_sigmas(steps, sigma_min, sigma_max, xp=xp, device=device, dtype=wide)


def sample(
    model: Model,
    shape: Sequence[int],
    *,
    scheduler: Any = None,
    num_inference_steps: int | None = None,
    generator: Any = None,
    xp: Namespace | str | None = None,
    device: Any = None,
    dtype: Any = None,
    denoise: bool = True,
    progress: bool = False,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    init: Array | None = None,
    strength: float = 1.0,
    mask: Array | None = None,
    corrector_norm: CorrectorNorm | None = None,
) -> Array:
    """Draw samples with the VE SDE predictor-corrector sampler (Song et al. 2021, Alg. 2).

    Parameters
    ----------
    model
        ``model(x, sigma) -> score``: ``x`` of ``shape``, ``sigma`` a ``(B,)`` array (same namespace, device
        and dtype as ``x``) holding the noise level ``sigma(t_i)``; returns ``grad_x log p_sigma(x)``.
    shape
        The sample shape ``(B, ...)``, batch first.
    scheduler
        A :class:`sdeve.ScoreSdeVeScheduler`: its config gives ``snr``, ``sigma_min``, ``sigma_max``,
        ``sampling_eps`` and ``correct_steps``. Default: diffusers' defaults.
    num_inference_steps
        ``N``, the number of timesteps; default the scheduler's ``num_train_timesteps``. The model is called
        ``N * (correct_steps + 1)`` times (fewer with ``strength < 1``).
    generator
        The framework's generator (``numpy.random.Generator``, ``torch.Generator``, a JAX key, ...) or an int
        seed; ``None`` for fresh entropy (torch: the global generator).
    xp
        The namespace (``numpy``, ``torch``, ``jax``, ``cupy``, ``dask``, ``array_api_strict``; a module or its
        name). Default: ``init``'s, else the generator's (a ``torch.Generator`` means torch, a JAX key JAX),
        else NumPy.
    device, dtype
        Where and in what dtype to sample (default: ``init``'s, else the namespace's default).
    denoise
        Return the last predictor mean (the denoised sample), as diffusers; else the last noisy sample.
    progress
        Show a ``tqdm`` progress bar (needs ``tqdm``).
    callback
        Called after every timestep with a dict with keys ``i`` (timestep index), ``t`` (continuous time),
        ``sigma`` (the level the model saw; ``t`` and ``sigma`` as Python floats), ``sample`` and
        ``sample_mean`` (arrays after the predictor).
    init, strength
        SDEdit image-to-image: ``init`` (a sample of ``shape``) is noised with ``add_noise`` to the level of
        the first timestep kept, and the last ``round(strength * N)`` timesteps run. ``strength`` in (0, 1].
    mask
        Inpainting (needs ``init``): 1 where ``init`` is known, 0 where it is to be generated; broadcasts to
        ``shape``. After every update the known part is replaced by ``init`` noised to the sample's current
        level (Song et al., Appendix I.2), so it ends equal to ``init``.
    corrector_norm
        ``"batch"`` (diffusers, Song et al.: one corrector step size from batch means) or ``"example"`` (one
        per example: a sample then does not depend on the rest of its batch). Default: the scheduler's.
        The per-example step size depends on the example's own state, which biases Langevin dynamics where
        norms fluctuate: in few dimensions it is worse than ``"batch"`` (measured on Gaussian mixtures: 2-D
        points diverge; 32 values per example: stds 5-8% too wide; 192: about 1%; 768: within sampling noise).

    Returns
    -------
    Array of ``shape`` in the namespace, device and dtype asked for.

    On JAX, with no ``callback`` and no ``progress``, the whole loop is compiled into one program
    (``jax.lax.fori_loop``) when ``model`` is traceable; otherwise it runs step by step.
    """
    run = prepare(
        model, shape, scheduler=scheduler, num_inference_steps=num_inference_steps, generator=generator, xp=xp,
        device=device, dtype=dtype, denoise=denoise, init=init, strength=strength, mask=mask,
        corrector_norm=corrector_norm,
    )
    compiled = getattr(run.adapter, "compiled_loop", None)
    if compiled is not None and callback is None and not progress:
        out = compiled(run)
        if out is not None:
            return out
    return python_loop(run, progress=progress, callback=callback)


def python_loop(
    run: _Run,
    *,
    progress: bool = False,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    timestep: Callable[[Array, Any, Sequence[Array]], tuple[Array, Array]] | None = None,
    index: Callable[[int], Any] | None = None,
) -> Array:
    """Run the timesteps of ``run`` one by one in Python. ``timestep`` replaces :meth:`_Run.timestep` (a
    compiled version of it), ``index`` turns the step number into what it takes (e.g. a device array)."""
    timestep = run.timestep if timestep is None else timestep
    steps: Any = range(run.start, run.plan.num_steps)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional dependency, only for the bar
        except ImportError:
            raise ImportError("progress=True needs tqdm: pip install tqdm (or sdeve[cli])") from None
        bar = tqdm(steps, desc="sampling", unit="step")
        steps = bar
    x, x_mean, generator = run.x, run.x, run.generator
    settle = getattr(run.adapter, "settle", None)  # lazy backends: materialise each step (Dask)
    try:
        for i in steps:
            noises, generator = run.draw_all(generator)
            x, x_mean = timestep(x, i if index is None else index(i), noises)
            if settle is not None:
                x, x_mean = settle(x, x_mean)
            if callback is not None:
                callback({"i": i, "t": run.host_times[i], "sigma": run.host_sigmas[i], "sample": x,
                          "sample_mean": x_mean})
    finally:
        if bar is not None:
            bar.close()
    return x_mean if run.denoise else x


def step_index_array(i: int, *, xp: Namespace, device: Any) -> Array:
    """Timestep ``i`` as a 0-d integer array (for compiled timesteps that must not specialise on it)."""
    return xp.asarray(i, dtype=index_dtype(xp, device), device=device)


# ---------------------------------------------------------------------- the generic init/step interface
def init_state(
    scheduler: Any,
    num_inference_steps: int,
    sample_shape: Sequence[int],
    *,
    generator: Any = None,
    xp: Namespace | str | None = None,
    device: Any = None,
) -> tuple[SamplerState, Array]:
    """:meth:`sdeve.ScoreSdeVeScheduler.init`: the state and the model's noise level for every step."""
    from sdeve_backends import adapter_for  # noqa: PLC0415 - adapters import their framework lazily

    steps = _schedule.check_num_steps(num_inference_steps)
    shape = _check_shape(sample_shape)
    ns = resolve_namespace(xp)
    model_sigmas, discrete = _schedule_arrays(scheduler.config, steps, xp=ns, device=device)
    per_timestep = int(scheduler.config["correct_steps"]) + 1
    repeated = ns.broadcast_to(ns.reshape(model_sigmas, (steps, 1)), (steps, per_timestep))
    sigmas = ns.reshape(repeated, (steps * per_timestep,))
    counter = ns.asarray(0, dtype=index_dtype(ns, device), device=device)
    state = SamplerState(counter, adapter_for(ns).make_generator(generator, device), discrete, shape)
    return state, sigmas


def initial_state_sample(scheduler: Any, state: SamplerState, dtype: Any = None) -> tuple[SamplerState, Array]:
    """:meth:`sdeve.ScoreSdeVeScheduler.initial_sample`: ``sigma_max * N(0, I)`` from the state's generator."""
    from sdeve_backends import adapter_for  # noqa: PLC0415

    xp = array_namespace(state.discrete_sigmas)
    device = device_of(state.discrete_sigmas)
    dtype = _default_float(xp, device) if dtype is None else dtype
    adapter = adapter_for(xp)
    now, later = adapter.split(state.generator)
    noise = adapter.normal(now, state.sample_shape, dtype=dtype, device=device)
    return state.replace(generator=later), noise * float(scheduler.config["sigma_max"])


def step_state(scheduler: Any, state: SamplerState, sample: Array, model_output: Array) -> tuple[SamplerState, Array]:
    """:meth:`sdeve.ScoreSdeVeScheduler.step`: the update the counter says comes next.

    Both the corrector and the predictor result are computed and one is selected with ``where``: no Python
    branch reads the counter, so this traces under ``jax.jit`` and runs on a GPU without synchronising.
    """
    from sdeve_backends import adapter_for  # noqa: PLC0415

    xp = check_pair(model_output, sample)
    if tuple(sample.shape) != tuple(state.sample_shape):
        raise ValueError(f"sample must have the shape given to init, {state.sample_shape}, got {tuple(sample.shape)}")
    config = scheduler.config
    correct = int(config["correct_steps"])
    steps = state.num_inference_steps
    total = steps * (correct + 1)
    k = state.counter
    if is_concrete_on_host(k) and not 0 <= int(k) < total:
        raise ValueError(f"the sampler is done: all {total} steps were taken (state.counter = {int(k)})")
    adapter = adapter_for(sample)
    now, later = adapter.split(state.generator)
    noise = adapter.normal(now, tuple(sample.shape), dtype=sample.dtype, device=device_of(sample), like=sample)
    timestep = xp.clip(k // (correct + 1), 0, steps - 1)
    norm: CorrectorNorm = getattr(scheduler, "corrector_norm", "batch")
    plan = _Plan(steps, correct, float(config["snr"]), norm, state.discrete_sigmas, state.discrete_sigmas)
    sigma, adjacent = _levels(plan, timestep, xp=xp)
    pred, pred_mean = _updates.predictor_update(sample, model_output, noise, sigma, adjacent, xp=xp)
    out = xp.where(k == total - 1, pred_mean, pred)
    if correct:
        corrected, _ = _updates.corrector_update(sample, model_output, noise, plan.snr, norm=plan.norm, xp=xp)
        out = xp.where(k % (correct + 1) == correct, out, corrected)
    return state.replace(counter=k + 1, generator=later), out
