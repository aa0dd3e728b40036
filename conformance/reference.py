"""The float64 reference: REFERENCE.md's formulas in plain NumPy, written without sdeve's core.

Nothing here imports ``sdeve``: every formula is transcribed from the math (Song et al. 2021; diffusers'
``ScoreSdeVeScheduler``) so that an error in the core cannot be copied into its own yardstick. Noise is an
argument, as in the core, so a backend and the reference see the same draws. :mod:`conformance.mp` checks
these functions against an mpmath evaluation at 50 digits, so that the reference is not merely consistent
with itself.

All arrays are ``float64`` NumPy arrays of shape ``(B, ...)`` (batch first); per-example coefficients have
shape ``(B,)`` and broadcast over the trailing axes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "SIGMA_MAX",
    "SIGMA_MIN",
    "add_noise",
    "adjacent",
    "continuous_sigmas",
    "corrector",
    "corrector_eps",
    "example_norms",
    "level_index",
    "noised",
    "predictor",
    "predictor_g2",
    "term_scale",
    "condition_g2",
    "corrector_step_size",
    "discrete_sigmas",
    "g2",
    "index_of",
    "sigmas",
    "step_correct",
    "step_pred",
    "timesteps",
]

F64 = np.float64


def _ramp(n: int) -> np.ndarray:
    """``k / (n - 1)`` for ``k = 0..n-1``; ``[0]`` when ``n == 1`` (numpy.linspace's convention)."""
    if n == 1:
        return np.zeros(1, dtype=F64)
    return np.arange(n, dtype=F64) / F64(n - 1)


def timesteps(n: int, sampling_eps: float = 1e-5) -> np.ndarray:
    """``t_i = 1 + (sampling_eps - 1) * i / (N - 1)``: ``N`` times from 1 down to ``sampling_eps``."""
    out = 1.0 + (F64(sampling_eps) - 1.0) * _ramp(n)
    if n > 1:
        out[-1] = sampling_eps  # the end point exactly, as linspace gives it
    return out


def sigmas(t: np.ndarray, sigma_min: float, sigma_max: float) -> np.ndarray:
    """``sigma(t) = sigma_min * (sigma_max / sigma_min) ** t``."""
    return F64(sigma_min) * (F64(sigma_max) / F64(sigma_min)) ** np.asarray(t, dtype=F64)


def discrete_sigmas(n: int, sigma_min: float = 0.01, sigma_max: float = 1348.0) -> np.ndarray:
    """``exp(log sigma_min + (log sigma_max - log sigma_min) * j / (N - 1))``: geometric, increasing."""
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    out = np.exp(lo + (hi - lo) * _ramp(n))
    out[0] = sigma_min
    if n > 1:
        out[-1] = sigma_max
    return out


def index_of(t: Any, num_timesteps: int, dtype: Any = None) -> np.ndarray:
    """``floor(t * (M - 1))`` per element, as integers, with the product taken in ``t``'s dtype (``dtype``;
    float64 when ``None``), as diffusers and the core do for timestep arrays. For a float32 ``t`` that rounded
    product matches the index of the unrounded grid time more often than the exact product of the rounded
    value does (which repeats a level at ``timesteps[1]`` of 2000)."""
    if dtype is not None and np.dtype(dtype) == np.float32:
        return np.floor(np.asarray(t, dtype=np.float32) * np.float32(num_timesteps - 1)).astype(np.int64)
    return np.floor(np.asarray(t, dtype=F64) * F64(num_timesteps - 1)).astype(np.int64)


def adjacent(discrete: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``discrete[j - 1]`` for ``j > 0`` and ``0`` for ``j == 0``."""
    j = np.asarray(j)
    below = discrete[np.maximum(j - 1, 0)]
    return np.where(j == 0, 0.0, below)


def _bcast(coef: np.ndarray, ndim: int) -> np.ndarray:
    coef = np.asarray(coef, dtype=F64)
    return coef if coef.ndim == 0 else coef.reshape((coef.shape[0],) + (1,) * (ndim - 1))


def g2(j: Any, sigma_min: float, sigma_max: float, num_levels: int) -> np.ndarray:
    """``sigma_j^2 - sigma_{j-1}^2`` (``sigma_{-1} = 0``), computed without cancellation:
    ``sigma_j^2 * (1 - r^-2) = -sigma_j^2 * expm1(-2 log r)`` with ``log r = log(sigma_max / sigma_min) / (N - 1)``."""
    j = np.asarray(j)
    sigma = discrete_sigmas(num_levels, sigma_min, sigma_max)[j]
    if num_levels == 1:
        return sigma * sigma
    log_r = (math.log(sigma_max) - math.log(sigma_min)) / (num_levels - 1)
    return np.where(j == 0, sigma * sigma, -(sigma * sigma) * math.expm1(-2.0 * log_r))


def condition_g2(j: Any, sigma_min: float, sigma_max: float, num_levels: int) -> np.ndarray:
    """``kappa = (sigma_j^2 + sigma_{j-1}^2) / (sigma_j^2 - sigma_{j-1}^2)``: how much ``sigma^2 - sigma_adj^2``
    amplifies a relative rounding of the levels (1 at ``j = 0``)."""
    j = np.asarray(j)
    if num_levels == 1:
        return np.ones(j.shape)
    log_r = (math.log(sigma_max) - math.log(sigma_min)) / (num_levels - 1)
    r2 = math.exp(-2.0 * log_r)
    return np.where(j == 0, 1.0, (1.0 + r2) / -math.expm1(-2.0 * log_r))


def step_pred(
    x: np.ndarray,
    score: np.ndarray,
    z: np.ndarray,
    t: Any,
    num_timesteps: int,
    sigma_min: float,
    sigma_max: float,
    num_levels: int,
    time_dtype: Any = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Reverse diffusion: ``j = floor(t (M-1))`` (the product in ``time_dtype``, see :func:`index_of`),
    ``g2 = sigma_j^2 - sigma_{j-1}^2``, ``mean = x + g2 * score``, ``prev = mean + sqrt(g2) * z``.

    Returns ``(prev, mean, terms)``: ``terms["prev"]``/``terms["mean"]`` are the per-element sums of the
    summands' magnitudes (the error scale), ``terms["g2"]`` the coefficients, ``terms["kappa"]`` their
    conditions and ``terms["level"]`` the levels used.
    """
    x, score, z = (np.asarray(a, dtype=F64) for a in (x, score, z))
    j = index_of(t, num_timesteps, time_dtype)
    coef = g2(j, sigma_min, sigma_max, num_levels)
    g2b = _bcast(coef, x.ndim)
    drift = g2b * score
    diffusion = np.sqrt(g2b) * z
    mean = x + drift
    prev = mean + diffusion
    terms = {
        "mean": np.abs(x) + np.abs(drift),
        "prev": np.abs(x) + np.abs(drift) + np.abs(diffusion),
        "g2": coef,
        "kappa": condition_g2(j, sigma_min, sigma_max, num_levels),
        "level": discrete_sigmas(num_levels, sigma_min, sigma_max)[j],
    }
    return prev, mean, terms


def example_norms(a: np.ndarray) -> np.ndarray:
    """Per-example L2 norms over all non-batch axes: shape ``(B,)``."""
    flat = np.asarray(a, dtype=F64).reshape(np.shape(a)[0], -1)
    return np.sqrt(np.sum(flat * flat, axis=1))


def corrector_step_size(score: np.ndarray, z: np.ndarray, snr: float, norm: str = "batch") -> Any:
    """``eps = 2 * (snr * ||z|| / ||score||)^2``: with batch means of per-example norms, one number for the
    batch (``norm="batch"``), or one per example, ``(B,)`` (``norm="example"``)."""
    gn, zn = example_norms(score), example_norms(z)
    if norm == "batch":
        gn, zn = np.mean(gn), np.mean(zn)
    ratio = F64(snr) * zn / gn
    return 2.0 * ratio * ratio if norm != "batch" else float(2.0 * ratio * ratio)


def step_correct(
    x: np.ndarray, score: np.ndarray, z: np.ndarray, snr: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Langevin: ``mean = x + eps * score``, ``prev = mean + sqrt(2 eps) * z`` with the snr rule for ``eps``."""
    x, score, z = (np.asarray(a, dtype=F64) for a in (x, score, z))
    eps = corrector_step_size(score, z, snr)
    drift = eps * score
    diffusion = math.sqrt(2.0 * eps) * z
    mean = x + drift
    prev = mean + diffusion
    terms = {"mean": np.abs(x) + np.abs(drift), "prev": np.abs(x) + np.abs(drift) + np.abs(diffusion), "eps": eps}
    return prev, mean, terms


def add_noise(x: np.ndarray, z: np.ndarray, idx: Any, discrete: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x + discrete[idx] * z``; returns ``(noisy, terms)``."""
    x, z = np.asarray(x, dtype=F64), np.asarray(z, dtype=F64)
    scaled = _bcast(discrete[np.asarray(idx)], x.ndim) * z
    return x + scaled, np.abs(x) + np.abs(scaled)


# ---------------------------------------------------------------------- the same formulas, by level table
# The tests' form: a ``levels`` table instead of (sigma_min, sigma_max, N), plain float64 values.
SIGMA_MIN, SIGMA_MAX = 0.01, 1348.0


def continuous_sigmas(times: np.ndarray, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    """:func:`sigmas` with diffusers' default levels."""
    return sigmas(times, sigma_min, sigma_max)


def level_index(t: Any, num_timesteps: int) -> np.ndarray:
    """:func:`index_of` in float64."""
    return index_of(t, num_timesteps)


def predictor_g2(t: Any, num_timesteps: int, levels: np.ndarray) -> np.ndarray:
    """``sigma_j^2 - sigma_{j-1}^2`` for ``j = floor(t (M - 1))``, from a level table."""
    j = level_index(t, num_timesteps)
    below = adjacent(levels, j)
    return levels[j] ** 2 - below**2


def predictor(x: Any, score: Any, z: Any, t: Any, num_timesteps: int, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(prev_sample, prev_sample_mean)`` of the reverse-diffusion predictor, from a level table."""
    x, score, z = (np.asarray(a, dtype=F64) for a in (x, score, z))
    g2b = _bcast(predictor_g2(t, num_timesteps, levels), x.ndim)
    mean = x + g2b * score
    return mean + np.sqrt(g2b) * z, mean


def corrector_eps(score: Any, z: Any, snr: float = 0.15, norm: str = "batch") -> Any:
    """:func:`corrector_step_size` with diffusers' default snr."""
    return corrector_step_size(score, z, snr, norm)


def corrector(x: Any, score: Any, z: Any, snr: float = 0.15, norm: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """``(prev_sample, prev_sample_mean)`` of the Langevin corrector, for either step-size rule."""
    x, score, z = (np.asarray(a, dtype=F64) for a in (x, score, z))
    eps = _bcast(corrector_step_size(score, z, snr, norm), x.ndim)
    mean = x + eps * score
    return mean + np.sqrt(2.0 * eps) * z, mean


def noised(x: Any, z: Any, idx: Any, levels: np.ndarray) -> np.ndarray:
    """``x + levels[idx] * z`` (the value of :func:`add_noise`)."""
    return add_noise(x, z, idx, levels)[0]


def term_scale(*terms: Any) -> float:
    """The largest magnitude among the terms summed into a result (the scale errors are measured against)."""
    return max(float(np.max(np.abs(np.asarray(t, dtype=F64)))) for t in terms)


# ---------------------------------------------------------------------- Song et al.'s PC pairs and the ODE
def pc_run(score: Any, x: np.ndarray, levels: Any, model_sigmas: Any, noises: Any, predictor: str, corrector: str,
           snr: float, correct_steps: int) -> np.ndarray:
    """Song et al.'s PC sampler (Alg. 2; ``sampling.py``'s predictors and correctors for the VE SDE) in float64:
    ``levels`` decreasing then the level below the last (0), ``model_sigmas`` ``sigma(t_i)``, ``noises`` an
    iterator of standard normals consumed in Song's order (correctors, then the predictor). Returns the last mean."""
    x = np.asarray(x, dtype=F64)
    n = len(levels) - 1
    log_ratio = math.log(levels[0]) - math.log(levels[n - 1])
    mean = x
    for i in range(n):
        level, below, told = float(levels[i]), float(levels[i + 1]), float(model_sigmas[i])
        for _ in range(correct_steps if corrector != "none" else 0):
            grad, z = score(x, np.full(x.shape[0], told)), next(noises)
            if corrector == "langevin":
                eps = corrector_step_size(grad, z, snr)
            else:  # annealed Langevin dynamics
                eps = 2.0 * (snr * told) ** 2
            mean = x + eps * grad
            x = mean + math.sqrt(2.0 * eps) * z
        if predictor == "none":
            mean = x
            continue
        grad, z = score(x, np.full(x.shape[0], told)), next(noises)
        drift = level * level - below * below
        if predictor == "reverse_diffusion":
            std = math.sqrt(drift)
        elif predictor == "ancestral":
            std = math.sqrt(below * below * drift / (level * level))
        else:  # Euler-Maruyama with Song's dt = -1/N
            g = told * math.sqrt(2.0 * log_ratio)
            drift, std = g * g / n, g * math.sqrt(1.0 / n)
        mean = x + drift * grad
        x = mean + std * z
    return mean


def flow_run(denoise: Any, x: np.ndarray, levels: Any, heun: bool) -> np.ndarray:
    """The probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma`` by Euler or Heun steps over ``levels``
    (decreasing, ending in 0: the last step is ``x <- D(x, sigma)``), float64."""
    x = np.asarray(x, dtype=F64)
    for level, below in zip(levels[:-1], levels[1:]):
        d = (x - denoise(x, level)) / level
        if below == 0:
            x = denoise(x, level)
        elif heun:
            trial = x + (below - level) * d
            x = x + (below - level) * 0.5 * (d + (trial - denoise(trial, below)) / below)
        else:
            x = x + (below - level) * d
    return x
