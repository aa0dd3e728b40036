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
device, on Dask the graph stays lazy. Noise comes only from the injected noise source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._xp import Array, Namespace, array_namespace, compute_dtype, device_of
from ._fixed import Carry, Model, SigmaTable, check_float, denoiser, run_fixed

__all__ = [
    "SCHEDULES",
    "build_sigmas",
    "check_sigmas",
    "dpmpp_2m_coefficients",
    "dpmpp_2m_sde_coefficients",
    "dpmpp_3m_sde_coefficients",
    "euler_ancestral_coefficients",
    "karras_sigmas",
    "sample_dpmpp_2m",
    "sample_dpmpp_2m_sde",
    "sample_dpmpp_3m_sde",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
]

Coefficients = tuple[list[float], list[float], list[float], list[float], list[float]]


# ---------------------------------------------------------------------- schedules (host, float64)
def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> tuple[float, ...]:
    """Karras et al. (2022), eq. (5): ``(sigma_max^(1/rho) + k/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``
    for ``k = 0..n-1``, then 0: ``n + 1`` decreasing levels."""
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float64)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (*(float(v) for v in (hi + ramp * (lo - hi)) ** rho), 0.0)


def geometric_sigmas(n: int, sigma_min: float, sigma_max: float) -> tuple[float, ...]:
    """Song et al.'s VE levels, ``sigma_max (sigma_min / sigma_max)^(k/(n-1))`` (uniform in ``log sigma``),
    then 0."""
    return (*(float(v) for v in np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))), 0.0)


def exponential_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> tuple[float, ...]:
    """k-diffusion's polyexponential levels: ``log sigma`` runs from ``log sigma_max`` to ``log sigma_min`` as
    ``(1 - k/(n-1))^rho``; ``rho = 1`` is :func:`geometric_sigmas`, ``rho > 1`` spends more steps at low noise."""
    ramp = np.linspace(1.0, 0.0, n, dtype=np.float64) ** rho
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return (*(float(v) for v in np.exp(lo + ramp * (hi - lo))), 0.0)


SCHEDULES: dict[str, Callable[..., tuple[float, ...]]] = {
    "karras": karras_sigmas,
    "geometric": geometric_sigmas,
    "exponential": exponential_sigmas,
}


def build_sigmas(
    num_steps: int, *, schedule: str = "karras", sigma_min: float, sigma_max: float, rho: float | None = None,
    sigma_start: float | None = None,
) -> tuple[float, ...]:
    """The ``num_steps + 1`` levels a sigma-space sampler visits, ending in 0, as Python floats.

    ``schedule`` is ``"karras"`` (``rho`` default 7), ``"geometric"`` (no ``rho``) or ``"exponential"``
    (``rho`` default 1). With ``sigma_start > sigma_max`` the levels are ``sigma_start`` and then the
    schedule's ``num_steps - 1`` levels from ``sigma_max``: the sample starts as ``N(0, sigma_start^2 I)``,
    much closer to ``p_sigma_start`` than ``N(0, sigma_max^2 I)`` is to ``p_sigma_max`` (the gap shrinks as
    ``1 / sigma``), and the first step crosses down to ``sigma_max`` with one model evaluation, where the
    denoiser barely changes (it tends to the data mean). The model must be valid at ``sigma_start``.
    Raises ``ValueError``/``TypeError`` for anything else.
    """
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
        raise TypeError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    low = check_float("sigma_min", sigma_min, inclusive=False)
    high = check_float("sigma_max", sigma_max, inclusive=False)
    if not high > low:
        raise ValueError(f"sigma_max must exceed sigma_min, got sigma_min={low}, sigma_max={high}")
    if sigma_start is None:
        return _levels(schedule, num_steps, low, high, rho)
    start = check_float("sigma_start", sigma_start, inclusive=False)
    if not start > high:
        raise ValueError(f"sigma_start must exceed sigma_max, got sigma_start={start}, sigma_max={high}")
    if num_steps < 2:
        raise ValueError("sigma_start needs num_steps >= 2 (one step down to sigma_max, then the schedule)")
    return (start, *_levels(schedule, num_steps - 1, low, high, rho))


def _levels(schedule: str, num_steps: int, low: float, high: float, rho: float | None) -> tuple[float, ...]:
    if schedule == "geometric":
        if rho is not None:
            raise ValueError("rho has no meaning for schedule='geometric'; use 'karras' or 'exponential'")
        return geometric_sigmas(num_steps, low, high)
    default = 7.0 if schedule == "karras" else 1.0
    power = default if rho is None else check_float("rho", rho, inclusive=False)
    return SCHEDULES[schedule](num_steps, low, high, power)


def check_sigmas(sigmas: Any) -> tuple[float, ...]:
    """``sigmas`` as a tuple of at least two finite floats, strictly decreasing, positive except a final 0."""
    try:
        values = tuple(float(v) for v in sigmas)
    except (TypeError, ValueError):
        raise TypeError(f"sigmas must be a sequence of numbers, got {type(sigmas).__name__}") from None
    if len(values) < 2:
        raise ValueError(f"sigmas must hold at least two levels (one step), got {len(values)}")
    if not all(math.isfinite(v) for v in values) or min(values[:-1]) <= 0 or values[-1] < 0:
        raise ValueError("sigmas must be finite and positive, except that the last may be 0")
    if any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError("sigmas must be strictly decreasing")
    return values


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


def _final(coefficients: Coefficients, sigmas: Sequence[float], final_step: str) -> Coefficients:
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
def _tables(columns: Sequence[Sequence[float]], xp: Namespace, device: Any, dtype: Any) -> tuple[SigmaTable, ...]:
    return tuple(SigmaTable(column, xp, device, dtype) for column in columns)


class LinearStepper:
    """``x_next = a x + c0 D + c1 D_prev + c2 D_prev2 + g z`` with per-step coefficients from a table.

    ``carry = (x, D, D_prev)``: the sample, the last denoised estimate and the one before (zeros until there
    are any; their coefficients are 0 there). ``depth`` is how many past estimates the formula reads (0-2);
    noise is drawn only when some ``g`` is non-zero, and never on a step whose ``g`` is 0 by construction
    (a step to 0).
    """

    def __init__(self, sigmas: Sequence[float], coefficients: Coefficients, *, depth: int, xp: Namespace,
                 device: Any, dtype: Any) -> None:
        self.num_steps = len(sigmas) - 1
        self.sigma = SigmaTable(sigmas[:-1], xp, device, dtype)
        self.a, self.c0, self.c1, self.c2, self.g = _tables(coefficients, xp, device, dtype)
        self.depth = depth
        self.noisy = any(v != 0.0 for v in coefficients[4])
        self.last_noisy = coefficients[4][-1] != 0.0
        self.xp = xp

    def init(self, x: Array) -> Carry:
        zeros = self.xp.zeros_like(x)
        return (x, zeros, zeros)

    def step(self, model: Model, i: Any, carry: Carry, noise: Any, *, first: bool, last: bool) -> Carry:
        x, previous, older = carry
        denoised = denoiser(model, x, self.sigma.at(i), xp=self.xp)
        out = self.a.at(i) * x + self.c0.at(i) * denoised
        if self.depth >= 1 and not first:
            out = out + self.c1.at(i) * previous
        if self.depth >= 2 and not first:
            out = out + self.c2.at(i) * older
        if self.noisy and (self.last_noisy or not last):
            out = out + self.g.at(i) * noise(x)
        return (out, denoised, previous)

    def output(self, carry: Carry) -> Array:
        return carry[0]


class KarrasStepper:
    """Karras et al. (2022), Alg. 2: churn ``x_hat = x + s_noise sqrt(hat^2 - s^2) z`` with
    ``hat = s (1 + gamma)``, an Euler step ``x' = x_hat + (s' - hat) (x_hat - D(x_hat, hat)) / hat``, and with
    ``heun`` the trapezoidal correction ``x' = x_hat + (s' - hat) (d + d') / 2`` unless ``s' = 0``; with
    ``trapezoid``, the step to 0 takes ``d' = 0`` (see :func:`_final`). ``carry = (x, D)``."""

    def __init__(self, sigmas: Sequence[float], *, heun: bool, churn: Sequence[float], s_noise: float,
                 trapezoid: bool, xp: Namespace, device: Any, dtype: Any) -> None:
        gammas = churn
        hats = [s * (1.0 + gamma) for s, gamma in zip(sigmas, gammas)]
        self.num_steps = len(sigmas) - 1
        self.heun = heun
        self.ends_at_zero = sigmas[-1] == 0.0
        self.churned = any(gamma > 0 for gamma in gammas)
        self.s_noise = s_noise
        self.trapezoid = trapezoid and self.ends_at_zero
        columns = (hats, [n - h for n, h in zip(sigmas[1:], hats)], sigmas[1:],
                   [math.sqrt(h * h - s * s) for h, s in zip(hats, sigmas)])
        self.hat, self.dt, self.next, self.churn = _tables(columns, xp, device, dtype)
        self.xp = xp

    def init(self, x: Array) -> Carry:
        return (x, self.xp.zeros_like(x))

    def step(self, model: Model, i: Any, carry: Carry, noise: Any, *, first: bool, last: bool) -> Carry:
        x = carry[0]
        if self.churned:
            x = x + self.churn.at(i) * (self.s_noise * noise(x))
        hat, dt = self.hat.at(i), self.dt.at(i)
        denoised = denoiser(model, x, hat, xp=self.xp)
        d = (x - denoised) / hat
        if last and self.trapezoid:
            return (x + d * (dt / 2), denoised)
        out = x + d * dt
        if self.heun and not (last and self.ends_at_zero):
            s_next = self.next.at(i)
            d_next = (out - denoiser(model, out, s_next, xp=self.xp)) / s_next
            out = x + (d + d_next) / 2 * dt
        return (out, denoised)

    def output(self, carry: Carry) -> Array:
        return carry[0]


# ---------------------------------------------------------------------- the samplers
def _setup(x: Array, sigmas: Any, xp: Namespace | None) -> tuple[Namespace, tuple[float, ...], Any, Any]:
    xp = array_namespace(x) if xp is None else xp
    if getattr(x, "ndim", 0) < 1:
        raise ValueError(f"x must have a batch axis (shape (B, ...)), got shape {tuple(getattr(x, 'shape', ()))}")
    return xp, check_sigmas(sigmas), device_of(x), x.dtype


def _needs_noise(noise: Any, stepper: Any, name: str) -> None:
    if noise is None and (getattr(stepper, "noisy", False) or getattr(stepper, "churned", False)):
        raise TypeError(f"{name} with these options draws noise: pass noise= (a noise source, noise(like) -> "
                        f"standard normals like `like`)")


def _churn(sigmas: Sequence[float], s_churn: Any, s_tmin: Any, s_tmax: Any) -> list[float]:
    """Karras et al.'s ``gamma_i = min(S_churn / N, sqrt(2) - 1)`` where ``S_tmin <= sigma_i <= S_tmax``."""
    churn = check_float("s_churn", s_churn)
    low = check_float("s_tmin", s_tmin)
    high = check_float("s_tmax", s_tmax, infinite=True)
    if high < low:
        raise ValueError(f"s_tmax must be >= s_tmin, got s_tmin={low}, s_tmax={high}")
    gamma = min(churn / (len(sigmas) - 1), math.sqrt(2.0) - 1.0)
    return [gamma if low <= s <= high else 0.0 for s in sigmas[:-1]]


def _karras(model: Model, x: Array, sigmas: Any, *, heun: bool, noise: Any, callback: Any, disable: Any,
            backend: Any, s_churn: Any, s_tmin: Any, s_tmax: Any, s_noise: Any, final_step: str,
            xp: Namespace | None) -> Array:
    xp, levels, device, dtype = _setup(x, sigmas, xp)
    gammas = _churn(levels, s_churn, s_tmin, s_tmax)
    if final_step not in FINAL_STEPS:
        raise ValueError(f"final_step must be one of {FINAL_STEPS}, got {final_step!r}")
    stepper = KarrasStepper(levels, heun=heun, churn=gammas, s_noise=check_float("s_noise", s_noise),
                            trapezoid=final_step == "trapezoid", xp=xp, device=device, dtype=dtype)
    _needs_noise(noise, stepper, "heun" if heun else "euler")
    return run_fixed(stepper, model, x, noise, backend=backend, callback=callback, sigmas=levels, disable=disable)


def sample_euler(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                 disable: bool | None = None, backend: Any = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                 s_tmax: float = math.inf, s_noise: float = 1.0, final_step: str = "denoise",
                xp: Namespace | None = None) -> Array:
    """Karras et al. (2022), Alg. 2 with Euler steps: ``N = len(sigmas) - 1`` model evaluations.

    Parameters
    ----------
    model
        ``model(x, sigma) -> score``, ``x`` ``(B, ...)``, ``sigma`` ``(B,)`` in ``x``'s namespace and dtype.
    x
        The start, ``(B, ...)`` (``sigmas[0] * z`` for a fresh sample); the result has its shape and dtype.
    sigmas
        Decreasing levels, positive but for a final 0 (:func:`build_sigmas`).
    noise
        The noise source (needed only with ``s_churn > 0``).
    s_churn, s_tmin, s_tmax, s_noise
        Karras et al.'s stochasticity: ``gamma = min(s_churn / N, sqrt(2) - 1)`` on levels in
        ``[s_tmin, s_tmax]``, new noise scaled by ``s_noise``.
    final_step
        The step to 0: ``"denoise"`` (``x' = D``, k-diffusion's) or ``"trapezoid"`` (:func:`_final`).
    callback, disable, backend, xp
        Per-step callback (keys ``i``, ``sigma``, ``sigma_next``, ``x``, ``denoised``); ``disable=False``
        shows a progress bar; the backend's loop (compiled on JAX); the namespace.
    """
    return _karras(model, x, sigmas, heun=False, noise=noise, callback=callback, disable=disable, backend=backend,
                   s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise, final_step=final_step, xp=xp)


def sample_heun(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                disable: bool | None = None, backend: Any = None, s_churn: float = 0.0, s_tmin: float = 0.0,
                s_tmax: float = math.inf, s_noise: float = 1.0, final_step: str = "denoise",
                xp: Namespace | None = None) -> Array:
    """Karras et al. (2022), Alg. 2 (Heun's second-order steps, Euler on a step to 0): ``2N - 1`` model
    evaluations when ``sigmas`` ends in 0. Parameters as :func:`sample_euler`."""
    return _karras(model, x, sigmas, heun=True, noise=noise, callback=callback, disable=disable, backend=backend,
                   s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise, final_step=final_step, xp=xp)


def _linear(model: Model, x: Array, sigmas: Any, build: Callable[[tuple[float, ...]], Coefficients], *, depth: int,
            name: str, noise: Any, callback: Any, disable: Any, backend: Any, xp: Namespace | None,
            final_step: str = "denoise") -> Array:
    xp, levels, device, dtype = _setup(x, sigmas, xp)
    coefficients = _final(build(levels), levels, final_step)
    stepper = LinearStepper(levels, coefficients, depth=depth, xp=xp, device=device, dtype=dtype)
    _needs_noise(noise, stepper, name)
    return run_fixed(stepper, model, x, noise, backend=backend, callback=callback, sigmas=levels, disable=disable)


def sample_euler_ancestral(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                           disable: bool | None = None, backend: Any = None, eta: float = 1.0, s_noise: float = 1.0,
                           final_step: str = "denoise", xp: Namespace | None = None) -> Array:
    """Euler ancestral (:func:`euler_ancestral_coefficients`): ``N`` model evaluations; ``eta`` scales the
    ancestral noise (0: the Euler ODE step), ``s_noise`` the drawn noise. Other parameters as
    :func:`sample_euler`."""
    eta_, s_noise_ = check_float("eta", eta), check_float("s_noise", s_noise)
    return _linear(model, x, sigmas, lambda v: euler_ancestral_coefficients(v, eta_, s_noise_), depth=0,
                   name="euler_ancestral", noise=noise, callback=callback, disable=disable, backend=backend, xp=xp, final_step=final_step)


def sample_dpmpp_2m(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                    disable: bool | None = None, backend: Any = None, final_step: str = "denoise", xp: Namespace | None = None) -> Array:
    """DPM-Solver++(2M) (:func:`dpmpp_2m_coefficients`): deterministic, ``N`` model evaluations.
    Parameters as :func:`sample_euler`; ``noise`` is not used."""
    return _linear(model, x, sigmas, dpmpp_2m_coefficients, depth=1, name="dpmpp_2m", noise=noise,
                   callback=callback, disable=disable, backend=backend, xp=xp, final_step=final_step)


def sample_dpmpp_2m_sde(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                        disable: bool | None = None, backend: Any = None, eta: float = 1.0, s_noise: float = 1.0,
                        solver_type: str = "midpoint", final_step: str = "denoise", xp: Namespace | None = None) -> Array:
    """DPM-Solver++(2M) SDE (:func:`dpmpp_2m_sde_coefficients`): ``N`` model evaluations; ``eta`` 0 is
    the ODE, 1 the reverse SDE; ``solver_type`` ``"midpoint"`` or ``"heun"``. Other parameters as
    :func:`sample_euler`."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    eta_, s_noise_ = check_float("eta", eta), check_float("s_noise", s_noise)
    return _linear(model, x, sigmas, lambda v: dpmpp_2m_sde_coefficients(v, eta_, s_noise_, solver_type), depth=1,
                   name="dpmpp_2m_sde", noise=noise, callback=callback, disable=disable, backend=backend, xp=xp, final_step=final_step)


def sample_dpmpp_3m_sde(model: Model, x: Array, sigmas: Any, *, noise: Any = None, callback: Any = None,
                        disable: bool | None = None, backend: Any = None, eta: float = 1.0, s_noise: float = 1.0,
                        final_step: str = "denoise", xp: Namespace | None = None) -> Array:
    """DPM-Solver++(3M) SDE (:func:`dpmpp_3m_sde_coefficients`): ``N`` model evaluations. Parameters as
    :func:`sample_dpmpp_2m_sde`."""
    eta_, s_noise_ = check_float("eta", eta), check_float("s_noise", s_noise)
    return _linear(model, x, sigmas, lambda v: dpmpp_3m_sde_coefficients(v, eta_, s_noise_), depth=2,
                   name="dpmpp_3m_sde", noise=noise, callback=callback, disable=disable, backend=backend, xp=xp, final_step=final_step)
