"""PyTorch: noise from ``torch.Generator``, fused updates, autodiff, and a drop-in replacement for
``diffusers.ScoreSdeVeScheduler``.

The drop-in is the generic scheduler with two policies: diffusers' rounding of the schedule (float32 levels,
float32 timestep indices, ``g`` computed as diffusers computes it) and diffusers' way of drawing noise
(``randn_tensor``, in its order), so that from the same generator seed it gives diffusers' numbers. Where
diffusers is wrong it is right instead (see the class docstring).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat.torch as torch_xp
import numpy as np
import torch

from sdeve import BackendBase, register_backend, SchedulerOutput, SdeVeOutput
from sdeve import ScoreSdeVeScheduler as _CoreScheduler
from sdeve import samplers as _samplers
from sdeve.config import SdeVeConfig
from sdeve.protocols import Backend
from sdeve.sampling import resolve
from sdeve.schedule import Rounding
from sdeve.updates import per_example
from sdeve.validation import check_seed

__all__ = ["ADAPTER", "BACKEND", "SchedulerOutput", "ScoreSdeVeScheduler", "SdeVeOutput", "TorchBackend", "randn",
           "sample"]

Generator = torch.Generator | list[torch.Generator] | int | None


def _as_generator(generator: Any, device: torch.device) -> Any:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (list, tuple)):
        if not all(isinstance(g, torch.Generator) for g in generator):
            raise TypeError("a list of generators must hold torch.Generator objects only")
        return list(generator)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return torch.Generator(device=device).manual_seed(check_seed(generator))
    raise TypeError(f"expected a torch.Generator, a list of them, an int seed or None, got {type(generator).__name__}")


def randn(
    shape: tuple[int, ...], generator: Generator = None, device: Any = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Standard normals drawn the way diffusers' ``randn_tensor`` draws them, so that seeds give its numbers.

    A CPU generator draws on the CPU and the result moves to ``device``; a list of generators draws one
    example each (shape ``(1, ...)``) and concatenates. Unlike diffusers, a CUDA generator with a CPU
    ``device`` draws on its own device and moves the result, rather than raising.
    """
    if isinstance(generator, torch.Generator) and device is not None and generator.device == device:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)  # the common case, fast
    device = torch.device(device) if device is not None else torch.device("cpu")
    generator = _as_generator(generator, device)
    first = generator[0] if isinstance(generator, list) and generator else generator
    rand_device = first.device if isinstance(first, torch.Generator) else device
    if isinstance(generator, list) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, list):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
        parts = [torch.randn((1, *shape[1:]), generator=g, device=rand_device, dtype=dtype) for g in generator]
        return torch.cat(parts, dim=0).to(device)
    return torch.randn(shape, generator=generator, device=rand_device, dtype=dtype).to(device)


def use_one_thread() -> None:
    """Run torch's CPU kernels on one thread: for small tensors a thread pool only adds synchronisation, and on
    a loaded machine it can stall."""
    torch.set_num_threads(1)


def _transforming() -> bool:
    """Inside ``torch.compile`` or a ``torch.func`` transform (vmap, grad): no host reads, no ``out=``."""
    return bool(torch.compiler.is_compiling() or torch._C._functorch.peek_interpreter_stack() is not None)


def _traced(x: torch.Tensor) -> bool:
    """:func:`_transforming`, or ``x`` a transform's tensor."""
    return _transforming() or bool(torch._C._functorch.is_functorch_wrapped_tensor(x))


_FUSED_DTYPES = (torch.float32, torch.float64)
_vector_norm = torch.linalg.vector_norm


class TorchBackend(BackendBase):
    """Noise from a ``torch.Generator`` (or a list of them, one per example; or an int seed; ``None`` uses
    torch's global generator), drawn as diffusers' ``randn_tensor`` draws; fused updates; ``torch.func``."""

    name = "torch"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        """An int seed becomes a ``torch.Generator`` on ``device``; generators (and ``None``: torch's global
        generator) are kept."""
        return _as_generator(generator, torch.device(device) if device is not None else torch.device("cpu"))

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None,
               like: Any = None) -> torch.Tensor:
        return randn(tuple(shape), source, device=device, dtype=dtype)

    def readable(self, x: Any) -> bool:
        """Host memory, outside ``torch.compile``, ``torch.func`` transforms and autograd (a value read there
        would be a constant to the gradient)."""
        return bool(x.is_cpu and not x.requires_grad and not _traced(x))

    def traced(self, x: Any) -> bool:
        return _traced(x)

    def combine(self, x: Any, a: Any, s: Any, b: Any, z: Any, *, reuse: bool) -> tuple[Any, Any] | None:
        """:func:`sdeve.updates.combine` in two kernels (``add`` with ``alpha`` for a float, ``addcmul`` for a
        tensor coefficient), writing ``prev`` into ``z`` when it was drawn for this call. float32/float64
        tensors of one dtype and device only, outside autograd and transforms; anything else goes to the core."""
        dtype = x.dtype
        if dtype not in _FUSED_DTYPES or s.dtype is not dtype or z.dtype is not dtype or not _plain(x, s, z):
            return None
        if type(a) is not float or type(b) is not float:
            a, b = per_example(a, x.ndim, dtype, xp=torch_xp), per_example(b, x.ndim, dtype, xp=torch_xp)
        mean = _axpy(x, a, s, None)
        return _axpy(mean, b, z, z if reuse and z.is_contiguous() else None), mean

    def small_arrays(self) -> None:
        """One CPU thread: for small tensors a thread pool only adds synchronisation, and on a loaded machine
        it can stall."""
        use_one_thread()

    def norms(self, x: Any) -> Any:
        """``torch.linalg.vector_norm`` over every axis but the first: one pass, no temporary (float32/64,
        outside autograd and transforms; else the core's)."""
        if x.dtype not in (torch.float32, torch.float64) or x.ndim < 2 or x.requires_grad or _traced(x):
            return None
        return torch.linalg.vector_norm(x, dim=tuple(range(1, x.ndim)))

    def host_norms(self, s: Any, z: Any) -> tuple[float, float] | None:
        """:meth:`norms`' batch means, read: one example's is the whole tensor's norm (the same reduction, one
        call cheaper), several examples' the mean of :meth:`norms`."""
        if s.dtype not in _FUSED_DTYPES or s.ndim < 2 or z.dtype is not s.dtype:
            return None
        if s.shape[0] == 1:
            return float(_vector_norm(s)), float(_vector_norm(z))
        dims = tuple(range(1, s.ndim))
        grad_norms, noise_norms = torch.linalg.vector_norm(s, dim=dims), torch.linalg.vector_norm(z, dim=dims)
        return float(grad_norms.mean()), float(noise_norms.mean())

    def vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        return torch.func.vjp(fn, x)[1](v)[0]

    def value_and_vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> tuple[Any, Any]:
        value, pullback = torch.func.vjp(fn, x)
        return value, pullback(v)[0]

    def jvp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        return torch.func.jvp(fn, (x,), (v,))[1]


def _plain(*tensors: torch.Tensor) -> bool:
    """Strided tensors on one device, outside autograd and transforms (the fused kernels' preconditions)."""
    if _transforming():
        return False
    on_cpu = True
    for t in tensors:
        if t.layout is not torch.strided or t.requires_grad:
            return False
        on_cpu = on_cpu and t.is_cpu
    return on_cpu or len({t.device for t in tensors}) == 1


def _axpy(x: torch.Tensor, coefficient: Any, y: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    """``x + coefficient * y`` in one pass; ``coefficient`` a float or a tensor broadcasting against ``y``."""
    if isinstance(coefficient, float):
        return torch.add(x, y, alpha=coefficient, out=out) if out is not None else torch.add(x, y, alpha=coefficient)
    return torch.addcmul(x, coefficient, y, out=out) if out is not None else torch.addcmul(x, coefficient, y)


BACKEND = ADAPTER = TorchBackend()
# Imported, the adapter is also registered, so that a first lookup needs no entry-point scan (which
# torch.compile cannot trace).
register_backend("torch", BACKEND)


# ---------------------------------------------------------------------- the diffusers drop-in
class DiffusersRounding(Rounding):
    """The schedule as diffusers holds it: float32 timesteps and levels, ``g = sqrt(sigma^2 - adjacent^2)`` in
    float32. The linear ramps come from ``torch.linspace`` (whose float32 rounding is diffusers'); the
    exponentials are taken in float64 on the host and rounded once."""

    dtype = "float32"

    def timesteps(self, n: int, sampling_eps: float) -> np.ndarray:
        return torch.linspace(1.0, sampling_eps, n, dtype=torch.float32).numpy()

    def sigmas(self, times: np.ndarray, sigma_min: float, sigma_max: float) -> np.ndarray:
        ratio = np.float32(sigma_max / sigma_min).astype(np.float64)
        powered = (ratio ** times.astype(np.float64)).astype(np.float32)
        return (np.float32(sigma_min) * powered).astype(np.float32)

    def levels(self, n: int, sigma_min: float, sigma_max: float) -> np.ndarray:
        ramp = torch.linspace(math.log(sigma_min), math.log(sigma_max), n, dtype=torch.float32).numpy()
        levels = np.exp(ramp.astype(np.float64)).astype(np.float32)
        if not (np.isfinite(levels.max()) and levels.min() >= np.finfo(np.float32).smallest_normal):  # NaN fails both
            raise ValueError(f"sigma_min={sigma_min:g} and sigma_max={sigma_max:g} do not fit diffusers' float32 "
                             "schedule (levels must be normal, finite float32 numbers): use sdeve.ScoreSdeVeScheduler")
        return levels

    def coefficients(self, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        below = np.concatenate([np.zeros(1, dtype=np.float32), levels[:-1]])
        g = np.sqrt(levels * levels - below * below)
        return g * g, g


class FrozenConfig(dict):  # type: ignore[type-arg]
    """``scheduler.config`` as diffusers' ``FrozenDict``: a read-only ``dict`` of the six settings with attribute
    access (``config.correct_steps``). Being a ``dict`` is what diffusers' ``AnyScheduler.from_config(config)``
    requires (it treats anything else as a Hub path). The :class:`sdeve.SdeVeConfig` behind it is ``.sdeve``;
    its methods (``replace``, ``to_json_string``, ``save``, ...) are forwarded."""

    def __init__(self, config: SdeVeConfig) -> None:
        super().__init__(config.to_dict())
        object.__setattr__(self, "sdeve", config)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "sdeve":
            raise AttributeError(name)
        if name in self:
            return self[name]
        return getattr(self.sdeve, name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SdeVeConfig):
            return bool(self.sdeve == other)
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (FrozenConfig, (self.sdeve,))

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("the scheduler's config is read-only; build a new scheduler with from_config(config, **changes)")

    __setattr__ = __setitem__ = __delitem__ = __delattr__ = _read_only  # type: ignore[assignment]
    update = pop = popitem = setdefault = clear = _read_only  # type: ignore[assignment]


class ScoreSdeVeScheduler(_CoreScheduler):
    """Drop-in replacement for ``diffusers.ScoreSdeVeScheduler`` (same constructor, attributes, methods and
    numbers from the same ``torch.Generator`` seed), computed by the sdeve core.

    Differences from diffusers, each a fix:

    - ``step_correct`` returns the sample's dtype (diffusers returns float32 for a float16 sample).
    - A CUDA ``torch.Generator`` works in both step methods (diffusers' ``step_correct`` raises).
    - The timestep index never makes a host round-trip: a CUDA timestep is indexed on the device.
    - ``add_noise`` works for samples of any rank (diffusers' is 4-D only).
    - Half precision is computed in float32 internally: no overflow at ``sigma_max=1348``.
    - Bad input raises ``ValueError``/``TypeError`` with a message, never an ``IndexError`` or NaN; an
      all-zero score leaves the sample unchanged in ``step_correct`` (diffusers returns NaN).
    - Gradients flow through the corrector's step size as through the formula written in torch.
    """

    _bound_namespace = "torch"
    _rounding = DiffusersRounding()
    _python_time_dtype = "float32"  # diffusers multiplies a number timestep by a float32 tensor first

    def __init__(
        self,
        num_train_timesteps: int = 2000,
        snr: float = 0.15,
        sigma_min: float = 0.01,
        sigma_max: float = 1348.0,
        sampling_eps: float = 1e-5,
        correct_steps: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(num_train_timesteps, snr, sigma_min, sigma_max, sampling_eps, correct_steps, **options)

    @property
    def config(self) -> FrozenConfig:
        """The settings as diffusers' read-only config dict (attribute and key access)."""
        return FrozenConfig(self._config)

    def _draw(self, backend: Backend, generator: Any, sample: Any, purpose: str) -> torch.Tensor:
        # diffusers' draws: the corrector's in float32 on the generator's device, then moved; add_noise's with
        # no generator from torch's global generator like the sample.
        if purpose == "correct":
            gen0 = generator[0] if isinstance(generator, (list, tuple)) and generator else generator
            draw_device = gen0.device if isinstance(gen0, torch.Generator) else sample.device
            noise = randn(tuple(sample.shape), generator, device=draw_device, dtype=torch.float32)
            if noise.dtype is sample.dtype and draw_device == sample.device:
                return noise
            return noise.to(device=sample.device, dtype=sample.dtype)
        if purpose == "add_noise" and generator is None:
            return torch.randn_like(sample)
        return randn(tuple(sample.shape), generator, device=sample.device, dtype=sample.dtype)

    def set_timesteps(  # type: ignore[override]
        self, num_inference_steps: int, sampling_eps: float | None = None, device: str | torch.device | None = None
    ) -> None:
        """Set ``timesteps = linspace(1, sampling_eps, num_inference_steps)`` (float32) on ``device``."""
        super().set_timesteps(num_inference_steps, sampling_eps, device)


# ---------------------------------------------------------------------- sampling: a compiled timestep
def sample(
    model: Any,
    shape: Any,
    *,
    compile: bool = True,  # noqa: A002 - torch's own word
    fullgraph: bool = True,
    mode: str | None = None,
    backend: str = "inductor",
    sampler: str = "pc",
    **kwargs: Any,
) -> torch.Tensor:
    """:func:`sdeve.sample` with each step (its model calls and updates) compiled by ``torch.compile`` once and
    reused for every step.

    Same arguments as :func:`sdeve.sample`, plus ``compile`` (``False``: the eager loop), and ``fullgraph``,
    ``mode`` and ``backend`` for ``torch.compile``. The step index is a device tensor and each step's noise is
    drawn from the ``torch.Generator`` before the compiled function runs, so nothing recompiles between steps
    and, on CUDA, nothing synchronises with the host between them.
    """
    spec = _samplers.lookup(sampler)
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in spec.options}
    kwargs.setdefault("xp", "torch")
    kwargs["progress"] = bool(kwargs.get("progress", False))
    kwargs["denoise"] = bool(kwargs.get("denoise", True))
    run = resolve(model, shape, **kwargs)
    device = run.z0.device
    indices = torch.arange(run.num_steps, device=device)
    if compile:
        run.compile_step = lambda step: torch.compile(step, fullgraph=fullgraph, mode=mode, backend=backend,
                                                      dynamic=False)
    else:
        run.compile_step = lambda step: step
    run.step_index = indices.__getitem__
    return spec.run(run, **options)
