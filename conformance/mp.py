"""The reference against an independent high-precision evaluation (mpmath, 50 digits) at a few points.

The float64 reference (:mod:`conformance.reference`) is what every backend is measured against; this module
measures the reference itself, so that it is not merely consistent with itself. Each function returns the
maximum relative error of the float64 reference against the 50-digit value, elementwise, with each error
taken relative to the magnitude of the terms that were summed (the same scale the backend checks use).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import reference as ref

__all__ = ["POINTS", "mp_errors"]

# (sigma_min, sigma_max, N, sampling_eps, snr): the ends of the ranges the suite covers, and the defaults.
POINTS: tuple[tuple[float, float, int, float, float], ...] = (
    (0.01, 1348.0, 2000, 1e-5, 0.15),
    (1e-4, 1e4, 10_000, 1e-3, 0.3),
    (1.0, 10.0, 2, 0.5, 0.05),
    (1e-4, 1.0, 7, 1e-5, 1.0),
)


def _mp() -> Any:
    import mpmath

    mpmath.mp.dps = 50
    return mpmath


def _rel(values: np.ndarray, exact: list[Any], scale: list[Any]) -> float:
    mpmath = _mp()
    worst = mpmath.mpf(0)
    for value, e, s in zip(values.ravel().tolist(), exact, scale):
        worst = max(worst, abs(mpmath.mpf(value) - e) / abs(s))
    return float(worst)


def schedule_errors(sigma_min: float, sigma_max: float, n: int, eps: float) -> dict[str, float]:
    """Relative errors of the reference's ``timesteps``, ``sigmas`` and ``discrete_sigmas``."""
    mpmath = _mp()
    lo, hi = mpmath.log(mpmath.mpf(sigma_min)), mpmath.log(mpmath.mpf(sigma_max))
    ramp = [mpmath.mpf(k) / (n - 1) if n > 1 else mpmath.mpf(0) for k in range(n)]
    # Every element for small N, a spread of them for large N (the evaluation is slow in Python).
    picks = sorted(set(np.linspace(0, n - 1, min(n, 64)).astype(int).tolist()))
    t_exact = [1 + (mpmath.mpf(eps) - 1) * ramp[k] for k in picks]
    d_exact = [mpmath.exp(lo + (hi - lo) * ramp[k]) for k in picks]
    t_ref = ref.timesteps(n, eps)[picks]
    # sigma(t) at the reference's own (float64) timesteps: isolates the error of the sigma formula.
    s_exact = [mpmath.mpf(sigma_min) * (mpmath.mpf(sigma_max) / mpmath.mpf(sigma_min)) ** mpmath.mpf(t) for t in t_ref.tolist()]
    return {
        "timesteps": _rel(t_ref, t_exact, [1] * len(t_exact)),  # absolute: t lies in [eps, 1]
        "sigmas": _rel(ref.sigmas(t_ref, sigma_min, sigma_max), s_exact, s_exact),
        "discrete_sigmas": _rel(ref.discrete_sigmas(n, sigma_min, sigma_max)[picks], d_exact, d_exact),
    }


def update_errors(sigma_min: float, sigma_max: float, n: int, eps: float, snr: float, seed: int = 0) -> dict[str, float]:
    """Relative errors of the reference's ``step_pred`` (both outputs), ``step_correct`` and ``add_noise`` on
    a small random batch, each against the same formula evaluated in mpmath from the same float64 inputs."""
    mpmath = _mp()
    rng = np.random.default_rng(seed)
    shape = (3, 2, 2)
    x, score, z = (rng.standard_normal(shape) for _ in range(3))
    lo, hi = mpmath.log(mpmath.mpf(sigma_min)), mpmath.log(mpmath.mpf(sigma_max))

    def level(j: int) -> Any:
        return mpmath.exp(lo + (hi - lo) * (mpmath.mpf(j) / (n - 1) if n > 1 else 0))

    t_ref = ref.timesteps(n, eps)
    i = n // 3
    discrete = ref.discrete_sigmas(n, sigma_min, sigma_max)
    prev, mean, _ = ref.step_pred(x, score, z, t_ref[i], n, sigma_min, sigma_max, n)
    j = int(mpmath.floor(mpmath.mpf(float(t_ref[i])) * (n - 1)))
    g2 = level(j) ** 2 - (level(j - 1) ** 2 if j > 0 else 0)
    flat = [(mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(c)) for a, b, c in zip(x.ravel(), score.ravel(), z.ravel())]
    mean_exact = [a + g2 * b for a, b, _ in flat]
    prev_exact = [a + g2 * b + mpmath.sqrt(g2) * c for a, b, c in flat]
    pred_scale = [abs(a) + abs(g2 * b) + abs(mpmath.sqrt(g2) * c) for a, b, c in flat]

    def norms(a: np.ndarray) -> list[Any]:
        return [mpmath.sqrt(mpmath.fsum(mpmath.mpf(v) ** 2 for v in row)) for row in a.reshape(a.shape[0], -1)]

    step = 2 * (mpmath.mpf(snr) * mpmath.fsum(norms(z)) / mpmath.fsum(norms(score))) ** 2
    corr_exact = [a + step * b + mpmath.sqrt(2 * step) * c for a, b, c in flat]
    corr_scale = [abs(a) + abs(step * b) + abs(mpmath.sqrt(2 * step) * c) for a, b, c in flat]
    corr, _, _ = ref.step_correct(x, score, z, snr)

    idx = np.array([0, n // 2, n - 1])
    noisy, _ = ref.add_noise(x, z, idx, discrete)
    per = int(np.prod(shape[1:]))
    noisy_exact, noisy_scale = [], []
    for k, (a, _, c) in enumerate(flat):
        s = level(int(idx[k // per]))
        noisy_exact.append(a + s * c)
        noisy_scale.append(abs(a) + abs(s * c))
    return {
        "step_pred.prev_sample": _rel(prev, prev_exact, pred_scale),
        "step_pred.prev_sample_mean": _rel(mean, mean_exact, pred_scale),
        "step_correct": _rel(corr, corr_exact, corr_scale),
        "add_noise": _rel(noisy, noisy_exact, noisy_scale),
    }


def mp_errors() -> list[tuple[str, str, float, float]]:
    """``(point, quantity, relative error, tolerance)`` for every point of :data:`POINTS`.

    The tolerance is float64's, with the condition ``2 (1 + max |log sigma|)`` of levels computed as
    ``exp`` of a rounded logarithm and then squared (see :mod:`conformance.tolerances`).
    """
    from .tolerances import rtol_for

    rows = []
    for sigma_min, sigma_max, n, eps, snr in POINTS:
        label = f"smin={sigma_min:g},smax={sigma_max:g},N={n},eps={eps:g}"
        condition = 2.0 * (1.0 + max(abs(math.log(sigma_min)), abs(math.log(sigma_max))))
        tol = rtol_for("float64", schedule_dtype="float64", condition=condition)
        errors = {**schedule_errors(sigma_min, sigma_max, n, eps), **update_errors(sigma_min, sigma_max, n, eps, snr)}
        rows.extend((label, name, err, tol) for name, err in errors.items())
    return rows
