"""Pieces every sigma-space sampler shares: the denoiser, per-step tables, option checks, the fixed-step driver.

STAND-IN (delete when the lead's ``sdeve/samplers/_loop.py`` and ``_common.py`` are on main): ``SigmaTable``,
``denoiser`` and ``run_fixed`` follow the contract of /work/SPEC.md so that the samplers move over unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._xp import Array, Namespace, device_of

__all__ = ["Model", "SigmaTable", "Stepper", "check_float", "denoiser", "run_fixed"]

Model = Callable[[Array, Array], Array]
Carry = tuple[Array, ...]


class SigmaTable:
    """Per-step values computed on the host in float64 (``values``), handed out per step.

    ``at(i)`` is a Python float when ``i`` is a Python int (eager steps: no array is built), and a 0-d array
    of ``dtype`` on ``device`` gathered from the table when ``i`` is a 0-d integer array (a traced loop index:
    no host read). The array is built on first use and kept.
    """

    __slots__ = ("_array", "device", "dtype", "values", "xp")

    def __init__(self, values: Sequence[float], xp: Namespace, device: Any, dtype: Any) -> None:
        self.values = tuple(float(v) for v in values)
        self.xp = xp
        self.device = device
        self.dtype = dtype
        self._array: Array | None = None

    def __len__(self) -> int:
        return len(self.values)

    def at(self, i: Any) -> Any:
        """The value of step ``i``: a float for an int ``i``, else a 0-d array."""
        if isinstance(i, int):
            return self.values[i]
        xp = self.xp
        if self._array is None:
            self._array = xp.asarray(self.values, dtype=self.dtype, device=self.device)
        return xp.reshape(xp.take(self._array, xp.reshape(i, (1,)), axis=0), ())


class Stepper(Protocol):
    """A fixed-step sampler as state in, state out (/work/SPEC.md): ``carry[0]`` is the sample and
    ``carry[1]`` the last denoised estimate."""

    num_steps: int

    def init(self, x: Array) -> Carry: ...

    def step(self, model: Model, i: Any, carry: Carry, noise: Any, *, first: bool, last: bool) -> Carry: ...

    def output(self, carry: Carry) -> Array: ...


def denoiser(model: Model, x: Array, sigma: Any, *, xp: Namespace) -> Array:
    """``D(x, sigma) = x + sigma^2 * score(x, sigma)`` (Tweedie's formula; Karras et al. 2022, eq. (3)).

    ``x`` is ``(B, ...)``; ``sigma`` a Python float or a 0-d array, handed to the model as a ``(B,)`` array in
    ``x``'s namespace, device and dtype. Returns an array like ``x``.
    """
    batch = x.shape[0]
    if isinstance(sigma, float):
        levels = xp.full((batch,), sigma, dtype=x.dtype, device=device_of(x))
    else:
        levels = xp.astype(sigma, x.dtype) * xp.ones((batch,), dtype=x.dtype, device=device_of(x))
    score = model(x, levels)
    if tuple(getattr(score, "shape", ())) != tuple(x.shape):
        raise ValueError(
            f"model(x, sigma) must return the score with x's shape {tuple(x.shape)}, got "
            f"{type(score).__name__} of shape {tuple(getattr(score, 'shape', ()))}"
        )
    return x + (sigma * sigma) * score


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


def run_fixed(
    stepper: Stepper,
    model: Model,
    x: Array,
    noise: Any,
    *,
    backend: Any = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    sigmas: Sequence[float] = (),
    disable: bool | None = None,
) -> Array:
    """Run ``stepper`` over its steps. With a ``backend`` whose ``fori_loop`` compiles (JAX) and no callback
    or progress bar, the steps between the first and the last run in ``backend.fori_loop`` with the noise
    state in the carry; otherwise in Python, one step at a time (``i`` a Python int)."""
    n = stepper.num_steps
    carry = stepper.init(x)
    looped = backend is not None and callback is None and disable is not False and n > 2
    if not looped:
        steps: Any = range(n)
        if disable is False:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional, only for the bar

            steps = tqdm(steps)
        for i in steps:
            carry = stepper.step(model, i, carry, noise, first=i == 0, last=i == n - 1)
            if callback is not None:
                callback({"i": i, "sigma": sigmas[i] if sigmas else None,
                          "sigma_next": sigmas[i + 1] if sigmas else None, "x": carry[0], "denoised": carry[1]})
        return stepper.output(carry)

    def body(i: Any, state: tuple[Carry, Any]) -> tuple[Carry, Any]:
        inner, source = state
        draws = type(noise)(noise.backend, source)
        inner = stepper.step(model, i, inner, draws, first=False, last=False)
        return inner, draws.source

    carry = stepper.step(model, 0, carry, noise, first=True, last=False)
    carry, noise.source = backend.fori_loop(1, n - 1, body, (carry, noise.source))
    carry = stepper.step(model, n - 1, carry, noise, first=False, last=True)
    return stepper.output(carry)


class WhileSolver(Protocol):
    """An adaptive sampler as ``init``/``cond``/``body`` over explicit state (``carry[0]`` the sample)."""

    def init(self, x: Array) -> tuple[Array, ...]: ...

    def cond(self, carry: Any) -> Any: ...

    def body(self, model: Model, carry: Any, noise: Any) -> Any: ...


def run_while(solver: WhileSolver, model: Model, x: Array, noise: Any, *, backend: Any = None,
              callback: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """Iterate ``solver.body`` while ``solver.cond`` holds. With a ``backend`` (and no callback) through
    ``backend.while_loop`` with the noise state in the carry (one compiled loop on JAX); otherwise in Python,
    reading ``cond`` on the host once per iteration (the one read an adaptive loop needs)."""
    carry = solver.init(x)
    if backend is None or callback is not None:
        i = 0
        while bool(solver.cond(carry)):
            carry = solver.body(model, carry, noise)
            if callback is not None:
                callback({"i": i, "x": carry[0], "t": carry[2], "h": carry[3]})
            i += 1
        return carry

    def body(state: tuple[Any, Any]) -> tuple[Any, Any]:
        inner, source = state
        draws = type(noise)(noise.backend, source)
        return solver.body(model, inner, draws), draws.source

    carry, noise.source = backend.while_loop(lambda state: solver.cond(state[0]), body, (carry, noise.source))
    return carry
