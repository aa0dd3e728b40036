"""Sigma-space samplers for the VE SDE: Euler and Heun (Karras et al. 2022, Alg. 2), Euler ancestral, and
DPM-Solver++ 2M, 2M SDE and 3M SDE (Lu et al. 2022), with k-diffusion's names, options and step rules.

The model is a score model; these samplers use the denoiser ``D(x, sigma) = x + sigma^2 score(x, sigma)``
and the probability-flow ODE ``dx/dsigma = (x - D) / sigma``. ``sigmas`` is the decreasing host sequence of
levels to visit, normally ending in 0 (see :func:`sdeve.samplers.sigma_levels.build_sigmas`).

Every sampler but Heun is one linear update per model evaluation,

    x_next = a_i x + c0_i D_i + c1_i D_{i-1} + c2_i D_{i-2} + g_i z_i,

whose coefficients depend only on the levels and the options. They are computed once on the host in float64
(:mod:`sdeve.samplers.sigma_coefficients`, one function per sampler) and read per step from a table,
so no step branches on an array value: on JAX the loop is one compiled program, on torch no step reads the
device. Noise comes only from the injected noise source.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from .._xp import Array, Namespace, array_namespace, device_of
from ..protocols import NoiseSource
from ..validation import check_levels_fit
from ._denoiser import check_float, denoiser
from ._loop import Carry, Model, Table, run_fixed, static_field
from ._run import Run
from .sigma_coefficients import (
    FINAL_STEPS,
    Coefficients,
    dpmpp_2m_coefficients,
    dpmpp_2m_sde_coefficients,
    dpmpp_3m_sde_coefficients,
    euler_ancestral_coefficients,
    final_coefficients,
)
from .sigma_levels import build_sigmas, check_sigmas

__all__ = [
    "FINAL_STEPS",
    "KarrasStepper",
    "LinearStepper",
    "karras_churn",
    "sample_dpmpp_2m",
    "sample_dpmpp_2m_sde",
    "sample_dpmpp_3m_sde",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "run_sigma_space",
]

# ---------------------------------------------------------------------- steppers
def _tables(columns: Sequence[Sequence[float]], *, xp: Namespace, device: Any, dtype: Any) -> tuple[Table, ...]:
    return tuple(Table.build(column, xp=xp, device=device, dtype=dtype) for column in columns)


def _report(i: int, levels: tuple[float, ...] | None, carry: Carry) -> dict[str, Any]:
    sigma, sigma_next = (levels[i], levels[i + 1]) if levels is not None else (math.nan, math.nan)
    return {"i": i, "sigma": sigma, "sigma_next": sigma_next, "x": carry[0], "denoised": carry[1]}


@dataclasses.dataclass(frozen=True)
class LinearStepper:
    """``x_next = a x + c0 D + c1 D_prev + c2 D_prev2 + g z`` with per-step coefficients from tables.

    ``carry = (x, D, D_prev)``: the sample, the last denoised estimate and the one before (zeros until there
    are any, where their coefficients are 0). ``depth`` is how many past estimates the formula reads (0-2);
    noise is drawn only where some ``g`` is non-zero (never on a step to 0). With ``constraint`` (inpainting,
    colorization: :mod:`sdeve.controllable`) the known part is imposed at the next level after every step (one
    more draw).
    """

    sigma: Table
    next: Table
    a: Table
    c0: Table
    c1: Table
    c2: Table
    g: Table
    constraint: Any
    num_steps: int = static_field()
    depth: int = static_field()
    noisy: bool = static_field()
    last_noisy: bool = static_field()
    xp: Namespace = static_field()
    levels: tuple[float, ...] | None = static_field(host_only=True)

    @classmethod
    def build(cls, levels: Sequence[float], coefficients: Coefficients, *, depth: int, xp: Namespace, device: Any,
              dtype: Any, constraint: Any = None) -> LinearStepper:
        """The stepper over ``levels`` (``N + 1`` values) with ``coefficients`` (five ``(N,)`` columns)."""
        names = ("sigma", "next", "a", "c0", "c1", "c2", "g")
        tables = dict(zip(names, _tables((levels[:-1], levels[1:], *coefficients), xp=xp, device=device,
                                         dtype=dtype)))
        noisy = any(v != 0.0 for v in coefficients[4])
        return cls(**tables, constraint=constraint, num_steps=len(levels) - 1, depth=depth, noisy=noisy,
                   last_noisy=noisy and coefficients[4][-1] != 0.0, xp=xp, levels=tuple(levels))

    def init(self, x: Array) -> Carry:
        zeros = self.xp.zeros_like(x)
        return (x, zeros, zeros)

    def step(self, model: Model, i: Any, carry: Carry, noise: NoiseSource, *, first: bool, last: bool) -> Carry:
        xp = self.xp
        x, previous, older = carry
        denoised = denoiser(model, x, self.sigma.at(i, xp=xp), xp=xp)
        out = self.a.at(i, xp=xp) * x + self.c0.at(i, xp=xp) * denoised
        if self.depth >= 1 and not first:
            out = out + self.c1.at(i, xp=xp) * previous
        if self.depth >= 2 and not first:
            out = out + self.c2.at(i, xp=xp) * older
        if self.noisy and (self.last_noisy or not last):
            out = out + self.g.at(i, xp=xp) * noise(x)
        if self.constraint is not None:
            out, _ = self.constraint.apply(out, out, self.next.at(i, xp=xp), noise, xp=xp)
        return (out, denoised, previous)

    def output(self, carry: Carry) -> Array:
        return carry[0]

    def report(self, i: int, carry: Carry) -> dict[str, Any]:
        return _report(i, self.levels, carry)

    @property
    def draws_per_step(self) -> int:
        """Noise arrays a middle step draws."""
        return int(self.noisy) + int(self.constraint is not None)


@dataclasses.dataclass(frozen=True)
class KarrasStepper:
    """Karras et al. (2022), Alg. 2: churn ``x_hat = x + s_noise sqrt(hat^2 - s^2) z`` with
    ``hat = s (1 + gamma)``, an Euler step ``x' = x_hat + (s' - hat) (x_hat - D(x_hat, hat)) / hat``, and with
    ``heun`` the trapezoidal correction ``x' = x_hat + (s' - hat) (d + d') / 2`` unless ``s' = 0``; with
    ``trapezoid``, the step to 0 takes ``d' = 0`` (see :func:`final_coefficients`). ``carry = (x, D)``."""

    hat: Table
    dt: Table
    next: Table
    churn: Table
    constraint: Any
    num_steps: int = static_field()
    heun: bool = static_field()
    churned: bool = static_field()
    ends_at_zero: bool = static_field()
    trapezoid: bool = static_field()
    xp: Namespace = static_field()
    levels: tuple[float, ...] | None = static_field(host_only=True)

    @classmethod
    def build(cls, levels: Sequence[float], gammas: Sequence[float], *, heun: bool, s_noise: float, trapezoid: bool,
              xp: Namespace, device: Any, dtype: Any, constraint: Any = None) -> KarrasStepper:
        """The stepper over ``levels`` with Karras et al.'s ``gamma_i`` per step."""
        hats = [s * (1.0 + gamma) for s, gamma in zip(levels, gammas)]
        columns = (hats, [n - h for n, h in zip(levels[1:], hats)], levels[1:],
                   [s_noise * math.sqrt(h * h - s * s) for h, s in zip(hats, levels)])
        zero = levels[-1] == 0.0
        tables = dict(zip(("hat", "dt", "next", "churn"), _tables(columns, xp=xp, device=device, dtype=dtype)))
        return cls(**tables, constraint=constraint, num_steps=len(levels) - 1, heun=heun,
                   churned=any(gamma > 0 for gamma in gammas), ends_at_zero=zero, trapezoid=trapezoid and zero,
                   xp=xp, levels=tuple(levels))

    def init(self, x: Array) -> Carry:
        return (x, self.xp.zeros_like(x))

    def step(self, model: Model, i: Any, carry: Carry, noise: NoiseSource, *, first: bool, last: bool) -> Carry:
        xp = self.xp
        x = carry[0]
        if self.churned:
            x = x + self.churn.at(i, xp=xp) * noise(x)
        hat, dt = self.hat.at(i, xp=xp), self.dt.at(i, xp=xp)
        denoised = denoiser(model, x, hat, xp=xp)
        d = (x - denoised) / hat
        if last and self.trapezoid:
            out = x + d * (dt / 2)
        else:
            out = x + d * dt
        if self.heun and not (last and self.ends_at_zero):
            s_next = self.next.at(i, xp=xp)
            d_next = (out - denoiser(model, out, s_next, xp=xp)) / s_next
            out = x + (d + d_next) / 2 * dt
        if self.constraint is not None:
            out, _ = self.constraint.apply(out, out, self.next.at(i, xp=xp), noise, xp=xp)
        return (out, denoised)

    def output(self, carry: Carry) -> Array:
        return carry[0]

    def report(self, i: int, carry: Carry) -> dict[str, Any]:
        return _report(i, self.levels, carry)

    @property
    def draws_per_step(self) -> int:
        """Noise arrays a middle step draws."""
        return int(self.churned) + int(self.constraint is not None)


def karras_churn(levels: Sequence[float], s_churn: Any, s_tmin: Any, s_tmax: Any) -> list[float]:
    """Karras et al.'s ``gamma_i = min(S_churn / N, sqrt(2) - 1)`` where ``S_tmin <= sigma_i <= S_tmax``, else 0."""
    churn = check_float("s_churn", s_churn)
    low = check_float("s_tmin", s_tmin)
    high = check_float("s_tmax", s_tmax, infinite=True)
    if high < low:
        raise ValueError(f"s_tmax must be >= s_tmin, got s_tmin={low}, s_tmax={high}")
    gamma = min(churn / (len(levels) - 1), math.sqrt(2.0) - 1.0)
    return [gamma if low <= s <= high else 0.0 for s in levels[:-1]]


# ---------------------------------------------------------------------- the samplers' options
def _karras_options(levels: Sequence[float], options: dict[str, Any]) -> dict[str, Any]:
    gammas = karras_churn(levels, options.pop("s_churn", 0.0), options.pop("s_tmin", 0.0),
                          options.pop("s_tmax", math.inf))
    s_noise = check_float("s_noise", options.pop("s_noise", 1.0))
    return {"gammas": gammas, "s_noise": s_noise, "trapezoid": _final_step(options) == "trapezoid"}


def _final_step(options: dict[str, Any]) -> str:
    final_step = options.pop("final_step", "denoise")
    if final_step not in FINAL_STEPS:
        raise ValueError(f"final_step must be one of {FINAL_STEPS}, got {final_step!r}")
    return str(final_step)


def _eta_noise(options: dict[str, Any]) -> tuple[float, float]:
    return check_float("eta", options.pop("eta", 1.0)), check_float("s_noise", options.pop("s_noise", 1.0))


def _solver_type(options: dict[str, Any]) -> str:
    solver_type = options.pop("solver_type", "midpoint")
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    return str(solver_type)


def _coefficients(name: str, levels: tuple[float, ...], options: dict[str, Any]) -> tuple[Coefficients, int]:
    """The coefficient columns and history depth of linear sampler ``name``; consumes its options."""
    if name == "euler_ancestral":
        eta, s_noise = _eta_noise(options)
        columns, depth = euler_ancestral_coefficients(levels, eta, s_noise), 0
    elif name == "dpmpp_2m":
        columns, depth = dpmpp_2m_coefficients(levels), 1
    elif name == "dpmpp_2m_sde":
        eta, s_noise = _eta_noise(options)
        columns, depth = dpmpp_2m_sde_coefficients(levels, eta, s_noise, _solver_type(options)), 1
    else:
        eta, s_noise = _eta_noise(options)
        columns, depth = dpmpp_3m_sde_coefficients(levels, eta, s_noise), 2
    return final_coefficients(columns, levels, _final_step(options)), depth


OPTIONS: dict[str, tuple[str, ...]] = {
    "euler": ("s_churn", "s_tmin", "s_tmax", "s_noise", "final_step"),
    "heun": ("s_churn", "s_tmin", "s_tmax", "s_noise", "final_step"),
    "euler_ancestral": ("eta", "s_noise", "final_step"),
    "dpmpp_2m": ("final_step",),
    "dpmpp_2m_sde": ("eta", "s_noise", "solver_type", "final_step"),
    "dpmpp_3m_sde": ("eta", "s_noise", "final_step"),
}


def build_stepper(name: str, levels: Sequence[float], *, xp: Namespace, device: Any, dtype: Any,
                  constraint: Any = None, **options: Any) -> LinearStepper | KarrasStepper:
    """The stepper of sampler ``name`` (a key of :data:`OPTIONS`) over ``levels``; ``TypeError`` for options it
    does not take, ``ValueError``/``TypeError`` for bad values."""
    unknown = sorted(set(options) - set(OPTIONS[name]))
    if unknown:
        raise TypeError(f"{name} got unexpected options {unknown}; it takes: {', '.join(OPTIONS[name])}")
    checked = check_sigmas(levels)
    where = {"xp": xp, "device": device, "dtype": dtype, "constraint": constraint}
    if name in ("euler", "heun"):
        return KarrasStepper.build(checked, heun=name == "heun", **_karras_options(checked, options), **where)
    columns, depth = _coefficients(name, checked, options)
    return LinearStepper.build(checked, columns, depth=depth, **where)


# ---------------------------------------------------------------------- k-diffusion's functions
def drive(stepper: LinearStepper | KarrasStepper, model: Model, x: Array, noise: Any,
          callback: Callable[[dict[str, Any]], Any] | None = None, disable: bool | None = None) -> Array:
    """Run ``stepper`` from ``x``: on the shared driver when ``noise`` is a :class:`~sdeve.protocols.NoiseSource`
    (compiled on JAX), else step by step in Python with ``noise`` any callable ``noise(like)`` (or ``None``
    when the sampler draws none)."""
    if noise is None and stepper.draws_per_step:
        raise TypeError("this sampler with these options draws noise: pass noise= (a NoiseSource, or a callable "
                        "noise(like) -> standard normals like `like`)")
    return run_fixed(stepper, model, x, noise=noise, callback=callback, disable=disable)


def _sample(name: str, model: Model, x: Array, sigmas: Any, noise: Any, callback: Any, disable: Any,
            options: dict[str, Any]) -> Array:
    if getattr(x, "ndim", 0) < 1:
        raise ValueError(f"x must have a batch axis (shape (B, ...)), got shape {tuple(getattr(x, 'shape', ()))}")
    xp = array_namespace(x)
    stepper = build_stepper(name, check_sigmas(sigmas), xp=xp, device=device_of(x), dtype=x.dtype, **options)
    return drive(stepper, model, x, noise, callback, disable)


def sample_euler(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                 disable: bool | None = None, s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf,
                 s_noise: float = 1.0, final_step: str = "denoise") -> Array:
    """Karras et al. (2022), Alg. 2 with Euler steps: ``N = len(sigmas) - 1`` model evaluations.

    Parameters
    ----------
    model
        ``model(x, sigma) -> score``, ``x`` ``(B, ...)``, ``sigma`` ``(B,)`` in ``x``'s namespace and dtype.
    x
        The start, ``(B, ...)`` (``sigmas[0] * z`` for a fresh sample); the result has its shape and dtype.
    sigmas
        Decreasing levels, positive but for a final 0 (:func:`sdeve.samplers.sigma_levels.build_sigmas`).
    noise
        A :class:`~sdeve.protocols.NoiseSource` (then the loop may compile), or any callable
        ``noise(like)``; needed only with ``s_churn > 0``.
    callback, disable
        Called after every step with ``i``, ``sigma``, ``sigma_next``, ``x``, ``denoised``; ``disable=False``
        shows a progress bar.
    s_churn, s_tmin, s_tmax, s_noise
        Karras et al.'s stochasticity: ``gamma = min(s_churn / N, sqrt(2) - 1)`` on levels in
        ``[s_tmin, s_tmax]``, new noise scaled by ``s_noise``.
    final_step
        The step to 0: ``"denoise"`` (``x' = D``, k-diffusion's) or ``"trapezoid"`` (:func:`final_coefficients`).
    """
    options = {"s_churn": s_churn, "s_tmin": s_tmin, "s_tmax": s_tmax, "s_noise": s_noise, "final_step": final_step}
    return _sample("euler", model, x, sigmas, noise, callback, disable, options)


def sample_heun(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                disable: bool | None = None, s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf,
                s_noise: float = 1.0, final_step: str = "denoise") -> Array:
    """Karras et al. (2022), Alg. 2 (Heun's second-order steps, Euler on a step to 0): ``2N - 1`` model
    evaluations when ``sigmas`` ends in 0. Parameters as :func:`sample_euler`."""
    options = {"s_churn": s_churn, "s_tmin": s_tmin, "s_tmax": s_tmax, "s_noise": s_noise, "final_step": final_step}
    return _sample("heun", model, x, sigmas, noise, callback, disable, options)


def sample_euler_ancestral(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                           disable: bool | None = None, eta: float = 1.0, s_noise: float = 1.0,
                           final_step: str = "denoise") -> Array:
    """Euler ancestral (:func:`euler_ancestral_coefficients`): ``N`` model evaluations; ``eta`` scales the
    ancestral noise (0: the Euler ODE step), ``s_noise`` the drawn noise. Other parameters as
    :func:`sample_euler`."""
    options = {"eta": eta, "s_noise": s_noise, "final_step": final_step}
    return _sample("euler_ancestral", model, x, sigmas, noise, callback, disable, options)


def sample_dpmpp_2m(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                    disable: bool | None = None, final_step: str = "denoise") -> Array:
    """DPM-Solver++(2M) (:func:`dpmpp_2m_coefficients`): deterministic, ``N`` model evaluations.
    Parameters as :func:`sample_euler`; ``noise`` is not used."""
    return _sample("dpmpp_2m", model, x, sigmas, noise, callback, disable, {"final_step": final_step})


def sample_dpmpp_2m_sde(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                        disable: bool | None = None, eta: float = 1.0, s_noise: float = 1.0,
                        solver_type: str = "midpoint", final_step: str = "denoise") -> Array:
    """DPM-Solver++(2M) SDE (:func:`dpmpp_2m_sde_coefficients`): ``N`` model evaluations; ``eta`` 0 is the
    ODE, 1 the reverse SDE; ``solver_type`` ``"midpoint"`` or ``"heun"``. Other parameters as
    :func:`sample_euler`."""
    options = {"eta": eta, "s_noise": s_noise, "solver_type": solver_type, "final_step": final_step}
    return _sample("dpmpp_2m_sde", model, x, sigmas, noise, callback, disable, options)


def sample_dpmpp_3m_sde(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                        disable: bool | None = None, eta: float = 1.0, s_noise: float = 1.0,
                        final_step: str = "denoise") -> Array:
    """DPM-Solver++(3M) SDE (:func:`dpmpp_3m_sde_coefficients`): ``N`` model evaluations; ``eta = 0`` is the
    third-order multistep ODE solver. Parameters as :func:`sample_dpmpp_2m_sde`."""
    options = {"eta": eta, "s_noise": s_noise, "final_step": final_step}
    return _sample("dpmpp_3m_sde", model, x, sigmas, noise, callback, disable, options)


# ---------------------------------------------------------------------- sdeve.sample's entry
SCHEDULE_OPTIONS = ("schedule", "rho", "sigma_min", "sigma_max", "sigma_start")


def run_levels(run: Run, options: dict[str, Any]) -> tuple[float, ...]:
    """The levels :func:`sdeve.sample` visits for ``run``: ``num_inference_steps`` steps of the schedule the
    options name (``sigma_min``/``sigma_max`` default to the scheduler's), from SDEdit's first kept step.
    Consumes the schedule options."""
    chosen = {name: options.pop(name) for name in SCHEDULE_OPTIONS if name in options}
    levels = build_sigmas(run.num_steps, schedule=chosen.get("schedule", "karras"), rho=chosen.get("rho"),
                          sigma_min=chosen.get("sigma_min", run.config.sigma_min),
                          sigma_max=chosen.get("sigma_max", run.config.sigma_max),
                          sigma_start=chosen.get("sigma_start"))
    check_levels_fit(min(v for v in levels if v > 0), levels[0], run.dtype, xp=run.xp)
    return levels[run.first_step:]


def run_sigma_space(name: str, run: Run, **options: Any) -> Array:
    """Sampler ``name`` of this module for :func:`sdeve.sample` (registered in :mod:`sdeve.samplers`)."""
    levels = run_levels(run, options)
    stepper = build_stepper(name, levels, xp=run.xp, device=run.device, dtype=run.dtype,
                            constraint=run.constraint, **options)
    return run_fixed(stepper, run.model, run.start_sample(levels[0]), noise=run.noise, callback=run.callback,
                     disable=run.disable, compile_step=run.compile_step, step_index=run.step_index,
                     strict=run.strict)
