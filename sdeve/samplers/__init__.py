"""The samplers :func:`sdeve.sample` can run, one module per family, registered by name.

Each entry maps a name to a function ``run(run: Run, **options) -> Array`` (a :class:`~sdeve.samplers._run.Run`
is what :func:`sdeve.sample` resolved) and the options it accepts. :data:`SAMPLERS` lists the names.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from .._xp import Array
from ..schedule import Schedule
from . import adaptive, sigma_space
from ._loop import run_fixed
from ._run import Run
from .ode import run_ode
from .pc import CORRECTORS, PREDICTORS, PCStepper, schedule_levels

__all__ = ["SAMPLERS", "SamplerSpec", "lookup", "register"]


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: its ``run`` function, the option names it takes, and whether it walks noise
    levels (so that inpainting and SDEdit apply)."""

    name: str
    run: Callable[..., Array]
    options: tuple[str, ...] = ()
    has_levels: bool = True


_REGISTRY: dict[str, SamplerSpec] = {}


def register(spec: SamplerSpec) -> None:
    """Make ``spec.name`` a valid ``sampler=`` of :func:`sdeve.sample`."""
    _REGISTRY[spec.name] = spec


def lookup(name: Any) -> SamplerSpec:
    """The sampler called ``name``; ``ValueError`` listing the names otherwise."""
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(map(repr, _REGISTRY))}")
    return spec


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def run_pc(run: Run, *, predictor: str = "reverse_diffusion", corrector: str = "langevin", snr: Any = None,
           correct_steps: Any = None) -> Array:
    """Song et al.'s predictor-corrector sampler (:mod:`sdeve.samplers.pc`) on the scheduler's schedule."""
    config = run.config.replace(**{k: v for k, v in (("snr", snr), ("correct_steps", correct_steps)) if v is not None})
    n = run.num_steps
    schedule = Schedule.build(n, n, config.sigma_min, config.sigma_max, config.sampling_eps)
    levels, model_sigmas = schedule_levels(schedule)
    stepper = PCStepper.build(
        levels, model_sigmas, times=schedule.timesteps.tolist(), xp=run.xp, device=run.device, dtype=run.dtype,
        constraint=run.constraint,
        predictor=_choice(predictor, PREDICTORS, "predictor"), corrector=_choice(corrector, CORRECTORS, "corrector"),
        correct_steps=config.correct_steps, snr=config.snr, norm=run.corrector_norm, denoise=run.denoise,
        fused=run.backend.combine, norms=run.backend.norms,
    )
    start = run.first_step
    x = run.start_sample(stepper.levels.at(start, xp=run.xp))
    return run_fixed(stepper, run.model, x, noise=run.noise, start=start, callback=run.callback,
                     disable=run.disable, compile_step=run.compile_step, step_index=run.step_index,
                     strict=run.strict)


register(SamplerSpec("pc", run_pc, ("predictor", "corrector", "snr", "correct_steps")))
register(SamplerSpec("ode", run_ode, ("method", "rtol", "atol")))

# The sigma-space samplers: k-diffusion's names; every one also takes the schedule options.
for _name, _options in sigma_space.OPTIONS.items():
    register(SamplerSpec(_name, functools.partial(sigma_space.run_sigma_space, _name),
                         sigma_space.SCHEDULE_OPTIONS + _options))
register(SamplerSpec("adaptive_sde", adaptive.run_adaptive_sde, sigma_space.SCHEDULE_OPTIONS + adaptive.OPTIONS,
                     has_levels=False))

SAMPLERS: tuple[str, ...] = tuple(_REGISTRY)
