"""Gotta Go Fast (Jolicoeur-Martineau et al. 2021, Alg. 1): the adaptive-step SDE solver for the VE SDE.

In Song et al.'s time ``t`` in ``[0, 1]``, ``sigma(t) = sigma_min (sigma_max / sigma_min)^t`` and the reverse
SDE is ``dx = -g(t)^2 score dt + g(t) dw`` with ``g(t)^2 = d sigma^2 / dt = 2 sigma^2 log(sigma_max /
sigma_min)``. Each iteration, per example, from ``t`` to ``t - h`` with one draw ``z``:

    K1 = h g(t)^2 s(x, t) + sqrt(h) g(t) z,   x' = x + K1                      (Euler-Maruyama)
    K2 = h g(t-h)^2 s(x', t-h) + sqrt(h) g(t-h) z,   x'' = x + (K1 + K2) / 2   (improved Euler)
    E = || (x' - x'') / max(atol, rtol max(|x'|, |x'_prev|)) ||_2 / sqrt(D)

(per example, or over the batch with ``error_norm="batch"``) accepted when ``E <= 1`` (``x = x''``, ``x'_prev = x'``, ``t = t - h``); then
``h = min(t, safety h E^(-exponent))``. Every example has its own ``t`` and ``h``; the loop runs while any
example is short of ``t = 0``: two model evaluations per iteration, then one final step to 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .._xp import Array, Namespace, array_namespace, device_of, index_dtype
from ._fixed import Model, check_float, run_while
from .sigma_space import FINAL_STEPS, check_sigmas

__all__ = ["sample_adaptive_sde"]

Carry = tuple[Array, Array, Array, Array, Array]  # x, x'_prev, t (B,), h (B,), iterations (0-d)


class AdaptiveSde:
    """The Gotta Go Fast iteration (module docstring) as ``cond``/``body`` over explicit state."""

    def __init__(self, sigma_min: float, sigma_max: float, *, rtol: float, atol: float, h_init: float,
                 safety: float, exponent: float, max_steps: int, error_norm: str, xp: Namespace) -> None:
        self.sigma_min = sigma_min
        self.log_ratio = math.log(sigma_max) - math.log(sigma_min)
        self.rtol, self.atol, self.h_init = rtol, atol, h_init
        self.safety, self.exponent, self.max_steps = safety, exponent, max_steps
        self.per_example = error_norm == "example"
        self.xp = xp

    def init(self, x: Array) -> Carry:
        xp = self.xp
        batch = (x.shape[0],)
        ones = xp.ones(batch, dtype=x.dtype, device=device_of(x))
        steps = xp.asarray(0, dtype=index_dtype(xp, device_of(x)), device=device_of(x))
        return (x, x, ones, ones * self.h_init, steps)

    def cond(self, carry: Carry) -> Any:
        """Some example is short of ``t = 0``, and the iteration budget is not spent."""
        xp = self.xp
        return xp.logical_and(xp.any(carry[2] > 0), carry[4] < self.max_steps)

    def _increment(self, model: Model, x: Array, t: Array, h: Array, z: Array) -> Array:
        """``h g(t)^2 s(x, t) + sqrt(h) g(t) z`` per example (``t``, ``h``: ``(B,)``)."""
        xp = self.xp
        sigma = self.sigma_min * xp.exp(t * self.log_ratio)
        g2 = 2.0 * self.log_ratio * sigma * sigma
        score = model(x, sigma)
        return _rows(h * g2, x, xp) * score + _rows(xp.sqrt(h * g2), x, xp) * z

    def body(self, model: Model, carry: Carry, noise: Any) -> Carry:
        xp = self.xp
        x, x_prev, t, h, steps = carry
        z = noise(x)
        k1 = self._increment(model, x, t, h, z)
        x_euler = x + k1
        k2 = self._increment(model, x_euler, t - h, h, z)
        x_new = x + (k1 + k2) / 2
        scale = xp.clip(self.rtol * xp.maximum(xp.abs(x_euler), xp.abs(x_prev)), min=self.atol)
        ratio = xp.reshape((k2 - k1) / (2 * scale), (x.shape[0], -1))
        if self.per_example:
            error = xp.sqrt(xp.mean(ratio * ratio, axis=1))
        else:
            error = xp.sqrt(xp.mean(ratio * ratio)) * xp.ones((x.shape[0],), dtype=x.dtype, device=device_of(x))
        accept = error <= 1.0
        x = xp.where(_rows(accept, x, xp), x_new, x)
        x_prev = xp.where(_rows(accept, x, xp), x_euler, x_prev)
        t = xp.where(accept, xp.clip(t - h, min=0.0), t)
        grown = self.safety * h * xp.clip(error, min=1e-10) ** (-self.exponent)
        return (x, x_prev, t, xp.minimum(t, grown), steps + 1)


def _rows(v: Array, like: Array, xp: Namespace) -> Array:
    """A ``(B,)`` array shaped to broadcast against ``like`` ``(B, ...)``."""
    return xp.reshape(v, (like.shape[0],) + (1,) * (like.ndim - 1))


ERROR_NORMS = ("example", "batch")


def _options(rtol: Any, atol: Any, h_init: Any, safety: Any, exponent: Any, max_steps: Any,
             error_norm: Any) -> dict[str, Any]:
    if error_norm not in ERROR_NORMS:
        raise ValueError(f"error_norm must be one of {ERROR_NORMS}, got {error_norm!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise TypeError(f"max_steps must be an int >= 1, got {max_steps!r}")
    checked = {"rtol": check_float("rtol", rtol, inclusive=False), "atol": check_float("atol", atol, inclusive=False),
               "h_init": check_float("h_init", h_init, inclusive=False),
               "safety": check_float("safety", safety, inclusive=False),
               "exponent": check_float("exponent", exponent, inclusive=False), "max_steps": max_steps,
               "error_norm": error_norm}
    if not checked["h_init"] <= 1.0 or not checked["safety"] <= 1.0:
        raise ValueError(f"h_init and safety must lie in (0, 1], got h_init={h_init!r}, safety={safety!r}")
    return checked


def sample_adaptive_sde(model: Model, x: Array, sigmas: Any, *, noise: Any = None,
                        callback: Callable[[dict[str, Any]], Any] | None = None, disable: bool | None = None,
                        backend: Any = None, rtol: float = 0.05, atol: float = 0.0039, h_init: float = 0.01,
                        safety: float = 0.9, exponent: float = 0.9, max_steps: int = 10_000,
                        error_norm: str = "example", final_step: str = "denoise", return_info: bool = False,
                        xp: Namespace | None = None) -> Array | tuple[Array, dict[str, Array]]:
    """Sample with Gotta Go Fast (Jolicoeur-Martineau et al. 2021, Alg. 1; module docstring).

    Parameters
    ----------
    model, x, noise, callback, disable, backend, xp
        As :func:`sdeve.samplers.sigma_space.sample_euler`; ``x`` ``(B, ...)`` starts at ``sigmas[0]``.
        The callback gets ``i``, ``x``, ``t`` ``(B,)`` and ``h`` ``(B,)`` after every iteration.
    sigmas
        Only its first level (``sigma_max``) and its smallest positive one (``sigma_min``) are used.
    rtol, atol
        The mixed tolerance ``max(atol, rtol max(|x'|, |x'_prev|))`` (paper: ``atol = 0.0039`` for VE,
        ``rtol`` 0.01-0.1).
    h_init, safety, exponent
        First step (in ``t``), and the step-size controller's safety factor and exponent (0.01, 0.9, 0.9).
    error_norm
        ``"example"`` (the paper's: each example its own ``E``, ``t`` and ``h``) or ``"batch"`` (one ``E`` over
        the whole batch, as k-diffusion's ``dpm_adaptive``). Accepting or rejecting a step by an error that
        contains the step's own noise selects the noise: where an example has few values (2-D, 16-D points)
        the per-example rule is biased and only the batch rule converges; for images the two agree.
    max_steps
        At most this many iterations (``info["done"]`` says whether every example reached ``t = 0``).
    final_step
        ``"denoise"`` (the paper's: ``x + sigma_min^2 s``) or ``"trapezoid"`` (``x + sigma_min^2 s / 2``).
    return_info
        Also return ``{"nfe", "steps", "done"}`` as 0-d arrays (no host read here).
    """
    xp = array_namespace(x) if xp is None else xp
    levels = check_sigmas(sigmas)
    if final_step not in FINAL_STEPS:
        raise ValueError(f"final_step must be one of {FINAL_STEPS}, got {final_step!r}")
    if noise is None:
        raise TypeError("adaptive_sde draws noise: pass noise= (a noise source, noise(like) -> normals like `like`)")
    sigma_min = min(v for v in levels if v > 0)
    solver = AdaptiveSde(sigma_min, levels[0], xp=xp, **_options(rtol, atol, h_init, safety, exponent, max_steps, error_norm))
    carry = run_while(solver, model, x, noise, backend=backend, callback=callback)
    out = _finish(model, carry[0], sigma_min, final_step, xp)
    if not return_info:
        return out
    done = xp.logical_not(xp.any(carry[2] > 0))
    return out, {"nfe": 2 * carry[4] + 1, "steps": carry[4], "done": done}


def _finish(model: Model, x: Array, sigma: float, final_step: str, xp: Namespace) -> Array:
    """The step from ``sigma_min`` to 0: ``x + w sigma^2 s(x, sigma)``, ``w = 1`` (denoise) or ``1/2``."""
    levels = xp.full((x.shape[0],), sigma, dtype=x.dtype, device=device_of(x))
    weight = 1.0 if final_step == "denoise" else 0.5
    return x + (weight * sigma * sigma) * model(x, levels)
