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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import updates
from .._xp import Array, Namespace, array_namespace, device_of
from ..backends import backend_for
from ..protocols import NoiseSource
from ..schedule import Schedule
from ..validation import check_pair
from ._loop import Carry, Constraint, Model, Table, run_fixed, static_field

__all__ = ["CORRECTORS", "PREDICTORS", "PCStepper", "pc_tables", "sample_pc", "schedule_levels"]

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


def pc_tables(levels: Sequence[float], model_sigmas: Sequence[float], predictor: str, corrector: str,
              snr: float) -> dict[str, np.ndarray]:
    """Per-timestep host tables (float64, ``(N,)``) of the PC sampler.

    ``levels`` are the ``N`` discrete levels to visit, decreasing, with the level below the last appended (0:
    k-diffusion's convention), ``model_sigmas`` the ``N`` levels the model is told (Song's ``sigma(t_i)``). The
    tables: the model's level, the level and the one below, the predictor's two coefficients and ALD's step.
    """
    table = np.asarray(levels, dtype=np.float64)
    current, below = table[:-1], table[1:]
    sigma_t = np.asarray(model_sigmas, dtype=np.float64)
    n = current.shape[0]
    if predictor == "reverse_diffusion":
        drift, diffusion = updates.reverse_diffusion_coefficients(current, below, sqrt=np.sqrt)
    elif predictor == "ancestral":
        drift, diffusion = updates.ancestral_coefficients(current, below, sqrt=np.sqrt)
    elif predictor == "euler_maruyama":
        g = sigma_t * math.sqrt(2 * (math.log(float(current[0])) - math.log(float(current[-1]))))
        drift, diffusion = updates.euler_maruyama_coefficients(g, -1.0 / n)
    else:
        drift = diffusion = np.zeros(n)
    return {"model_sigmas": sigma_t, "levels": current, "below": below, "drift": np.asarray(drift),
            "diffusion": np.asarray(diffusion),
            "ald": updates.ald_step_size(sigma_t, snr) if corrector == "ald" else np.zeros(n)}


def schedule_levels(schedule: Schedule) -> tuple[list[float], list[float]]:
    """``(levels, model_sigmas)`` of a scheduler's schedule for :func:`sample_pc`: its ``N`` discrete levels from
    the top, then 0, and ``sigma(t_i)``."""
    return schedule.discrete_sigmas.astype(np.float64)[::-1].tolist() + [0.0], schedule.sigmas.tolist()


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
    norms: Callable[..., Any] | None = static_field(default=None)
    times: tuple[float, ...] | None = static_field(default=None, host_only=True)

    @classmethod
    def build(cls, levels: Sequence[float], model_sigmas: Sequence[float], *, xp: Namespace, device: Any,
              dtype: Any, times: Sequence[float] | None = None, **settings: Any) -> PCStepper:
        """The stepper for ``levels`` (see :func:`pc_tables`) with its tables moved to ``xp`` on ``device`` in
        ``dtype``; ``settings`` are the static fields and ``constraint``."""
        tables = pc_tables(levels, model_sigmas, settings.get("predictor", "reverse_diffusion"),
                           settings.get("corrector", "langevin"), settings.get("snr", 0.15))
        moved: dict[str, Any] = {name: Table.build(values.tolist(), xp=xp, device=device, dtype=dtype)
                                 for name, values in tables.items()}
        return cls(**moved, num_steps=len(levels) - 1, xp=xp, times=None if times is None else tuple(times),
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
            step = updates.corrector_step_size(s, z, self.snr, norm=self.norm, xp=self.xp,  # type: ignore[arg-type]
                                               norms=self.norms)
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



def sample_pc(
    model: Model, x: Array, sigmas: Sequence[float], *, noise: NoiseSource | Callable[[Array], Array],
    callback: Callable[[dict[str, Any]], Any] | None = None, disable: bool | None = None,
    model_sigmas: Sequence[float] | None = None, predictor: str = "reverse_diffusion", corrector: str = "langevin",
    snr: float = 0.15, correct_steps: int = 1, norm: str = "batch", constraint: Any = None, denoise: bool = True,
    start: int = 0,
) -> Array:
    """Song et al.'s PC sampler in k-diffusion's shape (Alg. 2; Appendix G).

    Parameters
    ----------
    model
        ``model(x, sigma) -> grad_x log p_sigma(x)``; ``sigma`` a ``(B,)`` array in ``x``'s dtype.
    x
        ``(B, ...)``: the start, ``sigmas[start] z`` (or SDEdit's start).
    sigmas
        The discrete levels to visit, decreasing (data units), then the level below the last (0).
    noise
        The noise source (:class:`sdeve.NoiseSource`, or any ``noise(like) -> array``): one draw per update
        (twice that with a constraint), in Song's order.
    callback, disable
        ``callback(dict)`` after each timestep (keys ``i``, ``t``, ``sigma``, ``sample``, ``sample_mean``);
        ``disable=False`` shows a progress bar.
    model_sigmas
        The level the model is told at each timestep (default ``sigmas[:-1]``; Song's ``sigma(t_i)``).
    predictor, corrector, snr, correct_steps, norm
        See the module docstring; ``norm`` is the Langevin step size's rule (``"batch"`` or ``"example"``).
    constraint, denoise, start
        A constraint applied after every update (:mod:`sdeve.controllable`); return the last mean; SDEdit's
        first timestep.

    Returns
    -------
    The sample, ``x``'s shape, namespace, device and dtype.
    """
    xp = array_namespace(x)
    backend = getattr(noise, "backend", None) or backend_for(x)
    stepper = PCStepper.build(
        sigmas, list(sigmas[:-1]) if model_sigmas is None else model_sigmas, xp=xp, device=device_of(x),
        dtype=x.dtype, constraint=constraint, predictor=predictor, corrector=corrector,
        correct_steps=correct_steps, snr=snr, norm=norm, denoise=denoise, fused=backend.combine,
        norms=backend.norms)
    return run_fixed(stepper, model, x, noise=noise, start=start, callback=callback, disable=disable)
