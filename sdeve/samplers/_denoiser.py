"""What the sigma-space samplers share: the denoiser of a score model, and option checks."""

from __future__ import annotations

import math
from typing import Any

from .._xp import Array, Namespace, device_of
from ._loop import Model
from .pc import score

__all__ = ["check_float", "denoiser", "levels_like"]


def levels_like(x: Array, sigma: Any, *, xp: Namespace) -> Array:
    """The noise level ``sigma`` (a Python float or a 0-d array) as the ``(B,)`` array a model takes, in
    ``x``'s namespace, device and dtype."""
    batch = (x.shape[0],)
    if isinstance(sigma, float):
        return xp.full(batch, sigma, dtype=x.dtype, device=device_of(x))
    return xp.astype(sigma, x.dtype) * xp.ones(batch, dtype=x.dtype, device=device_of(x))


def denoiser(model: Model, x: Array, sigma: Any, *, xp: Namespace) -> Array:
    """``D(x, sigma) = x + sigma^2 score(x, sigma)`` (Tweedie's formula; Karras et al. 2022, eq. (3)).

    ``x`` is ``(B, ...)``; ``sigma`` a Python float or a 0-d array. Returns an array like ``x``. Taken as
    ``sigma (sigma s)``: ``sigma^2`` alone overflows half precision at large levels.
    """
    return x + sigma * (sigma * score(model, x, levels_like(x, sigma, xp=xp)))


def check_float(name: str, value: Any, *, low: float = 0.0, inclusive: bool = True, infinite: bool = False) -> float:
    """``value`` as a float ``>= low`` (``> low`` unless ``inclusive``), finite unless ``infinite``;
    ``TypeError`` for non-numbers (and bools), ``ValueError`` for values out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if math.isnan(out) or (math.isinf(out) and not infinite) or out < low or (out == low and not inclusive):
        bound = f">= {low}" if inclusive else f"> {low}"
        raise ValueError(f"{name} must be {'' if infinite else 'finite and '}{bound}, got {value!r}")
    return out
