"""Song et al.'s predictor-corrector sampler for the VE SDE (2021, Alg. 2; Appendix G; ``sampling.py``).

At each of ``N`` timesteps, ``correct_steps`` corrector updates and then one predictor update, each after one
model evaluation and with one fresh noise draw, in Song's order. Predictors: ``"reverse_diffusion"`` (the
default; eq. 47), ``"euler_maruyama"`` (his ``dt = -1/N``), ``"ancestral"`` (the VE form), ``"none"``.
Correctors: ``"langevin"`` (the snr rule, the default), ``"ald"`` (annealed Langevin dynamics,
``eps = 2 (snr sigma(t))^2``), ``"none"``.

Levels are visited with an integer counter: timestep ``i`` uses level ``N - 1 - i``. Song's code takes
``floor(t_i (N - 1))`` with ``t_i = linspace(1, eps, N)[i]``, which is ``N - 1 - i + floor(i eps)``: the same
level while ``eps (N - 1) < 1`` (at the default ``eps = 1e-5``, for ``N`` up to 10^5), and from there on it
repeats levels and never reaches level 0, which the counter does not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import updates
from .._xp import Array, Namespace, device_of
from ..protocols import NoiseSource
from ..schedule import Schedule
from ..validation import check_pair
from ._loop import Carry, Constraint, Model, Table, static_field

__all__ = ["CORRECTORS", "PREDICTORS", "PCStepper", "pc_tables"]

PREDICTORS = ("reverse_diffusion", "euler_maruyama", "ancestral", "none")
CORRECTORS = ("langevin", "ald", "none")


def score(model: Model, x: Array, sigma: Array) -> Array:
    """``model(x, sigma)``, checked: an array of ``x``'s library, shape and a real floating dtype."""
    out = model(x, sigma)
    if tuple(getattr(out, "shape", ())) != tuple(x.shape):
        raise ValueError(
            f"model(x, sigma) must return the score with x's shape {tuple(x.shape)}, got "
            f"{type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}"
        )
    check_pair(out, x, name="model(x, sigma)")
    return out


def pc_tables(schedule: Schedule, predictor: str, corrector: str, snr: float) -> dict[str, np.ndarray]:
    """Per-timestep host tables (float64, ``(N,)``) of the PC sampler on ``schedule`` (``N`` timesteps, ``N``
    levels): the model's level, the level and the one below, the predictor's two coefficients and ALD's step."""
    n = schedule.num_levels
    levels = schedule.discrete_sigmas.astype(np.float64)[::-1]
    below = np.concatenate([levels[1:], np.zeros(1)])
    sigma_t = schedule.sigmas.astype(np.float64)
    if predictor == "reverse_diffusion":
        drift, diffusion = schedule.drift[::-1], schedule.diffusion[::-1]
    elif predictor == "ancestral":
        drift, diffusion = updates.ancestral_coefficients(levels, below, sqrt=np.sqrt)
    elif predictor == "euler_maruyama":
        g = sigma_t * math.sqrt(2 * (math.log(float(levels[0])) - math.log(float(levels[-1]))))
        drift, diffusion = updates.euler_maruyama_coefficients(g, -1.0 / n)
    else:
        drift = diffusion = np.zeros(n)
    return {"model_sigmas": schedule.sigmas.astype(np.float64), "levels": levels, "below": below,
            "drift": np.asarray(drift), "diffusion": np.asarray(diffusion),
            "ald": updates.ald_step_size(sigma_t, snr) if corrector == "ald" else np.zeros(n)}


@dataclasses.dataclass(frozen=True)
class PCStepper:
    """One timestep of the PC sampler as a :class:`~sdeve.samplers._loop.Stepper`; the carry is ``(x, x_mean)``."""

    model_sigmas: Table
    levels: Table
    below: Table
    drift: Table
    diffusion: Table
    ald: Table
    constraint: Constraint | None
    num_steps: int = static_field()
    predictor: str = static_field(default="reverse_diffusion")
    corrector: str = static_field(default="langevin")
    correct_steps: int = static_field(default=1)
    snr: float = static_field(default=0.15)
    norm: str = static_field(default="batch")
    denoise: bool = static_field(default=True)
    xp: Namespace = static_field(default=None)
    fused: Callable[..., Any] | None = static_field(default=None)
    times: tuple[float, ...] | None = static_field(default=None, host_only=True)

    @classmethod
    def build(cls, schedule: Schedule, *, xp: Namespace, device: Any, dtype: Any, **settings: Any) -> PCStepper:
        """The stepper for ``schedule`` with its tables moved to ``xp`` on ``device`` in ``dtype`` (the schedule's
        float64 where the namespace has it); ``settings`` are the static fields and ``constraint``."""
        tables = pc_tables(schedule, settings.get("predictor", "reverse_diffusion"),
                           settings.get("corrector", "langevin"), settings.get("snr", 0.15))
        moved: dict[str, Any] = {name: Table.build(values.tolist(), xp=xp, device=device, dtype=dtype)
                                 for name, values in tables.items()}
        return cls(**moved, num_steps=schedule.num_levels, xp=xp, times=tuple(schedule.timesteps.tolist()),
                   constraint=settings.pop("constraint", None), **settings)

    def init(self, x: Array) -> Carry:
        return (x, x)

    def output(self, carry: Carry) -> Array:
        return carry[1] if self.denoise else carry[0]

    def _update(self, x: Array, a: Any, s: Array, b: Any, z: Array) -> tuple[Array, Array]:
        return updates.combine_with(self.fused, x, a, s, b, z, xp=self.xp, reuse=True)

    def _constrain(self, x: Array, x_mean: Array, level: Any, noise: NoiseSource) -> tuple[Array, Array]:
        if self.constraint is None:
            return x, x_mean
        return self.constraint.apply(x, x_mean, level, noise, xp=self.xp)

    def _correct(self, model: Model, i: Any, x: Array, sigma: Array, noise: NoiseSource) -> tuple[Array, Array]:
        s = score(model, x, sigma)
        z = noise(x)
        if self.corrector == "ald":
            step = self.ald.at(i, xp=self.xp)
        else:
            step = updates.corrector_step_size(s, z, self.snr, norm=self.norm, xp=self.xp)  # type: ignore[arg-type]
        a, b = updates.langevin_coefficients(step, sqrt=updates.sqrt_for(self.xp))
        x, x_mean = self._update(x, a, s, b, z)
        return self._constrain(x, x_mean, self.levels.at(i, xp=self.xp), noise)

    def step(self, model: Model, i: Any, carry: Carry, noise: NoiseSource, *, first: bool, last: bool) -> Carry:
        xp = self.xp
        x, x_mean = carry
        sigma = self.model_sigmas.at(i, xp=xp) * xp.ones((x.shape[0],), dtype=x.dtype, device=device_of(x))
        if self.corrector != "none":
            for _ in range(self.correct_steps):
                x, x_mean = self._correct(model, i, x, sigma, noise)
        if self.predictor == "none":
            return x, x  # Song's NonePredictor: the timestep's mean is the sample itself
        s = score(model, x, sigma)
        x, x_mean = self._update(x, self.drift.at(i, xp=xp), s, self.diffusion.at(i, xp=xp), noise(x))
        return self._constrain(x, x_mean, self.below.at(i, xp=xp), noise)

    def report(self, i: int, carry: Carry) -> dict[str, Any]:
        sigma = float(self.model_sigmas.host[i]) if self.model_sigmas.host is not None else math.nan
        t = self.times[i] if self.times is not None else math.nan
        return {"i": i, "t": t, "sigma": sigma, "sample": carry[0], "sample_mean": carry[1]}

    @property
    def evaluations_per_step(self) -> int:
        """Model evaluations per timestep."""
        return (self.correct_steps if self.corrector != "none" else 0) + (self.predictor != "none")

    @property
    def draws_per_step(self) -> int:
        """Noise arrays per timestep: one per update, twice that with a constraint."""
        return self.evaluations_per_step * (1 if self.constraint is None else 2)

