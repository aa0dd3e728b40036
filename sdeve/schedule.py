"""The VE noise schedule as pure functions of an array namespace.

Song et al. (2021), eq. (31) and Appendix C: ``sigma(t) = sigma_min * (sigma_max / sigma_min) ** t`` for
continuous ``t`` in ``[sampling_eps, 1]``, and ``N`` discrete levels spaced geometrically between ``sigma_min``
and ``sigma_max``. All noise levels are standard deviations in data units.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ._xp import Array, Namespace, array_namespace, index_dtype

__all__ = [
    "adjacent_sigmas",
    "check_num_steps",
    "continuous_sigmas",
    "discrete_sigmas",
    "timestep_index",
    "timesteps",
]


def check_num_steps(num_inference_steps: Any, name: str = "num_inference_steps") -> int:
    """Return ``num_inference_steps`` as an ``int >= 1``; raise ``TypeError``/``ValueError`` otherwise."""
    if isinstance(num_inference_steps, bool):
        raise TypeError(f"{name} must be an int >= 1, got {num_inference_steps!r}")
    try:
        steps = operator.index(num_inference_steps)
    except TypeError:
        if isinstance(num_inference_steps, float) and num_inference_steps.is_integer():
            steps = int(num_inference_steps)
        else:
            raise TypeError(
                f"{name} must be an int >= 1, got {type(num_inference_steps).__name__} {num_inference_steps!r}"
            ) from None
    if steps < 1:
        raise ValueError(f"{name} must be >= 1, got {steps}")
    return steps


def timesteps(
    num_inference_steps: int, sampling_eps: float, *, xp: Namespace, device: Any = None, dtype: Any = None
) -> Array:
    """Continuous timesteps ``linspace(1, sampling_eps, N)``: shape ``(N,)``, decreasing, dimensionless."""
    steps = check_num_steps(num_inference_steps)
    if not (0.0 < float(sampling_eps) < 1.0):
        raise ValueError(f"sampling_eps must lie in (0, 1), got {sampling_eps}")
    return xp.linspace(1.0, float(sampling_eps), steps, dtype=dtype, device=device)


def continuous_sigmas(timesteps: Array, sigma_min: float, sigma_max: float, *, xp: Namespace | None = None) -> Array:
    """``sigma(t) = sigma_min * (sigma_max / sigma_min) ** t`` elementwise: the noise level the model is given.

    Same shape, dtype and device as ``timesteps``. Computed as ``sigma_min * exp(t * log(ratio))``, which is
    the same function with one transcendental per element.
    """
    xp = array_namespace(timesteps) if xp is None else xp
    log_ratio = math.log(float(sigma_max) / float(sigma_min))
    return float(sigma_min) * xp.exp(timesteps * log_ratio)


def discrete_sigmas(
    num_levels: int, sigma_min: float, sigma_max: float, *, xp: Namespace, device: Any = None, dtype: Any = None
) -> Array:
    """Geometric noise levels ``exp(linspace(log sigma_min, log sigma_max, N))``: shape ``(N,)``, increasing.

    ``discrete_sigmas[0] == sigma_min`` and ``discrete_sigmas[N-1] == sigma_max`` (to rounding).
    """
    steps = check_num_steps(num_levels, "num_inference_steps")
    return xp.exp(xp.linspace(math.log(sigma_min), math.log(sigma_max), steps, dtype=dtype, device=device))


def adjacent_sigmas(discrete_sigmas: Array, index: Array | int, *, xp: Namespace | None = None) -> Array:
    """``discrete_sigmas[index - 1]``, and ``0`` where ``index == 0`` (the level below, for the predictor).

    ``index`` is an integer array (any shape) or a Python int; the result has its shape and the dtype of
    ``discrete_sigmas``. Never indexes at ``-1``: the gather is clamped before ``where`` picks the zero.
    """
    xp = array_namespace(discrete_sigmas) if xp is None else xp
    if isinstance(index, int):
        if index == 0:
            return xp.zeros_like(discrete_sigmas[0])  # not .device: Dask arrays have none
        return discrete_sigmas[index - 1]
    below = xp.take(discrete_sigmas, xp.maximum(index - 1, xp.zeros_like(index)), axis=0)
    return xp.where(index == 0, xp.zeros_like(below), below)


def timestep_index(t: Array, num_timesteps: int, *, xp: Namespace | None = None) -> Array:
    """The discrete level of continuous timestep ``t``: ``floor(t * (M - 1))``, clamped to ``[0, M - 1]``.

    ``t`` is a real array (any shape) in ``[0, 1]``; the product is taken in ``t``'s dtype, as diffusers does,
    so that an element of a float32 ``timesteps`` array maps to the same index here and there. The clamp only
    matters for values the caller could not validate (traced or on a device); it turns them into the nearest
    end of the schedule rather than an out-of-range gather; a NaN (which ``clip`` keeps, and whose cast to an
    integer is undefined: a wrapped-around gather on NumPy/Dask) maps to level 0.
    """
    xp = array_namespace(t) if xp is None else xp
    scaled = xp.floor(t * float(num_timesteps - 1))
    scaled = xp.clip(xp.where(xp.isnan(scaled), xp.zeros_like(scaled), scaled), 0.0, float(num_timesteps - 1))
    return xp.astype(scaled, index_dtype(xp, getattr(t, "device", None)))
