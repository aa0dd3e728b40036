"""PyTorch: noise from ``torch.Generator``, and a drop-in replacement for ``diffusers.ScoreSdeVeScheduler``.

The drop-in holds its schedule as float32 tensors and computes timestep indices in float32, as diffusers
does, and draws its noise in diffusers' order and way (``randn_tensor``), so that from the same generator
seed it gives diffusers' numbers. Where diffusers is wrong it is right instead (see the class docstring).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from sdeve import schedule as _schedule
from sdeve._xp import namespace_name
from sdeve.config import SdeVeConfig
from sdeve.outputs import SchedulerOutput, SdeVeOutput
from sdeve.scheduler import ScoreSdeVeScheduler as _CoreScheduler

from ._base import Adapter

__all__ = ["ADAPTER", "SchedulerOutput", "ScoreSdeVeScheduler", "SdeVeOutput", "TorchAdapter", "randn"]

Generator = torch.Generator | list[torch.Generator] | int | None


def _as_generator(generator: Any, device: torch.device) -> Any:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (list, tuple)):
        if not all(isinstance(g, torch.Generator) for g in generator):
            raise TypeError("a list of generators must hold torch.Generator objects only")
        return list(generator)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return torch.Generator(device=device).manual_seed(int(generator))
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
    a loaded machine it can stall (seen: 50x slower sampling at batch 2000 with two threads)."""
    torch.set_num_threads(1)


class TorchAdapter(Adapter):
    """Noise from a ``torch.Generator`` (or a list of them, one per example; or an int seed; ``None`` uses
    torch's global generator), drawn as diffusers' ``randn_tensor`` draws."""

    name = "torch"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        """An int seed becomes a ``torch.Generator`` on ``device``; generators (and ``None``: torch's global
        generator) are kept."""
        return _as_generator(generator, torch.device(device) if device is not None else torch.device("cpu"))

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> torch.Tensor:
        return randn(tuple(shape), generator, device=device, dtype=dtype)

    # Fused updates: x + c * y in one kernel (torch.add with alpha for a host scalar, addcmul for a device
    # coefficient), and the noise buffer reused for prev_sample when it was drawn for this call. Same formulas
    # as sdeve.updates; half precision and autograd fall back to the core, which upcasts to float32.
    @staticmethod
    def _fusable(*tensors: torch.Tensor) -> bool:
        first = tensors[0]
        dtype, device = first.dtype, first.device
        if dtype not in (torch.float32, torch.float64):
            return False
        for t in tensors:
            if t.dtype != dtype or t.device != device or t.layout != torch.strided or t.requires_grad:
                return False
        return True

    @staticmethod
    def _axpy(x: torch.Tensor, coefficient: Any, y: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        """``x + coefficient * y`` in one pass; ``coefficient`` a float, a 0-d tensor or a broadcastable one."""
        if isinstance(coefficient, float):
            return torch.add(x, y, alpha=coefficient, out=out) if out is not None else torch.add(x, y, alpha=coefficient)
        coefficient = coefficient.to(x.dtype)
        return torch.addcmul(x, coefficient, y, out=out) if out is not None else torch.addcmul(x, coefficient, y)

    @staticmethod
    def _per_example(coefficient: Any, ndim: int) -> Any:
        if isinstance(coefficient, float) or coefficient.ndim == 0:
            return coefficient
        return coefficient.reshape((coefficient.shape[0],) + (1,) * (ndim - 1))

    def predictor_update(
        self, sample: Any, model_output: Any, noise: Any, sigma: Any, adjacent_sigma: Any, *, owns_noise: bool, generator: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self._fusable(sample, model_output, noise):
            return None
        if isinstance(sigma, float) and isinstance(adjacent_sigma, float):
            diffusion: Any = math.sqrt((sigma - adjacent_sigma) * (sigma + adjacent_sigma))
            drift_scale: Any = diffusion * diffusion
        else:
            # As the core: sigma^2 - adjacent^2 cancels, so take it in the schedule's dtype when that is wider.
            wide = torch.promote_types(sigma.dtype, sample.dtype) if isinstance(sigma, torch.Tensor) else sample.dtype
            sigma = torch.as_tensor(sigma, dtype=wide, device=sample.device)
            adjacent_sigma = torch.as_tensor(adjacent_sigma, dtype=wide, device=sample.device)
            g = torch.sqrt((sigma - adjacent_sigma) * (sigma + adjacent_sigma)).to(sample.dtype)
            diffusion = self._per_example(g, sample.ndim)
            drift_scale = diffusion * diffusion
        prev_mean = self._axpy(sample, drift_scale, model_output, None)
        prev = self._axpy(prev_mean, diffusion, noise, noise if owns_noise and noise.is_contiguous() else None)
        return prev, prev_mean

    def corrector_update(
        self, sample: Any, model_output: Any, noise: Any, snr: float, *, norm: str, owns_noise: bool, generator: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self._fusable(sample, model_output, noise) or sample.ndim < 1:
            return None
        step: Any
        if sample.shape[0] == 1:
            # One example: its norm is the batch mean; skip the per-example reduction and the mean.
            grad_norm, noise_norm = torch.linalg.vector_norm(model_output), torch.linalg.vector_norm(noise)
        else:
            dims = tuple(range(1, sample.ndim))
            grad_norm = torch.linalg.vector_norm(model_output, dim=dims) if dims else model_output.abs()
            noise_norm = torch.linalg.vector_norm(noise, dim=dims) if dims else noise.abs()
            if norm == "batch":
                grad_norm, noise_norm = grad_norm.mean(), noise_norm.mean()
        if norm == "batch" and sample.device.type == "cpu":
            # On the CPU a read is free: the scalar step size in Python float64, as the core does there.
            g, n = float(grad_norm), float(noise_norm)
            step = (float(snr) * n / g) ** 2 * 2 if g > 0 else 0.0
            noise_scale: Any = math.sqrt(step * 2)
        else:
            positive = grad_norm > 0
            ratio = float(snr) * noise_norm / torch.where(positive, grad_norm, torch.ones_like(grad_norm))
            step = self._per_example(torch.where(positive, ratio * ratio * 2, torch.zeros_like(ratio)), sample.ndim)
            noise_scale = torch.sqrt(step * 2)
        prev_mean = self._axpy(sample, step, model_output, None)
        prev = self._axpy(prev_mean, noise_scale, noise, noise if owns_noise and noise.is_contiguous() else None)
        return prev, prev_mean


ADAPTER = TorchAdapter()


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
    """

    _bound_namespace = "torch"

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
    def config(self) -> FrozenConfig:  # type: ignore[override]
        """The settings as diffusers' read-only config dict (attribute and key access)."""
        return FrozenConfig(self._config)

    def _schedule_dtype(self, xp: Any, device: Any) -> Any:
        # diffusers holds its schedule in torch's default float32; parity needs the same.
        return torch.float32

    def _build_sigmas(self, xp: Any, device: Any) -> tuple[Any, Any]:
        # diffusers' digits: levels exp(linspace(log sigma_min, log sigma_max, N)) and sigma(t) =
        # sigma_min * (sigma_max / sigma_min) ** t, both in float32 on the CPU (diffusers loops over t; the
        # vectorised pow agrees to an ulp). Adjacent levels are close, so g^2 = sigma_j^2 - sigma_{j-1}^2
        # cancels (to ~1% of sigma^2 at N=2000): levels rounded from float64 differ from diffusers' by an ulp
        # or two, which moves step_pred's result by up to 3e-5 relative.
        if namespace_name(xp) != "torch" or self._sigmas_recipe is None:
            return super()._build_sigmas(xp, device)
        (steps, eps), levels, sigma_min, sigma_max = self._sigmas_recipe
        times = _schedule.timesteps(steps, eps, xp=xp, dtype=torch.float32)
        sigmas = sigma_min * (sigma_max / sigma_min) ** times
        discrete = _schedule.discrete_sigmas(levels, sigma_min, sigma_max, xp=xp, dtype=torch.float32)
        if device is not None:
            sigmas, discrete = sigmas.to(device), discrete.to(device)
        return sigmas, discrete

    def _predictor_sigmas(self, timestep: Any, sample: Any, xp: Any) -> tuple[Any, Any]:
        # diffusers computes g = (sigma**2 - adjacent**2) ** 0.5 in float32; float64 would give other digits
        # (the subtraction cancels, see _build_sigmas). Compute g its way and hand the update (g, 0), whose
        # sqrt(g^2 - 0) is g again.
        sigma, adjacent = super()._predictor_sigmas(timestep, sample, xp)
        if isinstance(sigma, torch.Tensor):
            g = torch.sqrt(sigma * sigma - adjacent * adjacent)
            return g, torch.zeros_like(g)
        if adjacent == 0.0 and self._host_table:
            return sigma, adjacent  # already (g, 0) from the table below
        s, a = np.float32(sigma), np.float32(adjacent)
        return float(np.sqrt(s * s - a * a)), 0.0

    def _host_levels(self) -> list[tuple[float, float]] | None:
        # The table holds (g, 0) with g computed once per schedule, vectorised, exactly as diffusers computes
        # it per step: float32 sigma**2 - adjacent**2, then the square root.
        if self._host_table is None:
            held = self.discrete_sigmas
            if isinstance(held, torch.Tensor) and held.device.type == "cpu":
                adjacent = torch.cat([torch.zeros(1, dtype=held.dtype), held[:-1]])
                g = torch.sqrt(held * held - adjacent * adjacent)
                self._host_table = [(value, 0.0) for value in g.tolist()]
            else:
                self._host_table = False
        return self._host_table or None

    def _host_index(self, t: float, num_timesteps: int) -> int:
        # diffusers: (timestep * torch.ones(B) * (M - 1)).long(), all in float32.
        scaled = np.float32(t) * np.float32(num_timesteps - 1)
        return min(max(int(np.floor(scaled)), 0), num_timesteps - 1)

    def _noise(self, generator: Any, sample: Any, purpose: str) -> torch.Tensor:
        if purpose == "correct":
            # diffusers draws the corrector's noise in float32 on the generator's device; we draw the same
            # numbers and then give them the sample's dtype and device.
            gen0 = generator[0] if isinstance(generator, (list, tuple)) and generator else generator
            draw_device = gen0.device if isinstance(gen0, torch.Generator) else sample.device
            noise = randn(tuple(sample.shape), generator, device=draw_device, dtype=torch.float32)
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
    **kwargs: Any,
) -> torch.Tensor:
    """:func:`sdeve.sample` with each timestep (``correct_steps`` corrector updates, the predictor, the model
    calls) compiled by ``torch.compile`` once and reused for every timestep.

    Same arguments as :func:`sdeve.sample`, plus ``compile`` (``False``: the eager loop), and ``fullgraph``,
    ``mode`` and ``backend`` for ``torch.compile``. The timestep index is a device tensor and the noise is drawn from the
    ``torch.Generator`` outside the compiled function, so nothing recompiles between timesteps and, on CUDA,
    nothing synchronises with the host between them (also without ``compile``).
    """
    from sdeve import sampler as _sampler  # noqa: PLC0415 - the core imports the adapters lazily too

    progress = kwargs.pop("progress", False)
    callback = kwargs.pop("callback", None)
    kwargs.setdefault("xp", "torch")
    run = _sampler.prepare(model, shape, **kwargs)
    device = run.x.device
    # All timestep indices on the device once: indexing this with a Python int makes a view, no transfer.
    indices = torch.arange(run.plan.num_steps, device=device)
    timestep = run.timestep
    if compile:
        timestep = torch.compile(timestep, fullgraph=fullgraph, mode=mode, backend=backend, dynamic=False)
    return _sampler.python_loop(run, progress=progress, callback=callback, timestep=timestep, index=indices.__getitem__)


__all__ += ["sample"]
