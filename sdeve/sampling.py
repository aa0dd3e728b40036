"""``sdeve.sample``: draw samples with any registered sampler, on any array library.

The namespace, device, dtype and noise source are resolved here, once, from what the user passed (``init``,
``generator``, ``xp``...), and the sampler named by ``sampler=`` runs on them (:mod:`sdeve.samplers`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import controllable
from . import samplers as _samplers
from ._xp import Array, Namespace, array_namespace, default_float, device_of, namespace_name, resolve_namespace
from .backends import backend_for
from .config import SdeVeConfig
from .protocols import NoiseSource
from .samplers._run import Run
from .schedule import check_num_steps
from .updates import CorrectorNorm
from .validation import as_float, check_levels_fit, is_python_scalar

__all__ = ["sample"]

# The most elements a sample may have (what a 64-bit size can count).
MAX_ELEMENTS = 2**62

_GENERATOR_LIBRARIES = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "cupy": "cupy", "dask": "dask"}


def _namespace_of_generator(generator: Any) -> str | None:
    """The library a generator belongs to (a ``torch.Generator`` or a list of them, a JAX key, ...), by its
    type's module name, importing nothing; ``None`` (NumPy) for NumPy generators, seeds and ``None``."""
    first = generator[0] if isinstance(generator, (list, tuple)) and generator else generator
    return _GENERATOR_LIBRARIES.get(type(first).__module__.split(".")[0])


def check_shape(shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints (batch first); ``TypeError`` for strings, floats and bools."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise TypeError(f"shape must be a tuple of ints (batch first), got {shape!r}")
    out = []
    for size in shape:
        if isinstance(size, bool) or not hasattr(size, "__index__"):
            raise TypeError(f"shape must be a tuple of ints (batch first), got {shape!r}")
        out.append(operator.index(size))
    if not out or any(s < 1 for s in out):
        raise ValueError(f"shape must have rank >= 1 and positive sizes (batch first), got {shape!r}")
    if math.prod(out) > MAX_ELEMENTS:
        raise ValueError(f"shape {tuple(out)} has more than {MAX_ELEMENTS} elements: no array library can hold it")
    return tuple(out)


def _config_of(scheduler: Any) -> SdeVeConfig:
    if scheduler is None:
        return SdeVeConfig()
    config = getattr(scheduler, "config", None)
    if isinstance(config, SdeVeConfig):
        return config
    inner = getattr(config, "sdeve", None)  # the torch drop-in's dict-like config
    if isinstance(inner, SdeVeConfig):
        return inner
    if isinstance(config, Mapping):
        return SdeVeConfig.from_dict(config)
    raise TypeError(f"scheduler must be an sdeve.ScoreSdeVeScheduler, got {type(scheduler).__name__}")


def _check_strength(strength: Any, init: Any) -> float:
    if isinstance(strength, bool) or not is_python_scalar(strength) or not 0.0 < as_float(strength, "strength") <= 1.0:
        shown = strength if not isinstance(strength, int) or abs(strength) < 10**30 else "a larger number"
        raise ValueError(f"strength must be a number in (0, 1], got {shown!r}")
    if init is None and float(strength) != 1.0:
        raise ValueError("strength < 1 needs init: the sample to start from (SDEdit image-to-image)")
    return float(strength)


def _namespace(init: Any, xp: Any, generator: Any, shape: tuple[int, ...]) -> Namespace:
    if init is None:
        return resolve_namespace(_namespace_of_generator(generator) if xp is None else xp)
    if not hasattr(init, "shape") or not hasattr(init, "dtype"):
        raise TypeError(f"init must be an array, got {type(init).__name__}")
    ns = array_namespace(init)
    if xp is not None and namespace_name(resolve_namespace(xp)) != namespace_name(ns):
        raise TypeError(f"init is a {namespace_name(ns)} array but xp={xp!r}")
    if tuple(init.shape) != shape:
        raise ValueError(f"init must have the sample shape {shape}, got {tuple(init.shape)}")
    return ns


def _dtype(ns: Namespace, dtype: Any, init: Any, device: Any) -> Any:
    if dtype is None:
        dtype = init.dtype if init is not None else default_float(ns, device)
    if isinstance(dtype, str):
        named = getattr(ns, dtype, None)
        if named is None:
            raise TypeError(f"dtype {dtype!r} is not a dtype of {namespace_name(ns)}")
        dtype = named
    try:
        is_float = ns.isdtype(dtype, "real floating")
    except (TypeError, ValueError, AttributeError):
        is_float = False
    if not is_float:
        raise TypeError(f"dtype must be a real floating dtype, got {dtype}")
    return dtype


def _constraint(mask: Any, colorize: Any, known: Any, ns: Namespace, shape: tuple[int, ...], dtype: Any) -> Any:
    """The constraint the loop imposes: inpainting (``mask`` over ``init``) or colorization (``colorize``)."""
    if mask is not None and colorize is not None:
        raise ValueError("give mask= (inpainting) or colorize= (colorization), not both")
    if colorize is not None:
        if not hasattr(colorize, "shape") or namespace_name(array_namespace(colorize)) != namespace_name(ns):
            raise TypeError(f"colorize must be an array of the sample's library ({namespace_name(ns)})")
        if tuple(colorize.shape) != shape:
            raise ValueError(f"colorize must have the sample shape {shape}, got {tuple(colorize.shape)}")
        return controllable.Colorization(colorize if colorize.dtype == dtype else ns.astype(colorize, dtype))
    checked = _mask(mask, known, ns, shape, dtype)
    return None if checked is None else controllable.Inpainting(known, checked)


def _mask(mask: Any, init: Any, ns: Namespace, shape: tuple[int, ...], dtype: Any) -> Array | None:
    if mask is None:
        return None
    if init is None:
        raise ValueError("mask needs init: the sample whose known part (mask == 1) is kept (inpainting)")
    if not hasattr(mask, "shape"):
        raise TypeError(f"mask must be an array, got {type(mask).__name__}")
    if namespace_name(array_namespace(mask)) != namespace_name(ns):
        raise TypeError("mask must be an array of the same library as init")
    trailing = zip(mask.shape[::-1], shape[::-1], strict=False)
    if len(mask.shape) > len(shape) or any(m not in (1, s) for m, s in trailing):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the sample shape {shape}")
    return mask if mask.dtype == dtype else ns.astype(mask, dtype)


def _options(spec: _samplers.SamplerSpec, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        allowed = ", ".join(spec.options) or "none"
        raise TypeError(f"sampler {spec.name!r} got unexpected options {unknown}; it takes: {allowed}")
    return options


def resolve(model: Any, shape: Any, *, scheduler: Any = None, num_inference_steps: Any = None, generator: Any = None,
            xp: Any = None, device: Any = None, dtype: Any = None, init: Any = None, strength: Any = 1.0,
            mask: Any = None, colorize: Any = None, guidance: Any = None, guidance_scale: Any = 1.0,
            corrector_norm: Any = None, **flags: Any) -> Run:
    """Validate :func:`sample`'s arguments and resolve namespace, device, dtype and noise source once."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, sigma) -> score, got {type(model).__name__}")
    if guidance is not None:
        model = controllable.Guided(model, guidance, guidance_scale)
    shape = check_shape(shape)
    config = _config_of(scheduler)
    steps = check_num_steps(config.num_train_timesteps if num_inference_steps is None else num_inference_steps)
    norm = getattr(scheduler, "corrector_norm", "batch") if corrector_norm is None else corrector_norm
    if norm not in ("batch", "example"):
        raise ValueError(f"corrector_norm must be 'batch' or 'example', got {norm!r}")
    strength = _check_strength(strength, init)
    ns = _namespace(init, xp, generator, shape)
    device = device_of(init) if init is not None and device is None else device
    dtype = _dtype(ns, dtype, init, device)
    backend = backend_for(ns)
    noise = NoiseSource(backend, backend.make_generator(generator, device))
    known = None if init is None else (init if init.dtype == dtype else ns.astype(init, dtype))
    check_levels_fit(config.sigma_min, config.sigma_max, dtype, xp=ns)
    z0 = noise.draw(shape, dtype=dtype, device=device)
    constraint = _constraint(mask, colorize, known, ns, shape, dtype)
    return Run(model, config, steps, strength, ns, device, dtype, backend, noise, z0, known,
               None if mask is None else constraint.mask, constraint, corrector_norm=norm, **flags)


def sample(
    model: Callable[[Array, Array], Array],
    shape: Sequence[int],
    *,
    sampler: str = "pc",
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
    colorize: Array | None = None,
    guidance: Callable[[Array, Array], Array] | None = None,
    guidance_scale: float = 1.0,
    corrector_norm: CorrectorNorm | None = None,
    **options: Any,
) -> Array:
    """Draw samples from a score model with the sampler named ``sampler`` (:data:`sdeve.SAMPLERS`).

    Parameters
    ----------
    model
        ``model(x, sigma) -> score``: ``x`` of ``shape``, ``sigma`` a ``(B,)`` array (same namespace, device
        and dtype as ``x``) holding the noise level; returns ``grad_x log p_sigma(x)`` of ``x``'s shape.
    shape
        The sample shape ``(B, ...)``, batch first.
    sampler
        One of :data:`sdeve.SAMPLERS`; unknown options raise ``TypeError`` naming the ones it takes.

        - ``"pc"`` (default): Song et al.'s predictor-corrector sampler (:mod:`sdeve.samplers.pc`), options
          ``predictor`` (``"reverse_diffusion"`` | ``"euler_maruyama"`` | ``"ancestral"`` | ``"none"``),
          ``corrector`` (``"langevin"`` | ``"ald"`` | ``"none"``), ``snr`` and ``correct_steps`` (default: the
          scheduler's).
        - ``"ode"``: the probability-flow ODE (:mod:`sdeve.samplers.ode`), options ``method`` (``"rk45"``,
          adaptive Dormand-Prince, | ``"heun"`` | ``"euler"``), ``rtol``, ``atol`` (1e-5, Song's).
        - ``"euler"``, ``"heun"`` (Karras et al. 2022, Alg. 2: ``s_churn``, ``s_tmin``, ``s_tmax``,
          ``s_noise``), ``"euler_ancestral"`` (``eta``, ``s_noise``), ``"dpmpp_2m"``, ``"dpmpp_2m_sde"``,
          ``"dpmpp_3m_sde"`` (``eta``, ``s_noise``; Lu et al. 2022), ``"adaptive_sde"`` (Jolicoeur-Martineau et
          al. 2021: ``rtol``, ``atol``, ``error_norm``...): k-diffusion's samplers on the denoiser
          ``D(x, sigma) = x + sigma^2 model(x, sigma)`` (:mod:`sdeve.samplers.sigma_space`), with the schedule
          options ``schedule`` (``"karras"`` | ``"geometric"`` | ``"exponential"``), ``rho``, ``sigma_min``,
          ``sigma_max`` (default the scheduler's), ``sigma_start`` and ``final_step``. ``N`` is their number of
          levels; see ``docs/quality.md`` for the schedule that reaches the noise floor in 10 evaluations.
    scheduler
        A :class:`sdeve.ScoreSdeVeScheduler` (or the torch drop-in): its config gives ``snr``, ``sigma_min``,
        ``sigma_max``, ``sampling_eps`` and ``correct_steps``. Default: diffusers' defaults.
    num_inference_steps
        ``N``, the number of timesteps; default the scheduler's ``num_train_timesteps``. PC calls the model
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
        Return the last update's mean (the denoised sample), as diffusers; else the last noisy sample.
    progress
        Show a ``tqdm`` progress bar (needs ``tqdm``).
    callback
        Called after every timestep with a dict with keys ``i`` (timestep index), ``t`` (continuous time),
        ``sigma`` (the level the model saw; ``t`` and ``sigma`` as Python floats), ``sample`` and
        ``sample_mean`` (arrays after the timestep; also as ``x`` and ``denoised``).
    init, strength
        SDEdit image-to-image: ``init`` (a sample of ``shape``) is noised to the level of the first step kept,
        and the last ``round(strength * N)`` steps run. ``strength`` in (0, 1].
    mask
        Inpainting (needs ``init``): 1 where ``init`` is known, 0 where it is to be generated; broadcasts to
        ``shape``. After every update the known part is replaced by ``init`` noised to the sample's current
        level (Song et al., Appendix I.2), so it ends equal to ``init``.
    colorize
        Colorization (Song et al., Appendix I.3): ``(B, 3, ...)`` colour images (channels on axis 1) whose grey
        coordinate ``(R + G + B) / sqrt 3`` is kept; after every update the grey coordinate of the sample (in a
        fixed orthogonal colour space, :mod:`sdeve.controllable`) is replaced by it, noised to the current level.
    guidance, guidance_scale
        Conditional sampling (Song et al., eq. (14), Appendix I.4): ``guidance(x, sigma) -> grad_x log p(y | x,
        sigma)`` (a noise-conditional classifier's input gradient), added to the score times ``guidance_scale``;
        every sampler takes it.
    corrector_norm
        ``"batch"`` (diffusers, Song et al.: one corrector step size from batch means) or ``"example"`` (one
        per example: a sample then does not depend on the rest of its batch). Default: the scheduler's.
        The per-example rule biases Langevin dynamics where norms fluctuate: in few dimensions it is worse
        than ``"batch"`` (see the performance notes in the documentation).

    Returns
    -------
    Array of ``shape`` in the namespace, device and dtype asked for.

    With no ``callback`` and no ``progress``, the backend runs the whole loop as one program where it compiles
    (JAX: ``jax.lax.fori_loop`` under ``jax.jit``, when ``model`` is traceable).
    """
    spec = _samplers.lookup(sampler)
    chosen = _options(spec, options)
    for flag, value in (("denoise", denoise), ("progress", progress)):
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise TypeError(f"{flag} must be a bool, got {type(value).__name__} {value!r}")
    if (mask is not None or colorize is not None) and not spec.has_levels:
        raise ValueError(f"sampler {sampler!r} has no noise levels to impose a mask or colours at")
    run = resolve(model, shape, scheduler=scheduler, num_inference_steps=num_inference_steps, generator=generator,
                  xp=xp, device=device, dtype=dtype, init=init, strength=strength, mask=mask, colorize=colorize,
                  guidance=guidance, guidance_scale=guidance_scale, corrector_norm=corrector_norm,
                  callback=callback, progress=bool(progress), denoise=bool(denoise))
    return spec.run(run, **chosen)
