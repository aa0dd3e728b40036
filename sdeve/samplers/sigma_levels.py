"""Noise levels for the sigma-space samplers, built on the host in float64 as Python floats (k-diffusion's
convention: decreasing, ending in 0): Karras et al.'s, Song et al.'s geometric, k-diffusion's polyexponential,
and a start far above ``sigma_max`` (``sigma_start``) that takes the prior mismatch away for one evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._denoiser import check_float

__all__ = ["SCHEDULES", "build_sigmas", "check_sigmas", "exponential_sigmas", "geometric_sigmas", "karras_sigmas"]


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
