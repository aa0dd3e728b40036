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

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from .._xp import Array, Namespace, array_namespace, device_of, index_dtype
from ..backends import backend_for
from ..protocols import Backend, NoiseSource
from ._denoiser import check_float, levels_like
from ._loop import Model, static_field
from ._run import Run
from .pc import score
from .sigma_levels import check_sigmas
from .sigma_space import FINAL_STEPS, run_levels

__all__ = ["ERROR_NORMS", "OPTIONS", "AdaptiveSde", "run_adaptive_sde", "sample_adaptive_sde"]

Carry = tuple[Array, Array, Array, Array, Array]  # x, x'_prev, t (B,), h (B,), iterations (0-d)
ERROR_NORMS = ("example", "batch")
OPTIONS = ("rtol", "atol", "h_init", "safety", "exponent", "max_steps", "error_norm", "final_step")


@dataclasses.dataclass(frozen=True)
class AdaptiveSde:
    """The Gotta Go Fast iteration (module docstring) as ``init``/``cond``/``body``/``finish`` over explicit
    state; every field is configuration (a compiled program is keyed on it)."""

    sigma_min: float = static_field()
    log_ratio: float = static_field()
    rtol: float = static_field(default=0.05)
    atol: float = static_field(default=0.0039)
    h_init: float = static_field(default=0.01)
    safety: float = static_field(default=0.9)
    exponent: float = static_field(default=0.9)
    max_steps: int = static_field(default=10_000)
    per_example: bool = static_field(default=True)
    trapezoid: bool = static_field(default=False)
    xp: Namespace = static_field(default=None)

    @classmethod
    def build(cls, sigmas: Any, *, xp: Namespace, **options: Any) -> AdaptiveSde:
        """The solver from ``sigma_max = sigmas[0]`` to the smallest positive level, with checked options."""
        levels = check_sigmas(sigmas)
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"adaptive_sde got unexpected options {unknown}; it takes: {', '.join(OPTIONS)}")
        low = min(v for v in levels if v > 0)
        return cls(low, math.log(levels[0]) - math.log(low), xp=xp, **_checked(options))

    def init(self, x: Array) -> Carry:
        xp = self.xp
        ones = xp.ones((x.shape[0],), dtype=x.dtype, device=device_of(x))
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
        return _rows(h * g2, x, xp) * score(model, x, sigma) + _rows(xp.sqrt(h * g2), x, xp) * z

    def _error(self, k1: Array, k2: Array, x_euler: Array, x_prev: Array) -> Array:
        """``E`` per example ``(B,)``: the scaled RMS of ``(K2 - K1) / 2`` (one value for the batch unless
        ``per_example``)."""
        xp = self.xp
        scale = xp.clip(self.rtol * xp.maximum(xp.abs(x_euler), xp.abs(x_prev)), min=self.atol)
        ratio = xp.reshape((k2 - k1) / (2 * scale), (k1.shape[0], -1))
        if self.per_example:
            return xp.sqrt(xp.mean(ratio * ratio, axis=1))
        return xp.sqrt(xp.mean(ratio * ratio)) * xp.ones((k1.shape[0],), dtype=k1.dtype, device=device_of(k1))

    def body(self, model: Model, carry: Carry, noise: NoiseSource) -> Carry:
        xp = self.xp
        x, x_prev, t, h, steps = carry
        z = noise(x)
        k1 = self._increment(model, x, t, h, z)
        x_euler = x + k1
        k2 = self._increment(model, x_euler, t - h, h, z)
        error = self._error(k1, k2, x_euler, x_prev)
        accept = error <= 1.0
        rows = _rows(accept, x, xp)
        x, x_prev = xp.where(rows, x + (k1 + k2) / 2, x), xp.where(rows, x_euler, x_prev)
        t = xp.where(accept, xp.clip(t - h, min=0.0), t)
        grown = self.safety * h * xp.clip(error, min=1e-10) ** (-self.exponent)
        return (x, x_prev, t, xp.minimum(t, grown), steps + 1)

    def finish(self, model: Model, carry: Carry) -> Array:
        """The step from ``sigma_min`` to 0: ``x + w sigma^2 s(x, sigma)``, ``w = 1`` (denoise) or ``1/2``."""
        x = carry[0]
        weight = 0.5 if self.trapezoid else 1.0
        return x + (weight * self.sigma_min**2) * score(model, x, levels_like(x, self.sigma_min, xp=self.xp))

    def info(self, carry: Carry) -> dict[str, Array]:
        """``nfe`` (two per iteration and the final step), ``steps`` and ``done``, as 0-d arrays."""
        xp = self.xp
        return {"nfe": 2 * carry[4] + 1, "steps": carry[4], "done": xp.logical_not(xp.any(carry[2] > 0))}


def _rows(v: Array, like: Array, xp: Namespace) -> Array:
    """A ``(B,)`` array shaped to broadcast against ``like`` ``(B, ...)``."""
    return xp.reshape(v, (like.shape[0],) + (1,) * (like.ndim - 1))


def _checked(options: dict[str, Any]) -> dict[str, Any]:
    max_steps = options.get("max_steps", 10_000)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise TypeError(f"max_steps must be an int >= 1, got {max_steps!r}")
    error_norm, final_step = options.get("error_norm", "example"), options.get("final_step", "denoise")
    if error_norm not in ERROR_NORMS:
        raise ValueError(f"error_norm must be one of {ERROR_NORMS}, got {error_norm!r}")
    if final_step not in FINAL_STEPS:
        raise ValueError(f"final_step must be one of {FINAL_STEPS}, got {final_step!r}")
    out: dict[str, Any] = {name: check_float(name, options[name], inclusive=False)
           for name in ("rtol", "atol", "h_init", "safety", "exponent") if name in options}
    if not out.get("h_init", 0.01) <= 1.0 or not out.get("safety", 0.9) <= 1.0:
        raise ValueError(f"h_init and safety must lie in (0, 1], got {options}")
    return {**out, "max_steps": max_steps, "per_example": error_norm == "example",
            "trapezoid": final_step == "trapezoid"}


# ---------------------------------------------------------------------- the loop
def _program(model: Model, dynamic: tuple[Any, ...], static: tuple[Any, ...]) -> tuple[Any, Any]:
    """The whole solve: ``backend.while_loop`` (``jax.lax.while_loop`` inside a compiled program), the noise
    state in the carry, then the final step."""
    solver, x, source = dynamic
    (backend,) = static

    def body(state: tuple[Any, Any]) -> tuple[Any, Any]:
        draws = NoiseSource(backend, state[1])
        return solver.body(model, state[0], draws), draws.source

    carry, source = backend.while_loop(lambda state: solver.cond(state[0]), body, (solver.init(x), source))
    return (solver.finish(model, carry), solver.info(carry)), source


def _python_loop(solver: AdaptiveSde, model: Model, x: Array, noise: Any, backend: Backend,
                 callback: Callable[[dict[str, Any]], Any] | None) -> tuple[Array, dict[str, Array]]:
    """Step by step, reading ``cond`` once per iteration; lazy engines settle every iteration."""
    carry = solver.init(x)
    i = 0
    while bool(solver.cond(carry)):
        carry = backend.settle(solver.body(model, carry, noise), carry)
        if callback is not None:
            callback({"i": i, "x": carry[0], "t": carry[2], "h": carry[3]})
        i += 1
    return solver.finish(model, carry), solver.info(carry)


def solve(solver: AdaptiveSde, model: Model, x: Array, noise: Any, *,
          callback: Callable[[dict[str, Any]], Any] | None = None, strict: bool = False) -> tuple[Array, dict[str, Array]]:
    """Run ``solver`` from ``x``: one compiled program where the backend compiles and ``noise`` is a
    :class:`~sdeve.protocols.NoiseSource` (and no callback), else :func:`_python_loop`."""
    if isinstance(noise, NoiseSource) and callback is None:
        out, noise.source = noise.backend.compile_program(_program, model, (solver, x, noise.source),
                                                          (noise.backend,), strict=strict)
        return out  # type: ignore[no-any-return]
    backend = noise.backend if isinstance(noise, NoiseSource) else backend_for(x)
    return _python_loop(solver, model, x, noise, backend, callback)


def sample_adaptive_sde(model: Model, x: Array, sigmas: Any, *, noise: Any,
                        callback: Callable[[dict[str, Any]], Any] | None = None, disable: bool | None = None,
                        rtol: float = 0.05, atol: float = 0.0039, h_init: float = 0.01, safety: float = 0.9,
                        exponent: float = 0.9, max_steps: int = 10_000, error_norm: str = "example",
                        final_step: str = "denoise", return_info: bool = False) -> Any:
    """Sample with Gotta Go Fast (Jolicoeur-Martineau et al. 2021, Alg. 1; module docstring).

    Parameters
    ----------
    model, x, noise, callback
        As :func:`sdeve.samplers.sigma_space.sample_euler`; ``x`` ``(B, ...)`` starts at ``sigmas[0]``.
        The callback gets ``i``, ``x``, ``t`` ``(B,)`` and ``h`` ``(B,)`` after every iteration.
    sigmas
        Only its first level (``sigma_max``) and its smallest positive one (``sigma_min``) are used.
    disable
        Accepted for k-diffusion's signature; there is no progress bar (the number of steps is not known).
    rtol, atol
        The mixed tolerance ``max(atol, rtol max(|x'|, |x'_prev|))`` (paper: ``atol = 0.0039`` for VE,
        ``rtol`` 0.01-0.1).
    h_init, safety, exponent
        First step (in ``t``), and the step-size controller's safety factor and exponent (0.01, 0.9, 0.9).
    max_steps
        At most this many iterations (``info["done"]`` says whether every example reached ``t = 0``).
    error_norm
        ``"example"`` (the paper's: each example its own ``E``, ``t`` and ``h``) or ``"batch"`` (one ``E`` over
        the whole batch, as k-diffusion's ``dpm_adaptive``). Accepting or rejecting a step by an error that
        contains the step's own noise selects the noise: where an example has few values (2-D, 16-D points)
        the per-example rule is biased and only the batch rule converges; for images the two agree.
    final_step
        ``"denoise"`` (the paper's: ``x + sigma_min^2 s``) or ``"trapezoid"`` (``x + sigma_min^2 s / 2``).
    return_info
        Also return ``{"nfe", "steps", "done"}`` as 0-d arrays (read nothing on the host here).
    """
    if getattr(x, "ndim", 0) < 1:
        raise ValueError(f"x must have a batch axis (shape (B, ...)), got shape {tuple(getattr(x, 'shape', ()))}")
    options = {"rtol": rtol, "atol": atol, "h_init": h_init, "safety": safety, "exponent": exponent,
               "max_steps": max_steps, "error_norm": error_norm, "final_step": final_step}
    solver = AdaptiveSde.build(sigmas, xp=array_namespace(x), **options)
    if noise is None:
        raise TypeError("adaptive_sde draws noise: pass noise= (a NoiseSource, or noise(like) -> normals like `like`)")
    out, info = solve(solver, model, x, noise, callback=callback)
    return (out, info) if return_info else out


def run_adaptive_sde(run: Run, **options: Any) -> Array:
    """Gotta Go Fast for :func:`sdeve.sample`: from the schedule's first level to its smallest positive one."""
    levels = run_levels(run, options)
    solver = AdaptiveSde.build(levels, xp=run.xp, **options)
    out, _ = solve(solver, run.model, run.start_sample(levels[0]), run.noise, callback=run.callback,
                   strict=run.strict)
    return out
