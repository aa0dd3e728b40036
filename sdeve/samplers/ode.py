"""The probability-flow ODE of the VE SDE (Song et al. 2021, Sec. 4.3, eq. (13); Appendix D).

For the VE SDE the ODE that shares the SDE's marginals is::

    dx/dt = -1/2 g(t)^2 s(x, sigma(t)) = -ln(sigma_max / sigma_min) sigma(t)^2 s(x, sigma(t)),
    sigma(t) = sigma_min (sigma_max / sigma_min)^t,

or, with the noise level as the variable, ``dx/dsigma = -sigma s(x, sigma) = (x - D(x, sigma)) / sigma`` with the
denoiser ``D(x, sigma) = x + sigma^2 s(x, sigma)``. Three solvers, one per ``method``:

- ``"rk45"`` (default, Song's choice): adaptive Dormand--Prince 5(4) in ``t``, the step-size controller of
  ``scipy.integrate.solve_ivp(method="RK45")`` (Hairer, Norsett & Wanner, Sec. II.4; the same initial step,
  error norm, safety factor and step limits), so the same tolerances give scipy's steps. The error norm and the
  accept/reject decision are arrays on the sample's device, chosen with ``where``; the loop is the backend's
  ``while_loop``: ``jax.lax.while_loop`` on JAX (the whole solve one compiled loop, no host read), a Python loop
  elsewhere, which reads ONE 0-d boolean per attempted step (on torch or CuPy on a GPU that read synchronises
  the device once per step: six model evaluations). The whole batch is one system (as Song passes it to scipy):
  one step size for the batch, from the RMS error over every value of every example.
- ``"euler"``, ``"heun"``: fixed steps in ``sigma`` on the levels the front end gives (k-diffusion's
  ``sample_euler`` / ``sample_heun``, Karras et al. 2022, Alg. 1); Heun's last step to ``sigma = 0`` is Euler's.

Song's final denoising step (``denoise``): from the last positive level ``sigma`` to 0, ``x <- D(x, sigma)``,
which is his reverse-diffusion predictor without noise. He evaluates the model at ``sigma(sampling_eps)`` and
multiplies by ``sigma_min^2`` (his discrete lowest level); here both are the same ``sigma`` (Tweedie's formula),
a relative difference of ``2 sampling_eps ln(sigma_max / sigma_min)`` in that last correction (2.4e-4 by default).

The module gets its namespace from the arrays it is handed and imports no framework.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .._xp import Array, Namespace, array_namespace, device_of, index_dtype, schedule_dtype
from ..backends import backend_for
from ..protocols import BackendBase, NoiseSource
from ..schedule import sigma_of_t, timesteps_host
from ._denoiser import denoiser
from ._loop import Carry, Table, run_fixed, static_field
from ._run import Run
from .pc import score

__all__ = [
    "METHODS",
    "FlowStepper",
    "Solution",
    "check_method",
    "check_sigmas",
    "check_tolerances",
    "denoiser",
    "finished",
    "flow_rhs",
    "integrate",
    "run_ode",
    "sample_ode",
    "solve_flow",
    "solve_rk45",
]

METHODS = ("rk45", "heun", "euler")

Model = Callable[[Array, Array], Array]
State = tuple[Array, ...]
Rhs = Callable[[Array, State], State]

# Dormand & Prince (1980), RK5(4)7FM: nodes C, stages A, 5th-order weights B, and E = B - B* (the 4th-order
# embedded weights), whose combination of the 7 stages (the last one at the new point, first-same-as-last)
# estimates the local error.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40)

# The step-size controller of scipy's RK45 (and of Hairer et al.): error exponent -1/(4 + 1), safety 0.9, the
# step changes by a factor in [0.2, 10], and never grows on the step right after a rejection.
_SAFETY, _MIN_FACTOR, _MAX_FACTOR, _EXPONENT = 0.9, 0.2, 10.0, -1 / 5
_EVALS_PER_ATTEMPT = 6  # stages 2..6 and the derivative at the new point (the first stage is the last one's)
DEFAULT_MAX_STEPS = 100_000


def check_tolerances(rtol: Any, atol: Any) -> tuple[float, float]:
    """``(rtol, atol)`` as floats; ``ValueError`` unless both are finite and ``> 0``."""
    out = []
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a real number > 0, got {type(value).__name__} {value!r}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        out.append(float(value))
    return out[0], out[1]


def check_method(method: Any) -> str:
    """``method`` lower-cased; ``ValueError`` naming :data:`METHODS` otherwise."""
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method.lower()


class Solution(NamedTuple):
    """The end of an adaptive solve (a named tuple: a pytree that ``jax.jit`` returns as it is).

    Attributes
    ----------
    y
        The state at ``t`` (a tuple of arrays, as given).
    t
        0-d, the time reached: ``t1`` on success.
    nfe
        0-d integer: evaluations of the right-hand side (2 for the initial step, 6 per attempted step).
    steps
        0-d integer: attempted steps, accepted and rejected.
    success
        0-d boolean: ``t1`` was reached (false after ``max_steps`` attempts, a step below the time resolution,
        or a non-finite error estimate).
    """

    y: State
    t: Array
    nfe: Array
    steps: Array
    success: Array


# ---------------------------------------------------------------------------------------------- primitives
def _cast(a: Array, dtype: Any, xp: Namespace) -> Array:
    return a if a.dtype == dtype else xp.astype(a, dtype)


def _weighted(h: Array, stages: Sequence[State], weights: Sequence[float], xp: Namespace) -> State:
    """``h * sum_j weights[j] * stages[j]``, component by component (zero weights skipped)."""
    out = []
    for i in range(len(stages[0])):
        acc = None
        for w, k in zip(weights, stages):
            if w != 0.0:
                acc = w * k[i] if acc is None else acc + w * k[i]
        assert acc is not None  # every row of the tableau has a non-zero weight
        out.append(_cast(h, acc.dtype, xp) * acc)
    return tuple(out)


def _add(y: State, dy: State) -> State:
    return tuple(a + b for a, b in zip(y, dy))


def _rms(parts: State, tdt: Any, xp: Namespace) -> Array:
    """The RMS over every element of every array of ``parts``, 0-d in ``tdt`` (scipy's ``norm``)."""
    total = None
    count = 0
    for p in parts:
        s = _cast(xp.sum(p * p), tdt, xp)
        total = s if total is None else total + s
        count += math.prod(int(d) for d in p.shape)
    assert total is not None
    return xp.sqrt(total / float(max(count, 1)))


def _scaled(parts: State, scale: State) -> State:
    return tuple(p / s for p, s in zip(parts, scale))


# ---------------------------------------------------------------------------------------------- RK45
def _initial_step(
    fun: Rhs, t0: Array, y0: State, f0: State, interval: float, direction: float, rtol: float, atol: float,
    xp: Namespace,
) -> Array:
    """scipy's ``select_initial_step`` (Hairer et al., Sec. II.4) with ``where`` for its branches: one evaluation."""
    tdt = t0.dtype
    scale = tuple(atol + xp.abs(y) * rtol for y in y0)
    d0, d1 = _rms(_scaled(y0, scale), tdt, xp), _rms(_scaled(f0, scale), tdt, xp)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = xp.where(small, xp.full_like(d0, 1e-6), 0.01 * d0 / xp.where(small, xp.ones_like(d1), d1))
    h0 = xp.minimum(h0, xp.full_like(h0, interval))
    f1 = fun(t0 + direction * h0, _add(y0, _weighted(direction * h0, [f0], [1.0], xp)))
    d2 = _rms(_scaled(tuple(b - a for a, b in zip(f0, f1)), scale), tdt, xp) / h0
    flat = (d1 <= 1e-15) & (d2 <= 1e-15)
    biggest = xp.maximum(d1, d2)
    h1 = xp.where(flat, xp.maximum(xp.full_like(h0, 1e-6), h0 * 1e-3),
                  (0.01 / xp.where(flat, xp.ones_like(biggest), biggest)) ** (1 / 5))
    return xp.minimum(xp.minimum(100 * h0, h1), xp.full_like(h0, interval))


def _dopri_step(fun: Rhs, t: Array, h: Array, y: State, f: State, xp: Namespace) -> tuple[State, State, State]:
    """One Dormand--Prince step of size ``h`` (signed): ``(y_new, f_new, error estimate)``."""
    stages: list[State] = [f]
    for s in range(1, 6):
        stages.append(fun(t + _C[s] * h, _add(y, _weighted(h, stages, _A[s], xp))))
    y_new = _add(y, _weighted(h, stages, _B, xp))
    f_new = fun(t + h, y_new)
    stages.append(f_new)
    return y_new, f_new, _weighted(h, stages, _E, xp)


def _step_factor(err: Array, accept: Array, rejected: Array, xp: Namespace) -> Array:
    """scipy's controller: grow by ``min(10, 0.9 err^-1/5)`` on acceptance (never after a rejection), shrink by
    ``max(0.2, 0.9 err^-1/5)`` on rejection; a zero error grows by 10."""
    positive = err > 0
    proposal = _SAFETY * xp.where(positive, err, xp.ones_like(err)) ** _EXPONENT
    grow = xp.where(positive, xp.minimum(proposal, xp.full_like(err, _MAX_FACTOR)), xp.full_like(err, _MAX_FACTOR))
    grow = xp.where(rejected, xp.minimum(grow, xp.ones_like(grow)), grow)
    shrink = xp.maximum(proposal, xp.full_like(err, _MIN_FACTOR))
    return xp.where(accept, grow, shrink)


def _attempt(fun: Rhs, carry: tuple[Any, ...], t1: float, direction: float, rtol: float, atol: float,
             xp: Namespace) -> tuple[Any, ...]:
    """One attempted step of the adaptive loop: everything decided on the device with ``where``."""
    t, h_abs, rejected, failed, nfe, steps, y, f = carry
    t_end = xp.full_like(t, t1)
    t_new = t + direction * h_abs
    t_new = xp.where(direction * (t_new - t_end) > 0, t_end, t_new)
    h = t_new - t
    y_new, f_new, error = _dopri_step(fun, t, h, y, f, xp)
    scale = tuple(atol + xp.maximum(xp.abs(a), xp.abs(b)) * rtol for a, b in zip(y, y_new))
    err = _rms(_scaled(error, scale), t.dtype, xp)
    accept = err < 1
    h_next = xp.abs(h) * _step_factor(err, accept, rejected, xp)
    resolution = 10 * xp.finfo(t.dtype).eps * xp.maximum(xp.abs(t), xp.full_like(t, xp.finfo(t.dtype).smallest_normal))
    failed = failed | ~xp.isfinite(err) | (h_next < resolution)
    y = tuple(xp.where(accept, b, a) for a, b in zip(y, y_new))
    f = tuple(xp.where(accept, b, a) for a, b in zip(f, f_new))
    return (xp.where(accept, t_new, t), h_next, ~accept, failed, nfe + _EVALS_PER_ATTEMPT, steps + 1, y, f)


def solve_rk45(
    fun: Rhs, y0: State, t0: float, t1: float, *, rtol: float = 1e-5, atol: float = 1e-5, backend: Any = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> Solution:
    """Integrate ``dy/dt = fun(t, y)`` from ``t0`` to ``t1`` with adaptive Dormand--Prince 5(4), as
    ``scipy.integrate.solve_ivp(method="RK45", rtol=rtol, atol=atol)`` does.

    Parameters
    ----------
    fun
        ``fun(t, y) -> dy/dt``: ``t`` a 0-d array (float64 where the namespace and device have it), ``y`` and the
        result tuples of arrays of fixed shapes and dtypes (one namespace and device).
    y0
        The initial state, a tuple of arrays; the error norm is the RMS over all their elements together.
    t0, t1
        Start and end times (Python floats; either order).
    rtol, atol
        Relative and absolute tolerance (> 0): a step is accepted when the RMS of
        ``error / (atol + rtol max(|y|, |y_new|))`` is below 1.
    backend
        Supplies ``while_loop`` (``jax.lax.while_loop`` on JAX) and ``settle``; ``None``: a Python loop.
    max_steps
        The most attempted steps before giving up (``Solution.success`` is then false).

    Returns
    -------
    Solution
        The state at ``t1`` with the evaluation count; ``nfe = 2 + 6 * steps``.
    """
    rtol, atol = check_tolerances(rtol, atol)
    xp = array_namespace(*y0)
    device = device_of(y0[0])
    tdt = schedule_dtype(xp, device)
    idt = index_dtype(xp, device)
    direction = 1.0 if t1 >= t0 else -1.0
    t = xp.asarray(float(t0), dtype=tdt, device=device)
    f0 = fun(t, y0)
    h0 = _initial_step(fun, t, y0, f0, abs(t1 - t0), direction, rtol, atol, xp)
    false = xp.asarray(False, device=device)
    carry = (t, h0, false, false, xp.asarray(2, dtype=idt, device=device), xp.asarray(0, dtype=idt, device=device),
             tuple(y0), f0)
    loops = _loops(backend)

    def cond(c: tuple[Any, ...]) -> Array:
        return (direction * (t1 - c[0]) > 0) & ~c[3] & (c[5] < max_steps)

    def body(c: tuple[Any, ...]) -> tuple[Any, ...]:
        out = _attempt(fun, c, t1, direction, rtol, atol, xp)
        settled = loops.settle((*out[:6], *out[6], *out[7]))  # lazy engines: keep each step's graph small
        n = len(out[6])
        return (*settled[:6], tuple(settled[6:6 + n]), tuple(settled[6 + n:]))

    t, _, _, _, nfe, steps, y, _ = loops.while_loop(cond, body, carry)
    success = ~(direction * (t1 - t) > 0)
    return Solution(tuple(y), t, nfe, steps, success)


def _loops(backend: Any) -> Any:
    return BackendBase() if backend is None else backend


# ---------------------------------------------------------------------------------------------- the flow
def flow_rhs(model: Model, sigma_min: float, log_ratio: float) -> Rhs:
    """The probability-flow ODE in Song's time, ``dx/dt = -log_ratio sigma(t)^2 model(x, sigma(t))`` with
    ``sigma(t) = sigma_min exp(t log_ratio)`` (eq. (13) with ``g^2 = 2 log_ratio sigma^2``), as a right-hand side
    for :func:`solve_rk45` on the state ``(x,)``; ``x`` of shape ``(B, ...)``, the model told ``sigma`` as ``(B,)``
    in ``x``'s dtype."""

    def fun(t: Array, y: State) -> State:
        (x,) = y
        return (drift(model, x, t, sigma_min, log_ratio)[0],)

    return fun


def noise_level(t: Array, sigma_min: float, log_ratio: float, x: Array, xp: Namespace) -> tuple[Array, Array]:
    """``(sigma(t) as (B,) in x's dtype, sigma(t) 0-d in t's dtype)`` for ``sigma(t) = sigma_min e^(t log_ratio)``."""
    sigma = sigma_min * xp.exp(t * log_ratio)
    batch = xp.ones((x.shape[0],), dtype=x.dtype, device=device_of(x))
    return _cast(sigma, x.dtype, xp) * batch, sigma


def drift(model: Model, x: Array, t: Array, sigma_min: float, log_ratio: float) -> tuple[Array, Array, Array]:
    """``(dx/dt, the score, -log_ratio sigma(t)^2 as 0-d in x's dtype)`` of the probability-flow ODE at ``t``."""
    xp = array_namespace(x)
    sigma_b, sigma = noise_level(t, sigma_min, log_ratio, x, xp)
    s = score(model, x, sigma_b)
    rate = _cast(-log_ratio * sigma * sigma, x.dtype, xp)
    return rate * s, s, rate


def integrate(
    model: Model, x: Array, sigma_from: float, sigma_to: float, *, sigma_min: float | None = None,
    sigma_max: float | None = None, rtol: float = 1e-5, atol: float = 1e-5, backend: Any = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> Solution:
    """Carry ``x`` along the probability-flow ODE from noise level ``sigma_from`` to ``sigma_to`` with
    :func:`solve_rk45`, in Song's time ``t = ln(sigma / sigma_min) / ln(sigma_max / sigma_min)``.

    ``sigma_min``/``sigma_max`` fix that time's origin and scale (the step-size controller's initial step
    depends on the scale); default the two ends of the solve. Returns the :class:`Solution` with ``y == (x,)``;
    :func:`solve_flow` is the same as one compiled program, checked.
    """
    lo = min(sigma_from, sigma_to) if sigma_min is None else float(sigma_min)
    hi = max(sigma_from, sigma_to) if sigma_max is None else float(sigma_max)
    if not (0 < lo < hi and sigma_from > 0 and sigma_to > 0):
        raise ValueError(f"noise levels must be > 0 with sigma_min < sigma_max, got {sigma_from}, {sigma_to}")
    log_ratio = math.log(hi / lo)
    t0, t1 = math.log(sigma_from / lo) / log_ratio, math.log(sigma_to / lo) / log_ratio
    return solve_rk45(flow_rhs(model, lo, log_ratio), (x,), t0, t1, rtol=rtol, atol=atol, backend=backend,
                      max_steps=max_steps)


def _flow_program(model: Model, dynamic: tuple[Array], static: tuple[Any, ...]) -> Solution:
    backend, ends, scale, rtol, atol, max_steps = static
    return integrate(model, dynamic[0], *ends, sigma_min=scale[0], sigma_max=scale[1], rtol=rtol, atol=atol,
                     backend=backend, max_steps=max_steps)


def solve_flow(
    model: Model, x: Array, sigma_from: float, sigma_to: float, *, backend: Any, sigma_min: float | None = None,
    sigma_max: float | None = None, rtol: float = 1e-5, atol: float = 1e-5, max_steps: int = DEFAULT_MAX_STEPS,
    strict: bool = False,
) -> tuple[Array, Solution]:
    """:func:`integrate` as one program the backend may compile (JAX: ``jax.jit`` around ``lax.while_loop``):
    ``(x at sigma_to, the solution)``; ``RuntimeError`` (or NaN where unreadable) when it stopped short."""
    static = (backend, (float(sigma_from), float(sigma_to)), (sigma_min, sigma_max), rtol, atol, max_steps)
    solution = backend.compile_program(_flow_program, model, (x,), static, strict=strict)
    return finished(solution, backend)[0], solution


def finished(solution: Solution, backend: Any) -> State:
    """The solution's state; ``RuntimeError`` when the solve stopped short and that can be read now, else
    (traced, lazy, on a device) NaN wherever it stopped short, never a silent partial result."""
    readable = getattr(backend, "readable", None)
    ok = solution.success
    if readable is None or readable(ok):
        if not bool(ok):
            raise RuntimeError(
                f"the ODE solve stopped at t = {float(solution.t):.6g} after {int(solution.steps)} steps "
                "(step size below the time resolution, a non-finite model output, or max_steps reached)"
            )
        return solution.y
    xp = array_namespace(*solution.y)
    return tuple(xp.where(ok, y, xp.full_like(y, math.nan)) for y in solution.y)


# ---------------------------------------------------------------------------------------------- fixed steps
@dataclasses.dataclass(frozen=True)
class FlowStepper:
    """Euler or Heun on the probability-flow ODE in ``sigma`` (k-diffusion's ``sample_euler``/``sample_heun``;
    Karras et al. 2022, Alg. 1) as a :class:`~sdeve.samplers._loop.Stepper`; the carry is ``(x, denoised)``.

    ``sigmas`` holds the ``num_steps + 1`` levels visited (decreasing, the last one 0 when denoising): a step
    to 0 is ``x <- D(x, sigma)`` whatever the method, Song's denoising step. ``constraint`` (inpainting,
    colorization: :mod:`sdeve.controllable`) is applied after every step at the level reached.
    """

    sigmas: Table
    constraint: Any
    num_steps: int = static_field()
    method: str = static_field(default="euler")
    ends_at_zero: bool = static_field(default=True)
    xp: Namespace = static_field(default=None)

    @classmethod
    def build(cls, levels: Sequence[float], *, xp: Namespace, device: Any, dtype: Any, method: str,
              constraint: Any = None) -> FlowStepper:
        """The stepper over host ``levels``, moved once to ``xp`` on ``device`` in the sample's ``dtype``."""
        table = Table.build(levels, xp=xp, device=device, dtype=dtype)
        return cls(table, constraint, num_steps=len(levels) - 1, method=method, ends_at_zero=levels[-1] == 0,
                   xp=xp)

    def init(self, x: Array) -> Carry:
        return (x, x)

    def output(self, carry: Carry) -> Array:
        return carry[0]

    def step(self, model: Model, i: Any, carry: Carry, noise: NoiseSource, *, first: bool, last: bool) -> Carry:
        xp = self.xp
        x = carry[0]
        sigma, sigma_next = self.sigmas.at(i, xp=xp), self.sigmas.at(i + 1, xp=xp)
        denoised = denoiser(model, x, sigma, xp=xp)
        if last and self.ends_at_zero:
            x = denoised
        elif self.method == "euler":
            x = x + (sigma_next / sigma - 1) * (x - denoised)
        else:
            x = _heun(model, x, denoised, sigma, sigma_next, xp=xp)
        if self.constraint is not None:
            x, _ = self.constraint.apply(x, x, sigma_next, noise, xp=xp)
        return x, denoised

    def report(self, i: int, carry: Carry) -> dict[str, Any]:
        host = self.sigmas.host
        sigma, sigma_next = (host[i], host[i + 1]) if host is not None else (math.nan, math.nan)
        return {"i": i, "sigma": sigma, "sigma_next": sigma_next, "sample": carry[0], "sample_mean": carry[1],
                "x": carry[0], "denoised": carry[1]}

    @property
    def draws_per_step(self) -> int:
        """Noise arrays per step: one for the constraint, none without."""
        return 0 if self.constraint is None else 1


def _heun(model: Model, x: Array, denoised: Array, sigma: Any, sigma_next: Any, *, xp: Namespace) -> Array:
    """Heun's step: Euler to ``sigma_next``, then the trapezoidal rule with the slope there (2 evaluations)."""
    d = (x - denoised) / sigma
    euler = x + (sigma_next - sigma) * d
    d_next = (euler - denoiser(model, euler, sigma_next, xp=xp)) / sigma_next
    return x + (0.5 * (sigma_next - sigma)) * (d + d_next)


# ---------------------------------------------------------------------------------------------- the sampler
def check_sigmas(sigmas: Any) -> list[float]:
    """``sigmas`` as a list of Python floats: at least two, finite, strictly decreasing, all > 0 but the last
    (which may be 0); ``ValueError`` saying what was expected otherwise."""
    try:
        values = [float(s) for s in sigmas]
    except TypeError:
        raise TypeError(f"sigmas must be a sequence of noise levels, got {type(sigmas).__name__}") from None
    if len(values) < 2:
        raise ValueError(f"sigmas must hold at least two noise levels, got {len(values)}")
    ok = all(math.isfinite(s) for s in values) and all(s > 0 for s in values[:-1]) and values[-1] >= 0
    if not ok or any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError(f"sigmas must be finite, > 0 (the last may be 0) and strictly decreasing, got {values}")
    return values


def sample_ode(
    model: Model, x: Array, sigmas: Sequence[float], *, noise: NoiseSource | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None, disable: bool | None = None, backend: Any = None,
    method: str = "rk45", rtol: float = 1e-5, atol: float = 1e-5, denoise: bool = True, constraint: Any = None,
    strict: bool = False,
) -> Array:
    """Sample by solving the probability-flow ODE from ``sigmas[0]`` down (Song et al. 2021, Sec. 4.3).

    Parameters
    ----------
    model
        ``model(x, sigma) -> grad_x log p_sigma(x)``; ``sigma`` a ``(B,)`` array in ``x``'s dtype.
    x
        ``(B, ...)``: the start, a draw of the marginal at ``sigmas[0]`` (``sigmas[0] z``, or SDEdit's start).
    sigmas
        Decreasing noise levels (Python floats, data units), the last one 0 (k-diffusion's convention):
        ``"euler"``/``"heun"`` step through each; ``"rk45"`` solves from ``sigmas[0]`` to the last positive level
        with its own steps. The step from the last positive level to 0 is Song's denoising step.
    noise
        The noise source (only a ``constraint`` draws); default one from ``backend`` with fresh entropy.
    callback, disable
        ``callback(dict)`` after each fixed step (keys ``i``, ``sigma``, ``sigma_next``, ``x``, ``denoised``,
        also as ``sample``/``sample_mean``); with ``"rk45"`` once after the solve and once after the denoising
        step. ``disable=False`` shows a progress bar over fixed steps.
    backend
        The adapter of ``x``'s library (default: found from ``x``): ``while_loop`` and compiled programs.
    method, rtol, atol
        The solver (:data:`METHODS`) and, for ``"rk45"``, its tolerances (Song's defaults, 1e-5).
    denoise
        Take the final step to ``sigma = 0`` (when ``sigmas[-1] == 0``): ``x <- D(x, sigma)``.
    constraint
        Inpainting or colorization (:mod:`sdeve.controllable`): ``constraint.apply`` after every fixed step; not
        with ``"rk45"``, whose error control cannot integrate a jump (``ValueError``).
    strict
        Raise ``TypeError`` when the backend cannot compile the run (an untraceable model), rather than step.

    Returns
    -------
    Array of ``x``'s shape, namespace, device and dtype.
    """
    method = check_method(method)
    rtol, atol = check_tolerances(rtol, atol)
    levels = check_sigmas(sigmas)
    if levels[-1] == 0 and not denoise:
        levels = levels[:-1]
    if backend is None:
        backend = noise.backend if noise is not None else backend_for(x)
    if method == "rk45":
        if constraint is not None:
            raise ValueError("constraints (inpainting, colorization) need fixed steps: method='euler' or 'heun'")
        return _sample_adaptive(model, x, levels, rtol, atol, backend, callback, strict)
    stepper = FlowStepper.build(levels, xp=array_namespace(x), device=device_of(x), dtype=x.dtype, method=method,
                                constraint=constraint)
    source = NoiseSource(backend, backend.make_generator(None, device_of(x))) if noise is None else noise
    return run_fixed(stepper, model, x, noise=source, callback=callback, disable=disable, strict=strict)


def _sample_adaptive(model: Model, x: Array, levels: list[float], rtol: float, atol: float, backend: Any,
                     callback: Callable[[dict[str, Any]], Any] | None, strict: bool) -> Array:
    """RK45 from ``levels[0]`` to the last positive level, then the denoising step when ``levels`` end in 0."""
    positive = levels[:-1] if levels[-1] == 0 else levels
    if len(positive) > 1:
        x, _ = solve_flow(model, x, positive[0], positive[-1], backend=backend, rtol=rtol, atol=atol, strict=strict)
        if callback is not None:
            callback({"i": 0, "sigma": positive[0], "sigma_next": positive[-1], "x": x, "sample": x})
    if levels[-1] == 0:
        x = denoiser(model, x, positive[-1], xp=array_namespace(x))
        if callback is not None:
            callback({"i": 1, "sigma": positive[-1], "sigma_next": 0.0, "x": x, "denoised": x, "sample": x,
                      "sample_mean": x})
    return x


def run_ode(run: Run, *, method: str = "rk45", rtol: float = 1e-5, atol: float = 1e-5) -> Array:
    """``sdeve.sample(sampler="ode")``: the probability-flow ODE on Song's time grid.

    The levels are ``sigma(t_i)`` for ``t_i = linspace(1, sampling_eps, N)``, then 0 when ``run.denoise``:
    ``"euler"`` takes ``N - 1`` ODE steps and the denoising step (``N`` model evaluations), ``"heun"`` the same
    steps with ``2 N - 1`` evaluations, and ``"rk45"`` only uses the two ends. SDEdit starts at the level of the first step kept;
    inpainting (``run.mask``) is a constraint, so it needs ``"euler"`` or ``"heun"``.
    """
    method = check_method(method)
    rtol, atol = check_tolerances(rtol, atol)
    config = run.config
    times = timesteps_host(run.num_steps, config.sampling_eps)
    levels = [float(v) for v in sigma_of_t(times, config.sigma_min, config.sigma_max)] + [0.0]
    start = run.first_step
    constraint = run.constraint
    if method == "rk45" and constraint is not None:
        raise ValueError("a constraint (inpainting mask=, colorize=) with sampler='ode' needs fixed steps: "
                         "method='euler' or 'heun'")
    x = run.start_sample(levels[start])
    return sample_ode(run.model, x, levels[start:], noise=run.noise, callback=run.callback, disable=run.disable,
                      backend=run.backend, method=method, rtol=rtol, atol=atol, denoise=run.denoise,
                      constraint=constraint, strict=run.strict)
