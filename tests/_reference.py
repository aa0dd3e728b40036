"""An independent float64 NumPy reference of the VE SDE scheduler, written from the formulas of
``shared/REFERENCE.md`` (not from ``sdeve``), for the tests to compare every backend against.

Every function takes NumPy arrays (converted to float64 here) and returns float64 arrays.
"""

from __future__ import annotations

import math

import numpy as np

SIGMA_MIN = 0.01
SIGMA_MAX = 1348.0


def timesteps(n: int, eps: float = 1e-5) -> np.ndarray:
    """``linspace(1, eps, n)``."""
    return np.linspace(1.0, eps, n, dtype=np.float64)


def discrete_sigmas(n: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    """``exp(linspace(log sigma_min, log sigma_max, n))``."""
    return np.exp(np.linspace(math.log(sigma_min), math.log(sigma_max), n, dtype=np.float64))


def continuous_sigmas(times: np.ndarray, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    """``sigma_min * (sigma_max / sigma_min) ** t``."""
    return sigma_min * (sigma_max / sigma_min) ** np.asarray(times, dtype=np.float64)


def level_index(t: float | np.ndarray, num_timesteps: int) -> np.ndarray:
    """``floor(t * (M - 1))`` per element, as integers."""
    return np.floor(np.asarray(t, dtype=np.float64) * (num_timesteps - 1)).astype(np.int64)


def _bcast(coefficient: np.ndarray, ndim: int) -> np.ndarray:
    coefficient = np.asarray(coefficient, dtype=np.float64)
    if coefficient.ndim == 0:
        return coefficient
    return coefficient.reshape((-1,) + (1,) * (ndim - 1))


def predictor_g2(t: float | np.ndarray, num_timesteps: int, levels: np.ndarray) -> np.ndarray:
    """``sigma_j^2 - sigma_{j-1}^2`` (``sigma_{-1} = 0``) for ``j = floor(t * (M - 1))``."""
    j = level_index(t, num_timesteps)
    sigma = levels[j]
    below = np.where(j > 0, levels[np.maximum(j - 1, 0)], 0.0)
    return sigma**2 - below**2


def predictor(x, score, z, t, num_timesteps: int, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(prev_sample, prev_sample_mean)`` of the reverse-diffusion predictor."""
    x, score, z = (np.asarray(a, dtype=np.float64) for a in (x, score, z))
    g2 = _bcast(predictor_g2(t, num_timesteps, levels), x.ndim)
    mean = x + g2 * score
    return mean + np.sqrt(g2) * z, mean


def example_norms(a: np.ndarray) -> np.ndarray:
    """Per-example L2 norms over every axis but the first."""
    a = np.asarray(a, dtype=np.float64)
    return np.sqrt(np.sum(a.reshape(a.shape[0], -1) ** 2, axis=1))


def corrector_eps(score, z, snr: float = 0.15, norm: str = "batch") -> np.ndarray:
    """The Langevin step size: 0-d for ``norm="batch"`` (means of per-example norms), ``(B,)`` otherwise."""
    gn, zn = example_norms(score), example_norms(z)
    if norm == "batch":
        gn, zn = gn.mean(), zn.mean()
    return 2.0 * (snr * zn / gn) ** 2


def corrector(x, score, z, snr: float = 0.15, norm: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """``(prev_sample, prev_sample_mean)`` of the Langevin corrector."""
    x, score, z = (np.asarray(a, dtype=np.float64) for a in (x, score, z))
    eps = _bcast(corrector_eps(score, z, snr, norm), x.ndim)
    mean = x + eps * score
    return mean + np.sqrt(2.0 * eps) * z, mean


def add_noise(x, z, idx, levels: np.ndarray) -> np.ndarray:
    """``x + discrete_sigmas[idx] * z`` with ``idx`` an int or ``(B,)`` ints."""
    x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
    return x + _bcast(levels[np.asarray(idx)], x.ndim) * z


def term_scale(*terms: np.ndarray) -> float:
    """The largest magnitude among the terms summed into a result (the scale errors are measured against)."""
    return max(float(np.max(np.abs(np.asarray(t, dtype=np.float64)))) for t in terms)
