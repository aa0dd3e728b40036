"""Float64 NumPy references for the sigma-space samplers and Gotta Go Fast, written from the papers' formulas
in their own form (not from the samplers' coefficient tables): Karras et al. (2022), Alg. 2; Euler ancestral;
DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) and k-diffusion's 2M/3M SDE forms; Jolicoeur-Martineau et al. (2021),
Alg. 1. Each takes ``den(x, sigma)`` (the denoiser) or ``score(x, sigma)`` and an iterator of standard normals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["ref_adaptive", "ref_dpmpp_2m", "ref_dpmpp_2m_sde", "ref_dpmpp_3m_sde", "ref_euler_ancestral", "ref_karras"]

Denoiser = Callable[[np.ndarray, float], np.ndarray]


def ref_karras(den: Denoiser, x: np.ndarray, sig: list[float], z: Iterator[np.ndarray], *, heun: bool, s_churn: float = 0.0,
               s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
               final_step: str = "denoise") -> np.ndarray:
    """Karras et al. (2022), Alg. 2."""
    n = len(sig) - 1
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= s <= s_tmax else 0.0
        hat = s * (1 + gamma)
        if s_churn > 0:
            x = x + math.sqrt(hat**2 - s**2) * s_noise * next(z)
        d = (x - den(x, hat)) / hat
        if s_next == 0 and final_step == "trapezoid":
            x = x + (s_next - hat) * d / 2
        elif s_next == 0 or not heun:
            x = x + (s_next - hat) * d
        else:
            x_2 = x + (s_next - hat) * d
            x = x + (s_next - hat) * (d + (x_2 - den(x_2, s_next)) / s_next) / 2
    return x


def ref_euler_ancestral(den: Denoiser, x: np.ndarray, sig: list[float], z: Iterator[np.ndarray], *, eta: float = 1.0,
                        s_noise: float = 1.0) -> np.ndarray:
    """Euler ancestral; at ``eta = 1`` Song et al.'s ancestral noise ``sqrt(s'^2 (s^2 - s'^2) / s^2)``."""
    for s, s_next in zip(sig, sig[1:]):
        up = min(s_next, eta * math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2))
        down = math.sqrt(s_next**2 - up**2)
        x = x + (down - s) * (x - den(x, s)) / s
        if s_next > 0:
            x = x + s_noise * up * next(z)
    return x


def ref_dpmpp_2m(den: Denoiser, x: np.ndarray, sig: list[float], z: Iterator[np.ndarray]) -> np.ndarray:
    """DPM-Solver++(2M), Lu et al. (2022), Alg. 2, with ``lambda = -log sigma`` and ``alpha = 1``."""
    old = None
    for i, (s, s_next) in enumerate(zip(sig, sig[1:])):
        d = den(x, s)
        if s_next == 0:
            x = d
        else:
            h = math.log(s / s_next)
            if old is not None:
                r = math.log(sig[i - 1] / s) / h
                d_use = (1 + 1 / (2 * r)) * d - old / (2 * r)
            else:
                d_use = d
            x = (s_next / s) * x - math.expm1(-h) * d_use
        old = d
    return x


def ref_dpmpp_2m_sde(den: Denoiser, x: np.ndarray, sig: list[float], z: Iterator[np.ndarray], *, eta: float = 1.0,
                     s_noise: float = 1.0, solver_type: str = "midpoint") -> np.ndarray:
    """DPM-Solver++(2M) SDE (k-diffusion's form of Lu et al. 2022)."""
    old, h_last = None, None
    for s, s_next in zip(sig, sig[1:]):
        d = den(x, s)
        if s_next == 0:
            x = d
        else:
            h = math.log(s / s_next)
            e = eta * h
            x = s_next / s * math.exp(-e) * x - math.expm1(-h - e) * d
            if old is not None:
                r = h_last / h
                phi = -math.expm1(-h - e)
                if solver_type == "midpoint":
                    x = x + 0.5 * phi / r * (d - old)
                else:
                    x = x + (phi / (-h - e) + 1) / r * (d - old)
            if eta:
                x = x + s_next * math.sqrt(-math.expm1(-2 * e)) * s_noise * next(z)
            h_last = h
        old = d
    return x


def ref_dpmpp_3m_sde(den: Denoiser, x: np.ndarray, sig: list[float], z: Iterator[np.ndarray], *, eta: float = 1.0,
                     s_noise: float = 1.0) -> np.ndarray:
    """DPM-Solver++(3M) SDE (k-diffusion's form)."""
    d1 = d2 = h1 = h2 = None
    for s, s_next in zip(sig, sig[1:]):
        d = den(x, s)
        if s_next == 0:
            x = d
            continue
        h = math.log(s / s_next)
        he = h * (eta + 1)
        x = math.exp(-he) * x - math.expm1(-he) * d
        phi2 = math.expm1(-he) / he + 1
        if h2 is not None:
            r0, r1 = h1 / h, h2 / h
            a, b = (d - d1) / r0, (d1 - d2) / r1
            x = x + phi2 * (a + (a - b) * r0 / (r0 + r1)) - (phi2 / he - 0.5) * (a - b) / (r0 + r1)
        elif h1 is not None:
            x = x + phi2 * (d - d1) / (h1 / h)
        if eta:
            x = x + s_next * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise * next(z)
        d1, d2, h1, h2 = d, d1, h, h1
    return x


def ref_adaptive(score: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, sig: list[float], z: Iterator[np.ndarray], *, rtol: float = 0.05,
                 atol: float = 0.0039, error_norm: str = "example") -> np.ndarray:
    """Jolicoeur-Martineau et al. (2021), Alg. 1 for the VE SDE, per example (or batch), then denoise."""
    lo, hi = min(v for v in sig if v > 0), sig[0]
    big = math.log(hi / lo)
    t, h, prev = np.ones(len(x)), np.full(len(x), 0.01), x

    def k(x: np.ndarray, t: np.ndarray, h: np.ndarray, zz: np.ndarray) -> np.ndarray:
        s = lo * np.exp(t * big)
        g2 = (2 * big * s * s)[:, None]
        return h[:, None] * g2 * score(x, s) + np.sqrt(h[:, None] * g2) * zz

    while np.any(t > 0):
        zz = next(z)
        k1 = k(x, t, h, zz)
        k2 = k(x + k1, t - h, h, zz)
        scale = np.maximum(atol, rtol * np.maximum(np.abs(x + k1), np.abs(prev)))
        q = ((k2 - k1) / 2 / scale) ** 2
        err = np.sqrt(q.mean(axis=1)) if error_norm == "example" else np.full(len(x), np.sqrt(q.mean()))
        ok = err <= 1
        prev = np.where(ok[:, None], x + k1, prev)
        x = np.where(ok[:, None], x + (k1 + k2) / 2, x)
        t = np.where(ok, np.maximum(t - h, 0), t)
        h = np.minimum(t, 0.9 * h * np.maximum(err, 1e-10) ** -0.9)
    return x + lo**2 * score(x, np.full(len(x), lo))
