"""Sigma-space samplers for the VE SDE: Euler and Heun (Karras et al. 2022, Alg. 2), Euler ancestral, and
DPM-Solver++ 2M, 2M SDE and 3M SDE (Lu et al. 2022), with k-diffusion's names, options and step rules.

The model is a score model; these samplers use the denoiser ``D(x, sigma) = x + sigma^2 score(x, sigma)``
and the probability-flow ODE ``dx/dsigma = (x - D) / sigma``. ``sigmas`` is the decreasing host sequence of
levels to visit, normally ending in 0 (see :func:`build_sigmas`).

Every sampler but Heun is one linear update per model evaluation,

    x_next = a_i x + c0_i D_i + c1_i D_{i-1} + c2_i D_{i-2} + g_i z_i,

whose coefficients depend only on the levels and the options. They are computed once on the host in float64
(the ``*_coefficients`` functions, one per sampler, each citing its formula) and read per step from a table,
so no step branches on an array value: on JAX the loop is one compiled program, on torch no step reads the
device. Noise comes only from the injected noise source.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from .._xp import Array, Namespace, array_namespace, device_of
from ..backends import backend_for
from ..protocols import NoiseSource
from ._denoiser import check_float, denoiser
from ._loop import Carry, Model, Table, run_fixed, static_field
from ._run import Run
from ..validation import check_levels_fit
from .pc import Inpainting
from .sigma_levels import build_sigmas, check_sigmas

__all__ = [
    "FINAL_STEPS",
    "KarrasStepper",
    "LinearStepper",
    "dpmpp_2m_coefficients",
    "dpmpp_2m_sde_coefficients",
    "dpmpp_3m_sde_coefficients",
    "euler_ancestral_coefficients",
    "final_coefficients",
    "karras_churn",
    "sample_dpmpp_2m",
    "sample_dpmpp_2m_sde",
    "sample_dpmpp_3m_sde",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "run_sigma_space",
]

Coefficients = tuple[list[float], list[float], list[float], list[float], list[float]]


# ---------------------------------------------------------------------- coefficients (host, float64)
# A step to sigma = 0 returns the denoiser's estimate: x' = D.
_TO_ZERO = (0.0, 1.0, 0.0, 0.0, 0.0)


def _columns(rows: Sequence[tuple[float, float, float, float, float]]) -> Coefficients:
    """Per-step rows ``(a, c0, c1, c2, g)`` as five per-coefficient lists."""
    a, c0, c1, c2, g = (list(column) for column in zip(*rows))
    return a, c0, c1, c2, g


def _log_steps(sigmas: Sequence[float]) -> list[float]:
    """``h_i = log(sigma_i / sigma_{i+1})`` (``t = -log sigma``; ``inf`` for a step to 0)."""
    return [math.log(s / n) if n > 0 else math.inf for s, n in zip(sigmas, sigmas[1:])]


def euler_ancestral_coefficients(sigmas: Sequence[float], eta: float, s_noise: float) -> Coefficients:
    """Euler ancestral: an Euler step to ``sigma_down``, then noise of std ``sigma_up`` (k-diffusion's
    ``get_ancestral_step``; for the VE SDE with ``eta = 1`` this is Song et al.'s ancestral predictor):
    ``sigma_up = min(s', eta sqrt(s'^2 (s^2 - s'^2) / s^2))``, ``sigma_down = sqrt(s'^2 - sigma_up^2)``,
    ``x' = x + (sigma_down - s) (x - D) / s + s_noise sigma_up z``."""
    rows = []
    for s, s_next in zip(sigmas, sigmas[1:]):
        up = min(s_next, eta * math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2))
        down = math.sqrt(s_next**2 - up**2)
        rows.append((down / s, 1.0 - down / s, 0.0, 0.0, s_noise * up))
    return _columns(rows)


def dpmpp_2m_coefficients(sigmas: Sequence[float]) -> Coefficients:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in ``t = -log sigma``: with ``h = t' - t`` and
    ``r = h_prev / h``, ``x' = (s'/s) x - expm1(-h) ((1 + 1/(2r)) D - D_prev / (2r))``; first order on the
    first step and on a step to 0 (where ``x' = D``)."""
    h = _log_steps(sigmas)
    rows = []
    for i, (s, s_next) in enumerate(zip(sigmas, sigmas[1:])):
        b = -math.expm1(-h[i])
        if i == 0 or s_next == 0:
            rows.append((s_next / s, b, 0.0, 0.0, 0.0))
        else:
            half_over_r = 0.5 * h[i] / h[i - 1]
            rows.append((s_next / s, b * (1.0 + half_over_r), -b * half_over_r, 0.0, 0.0))
    return _columns(rows)


def dpmpp_2m_sde_coefficients(sigmas: Sequence[float], eta: float, s_noise: float, solver_type: str) -> Coefficients:
    """DPM-Solver++(2M) SDE (Lu et al. 2022, ``eta`` interpolating to the ODE; k-diffusion's form): with
    ``h = log(s/s')``, ``x' = (s'/s) e^{-eta h} x - expm1(-(1+eta) h) D + e (D - D_prev)
    + s' sqrt(-expm1(-2 eta h)) s_noise z``, ``e = -expm1(-(1+eta)h) / (2r)`` (midpoint) or
    ``(-expm1(-(1+eta)h) / (-(1+eta)h) + 1) / r`` (heun); ``x' = D`` on a step to 0."""
    h = _log_steps(sigmas)
    rows = []
    for i, (s, s_next) in enumerate(zip(sigmas, sigmas[1:])):
        if s_next == 0:
            rows.append(_TO_ZERO)
            continue
        eh = eta * h[i]
        b = -math.expm1(-h[i] - eh)
        e = 0.0
        if i > 0:
            r = h[i - 1] / h[i]
            e = 0.5 * b / r if solver_type == "midpoint" else (b / (-h[i] - eh) + 1.0) / r
        noise = s_next * math.sqrt(-math.expm1(-2.0 * eh)) * s_noise
        rows.append((s_next / s * math.exp(-eh), b + e, -e, 0.0, noise))
    return _columns(rows)


def _third_order(h: float, h_eta: float, h1: float, h2: float) -> tuple[float, float, float]:
    """The weights of ``(D, D_prev, D_prev2)`` in DPM-Solver++(3M)'s correction ``phi2 d1 - phi3 d2``, with
    ``d1_0 = (D - D1)/r0``, ``d1_1 = (D1 - D2)/r1``, ``d1 = d1_0 + (d1_0 - d1_1) r0/(r0+r1)``,
    ``d2 = (d1_0 - d1_1)/(r0+r1)``, ``r0 = h1/h``, ``r1 = h2/h``."""
    r0, r1 = h1 / h, h2 / h
    phi2 = math.expm1(-h_eta) / h_eta + 1.0
    phi3 = phi2 / h_eta - 0.5
    w0 = phi2 * (1.0 + r0 / (r0 + r1)) - phi3 / (r0 + r1)  # weight of d1_0
    w1 = -phi2 * r0 / (r0 + r1) + phi3 / (r0 + r1)  # weight of d1_1
    return w0 / r0, -w0 / r0 + w1 / r1, -w1 / r1


def dpmpp_3m_sde_coefficients(sigmas: Sequence[float], eta: float, s_noise: float) -> Coefficients:
    """DPM-Solver++(3M) SDE (k-diffusion's form): with ``h = log(s/s')`` and ``h_eta = (1+eta) h``,
    ``x' = e^{-h_eta} x - expm1(-h_eta) D + [third order in D, D1, D2] + s' sqrt(-expm1(-2 eta h)) s_noise z``:
    second order on the second step, first on the first; ``x' = D`` on a step to 0."""
    h = _log_steps(sigmas)
    rows = []
    for i, s_next in enumerate(sigmas[1:]):
        if s_next == 0:
            rows.append(_TO_ZERO)
            continue
        h_eta = h[i] * (eta + 1.0)
        w = (0.0, 0.0, 0.0)
        if i >= 2:
            w = _third_order(h[i], h_eta, h[i - 1], h[i - 2])
        elif i == 1:
            phi2_over_r = (math.expm1(-h_eta) / h_eta + 1.0) / (h[i - 1] / h[i])
            w = (phi2_over_r, -phi2_over_r, 0.0)
        noise = s_next * math.sqrt(-math.expm1(-2.0 * h[i] * eta)) * s_noise
        rows.append((math.exp(-h_eta), -math.expm1(-h_eta) + w[0], w[1], w[2], noise))
    return _columns(rows)


FINAL_STEPS = ("denoise", "trapezoid")


def final_coefficients(coefficients: Coefficients, sigmas: Sequence[float], final_step: str) -> Coefficients:
    """The last step's row for ``final_step``: on a step to 0, ``"denoise"`` keeps ``x' = D`` and
    ``"trapezoid"`` takes ``x' = (x + D) / 2``, the trapezoidal rule with ``dx/dsigma = -sigma score = 0`` at
    ``sigma = 0`` (second order where the data density is smooth; no extra model evaluation)."""
    if final_step not in FINAL_STEPS:
        raise ValueError(f"final_step must be one of {FINAL_STEPS}, got {final_step!r}")
    if final_step == "denoise" or sigmas[-1] != 0.0:
        return coefficients
    a, c0, c1, c2, g = (list(column) for column in coefficients)
    a[-1], c0[-1], c1[-1], c2[-1], g[-1] = 0.5, 0.5, 0.0, 0.0, 0.0
    return a, c0, c1, c2, g


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
    noise is drawn only where some ``g`` is non-zero (never on a step to 0). With ``constraint`` (inpainting)
    the known part is imposed at the next level after every step (one more draw).
    """

    sigma: Table
    next: Table
    a: Table
    c0: Table
    c1: Table
    c2: Table
    g: Table
    constraint: Inpainting | None
    num_steps: int = static_field()
    depth: int = static_field()
    noisy: bool = static_field()
    last_noisy: bool = static_field()
    xp: Namespace = static_field()
    levels: tuple[float, ...] | None = static_field(host_only=True)

    @classmethod
    def build(cls, levels: Sequence[float], coefficients: Coefficients, *, depth: int, xp: Namespace, device: Any,
              dtype: Any, constraint: Inpainting | None = None) -> LinearStepper:
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
    constraint: Inpainting | None
    num_steps: int = static_field()
    heun: bool = static_field()
    churned: bool = static_field()
    ends_at_zero: bool = static_field()
    trapezoid: bool = static_field()
    xp: Namespace = static_field()
    levels: tuple[float, ...] | None = static_field(host_only=True)

    @classmethod
    def build(cls, levels: Sequence[float], gammas: Sequence[float], *, heun: bool, s_noise: float, trapezoid: bool,
              xp: Namespace, device: Any, dtype: Any, constraint: Inpainting | None = None) -> KarrasStepper:
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
                  constraint: Inpainting | None = None, **options: Any) -> LinearStepper | KarrasStepper:
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
    if isinstance(noise, NoiseSource):
        return run_fixed(stepper, model, x, noise=noise, callback=callback, disable=disable)
    if noise is None and stepper.draws_per_step:
        raise TypeError("this sampler with these options draws noise: pass noise= (a NoiseSource, or a callable "
                        "noise(like) -> standard normals like `like`)")
    backend = backend_for(x)
    carry = stepper.init(x)
    n = stepper.num_steps
    for i in range(n):
        carry = backend.settle(stepper.step(model, i, carry, noise, first=i == 0, last=i == n - 1), carry)
        if callback is not None:
            callback(stepper.report(i, carry))
    return stepper.output(carry)


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
    constraint = None if run.mask is None else Inpainting(run.init, run.mask)
    stepper = build_stepper(name, levels, xp=run.xp, device=run.device, dtype=run.dtype, constraint=constraint,
                            **options)
    return run_fixed(stepper, run.model, run.start_sample(levels[0]), noise=run.noise, callback=run.callback,
                     disable=run.disable, compile_step=run.compile_step, step_index=run.step_index,
                     strict=run.strict)
