"""The per-step coefficients of the linear sigma-space samplers, on the host in float64 (one function per
sampler, each citing its formula). Every one of them is

    x_next = a_i x + c0_i D_i + c1_i D_{i-1} + c2_i D_{i-2} + g_i z_i

with ``D`` the denoiser's estimates and ``z`` standard normals; the functions return the five columns
``(a, c0, c1, c2, g)``, one value per step, for the levels ``sigmas`` (``N + 1`` values, decreasing)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "FINAL_STEPS",
    "Coefficients",
    "dpmpp_2m_coefficients",
    "dpmpp_2m_sde_coefficients",
    "dpmpp_3m_sde_coefficients",
    "euler_ancestral_coefficients",
    "final_coefficients",
]

Coefficients = tuple[list[float], list[float], list[float], list[float], list[float]]


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
