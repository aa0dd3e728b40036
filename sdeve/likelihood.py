"""Exact likelihoods, encoding and decoding through the probability-flow ODE (Song et al. 2021, Sec. 4.3 and
Appendix D.2, eq. (39); ``likelihood.py`` of their code).

Along the ODE ``dx/dt = f(x, t) = -ln(sigma_max / sigma_min) sigma(t)^2 s(x, sigma(t))`` the log-density changes
as ``d log p_t(x(t)) / dt = -div f``, so for data ``x`` at ``t = sampling_eps``::

    log p_eps(x) = log N(x(1); 0, sigma_max^2 I) + int_eps^1 div f(x(t), t) dt,

solved as one augmented ODE for ``(x, delta_logp)`` with the adaptive RK45 of :mod:`sdeve.samplers.ode`. The
divergence is ``div f = -ln(sigma_max / sigma_min) sigma^2 div s``, with ``div s`` from, in this order:

1. ``divergence(x, sigma)`` when the caller passes it (exact, any namespace);
2. ``trace="hutchinson"``: the Hutchinson--Skilling estimate ``v^T (ds/dx) v`` with one probe ``v`` per example
   (Rademacher or Gaussian), fixed for the whole solve: one vector-Jacobian product per evaluation, unbiased;
3. ``trace="exact"``: the trace of the Jacobian from ``D`` vector-Jacobian products per evaluation (``D`` values
   per example; for small ``D``).

Autodiff (2, 3) comes from the array library's adapter (``Backend.vjp``: ``torch.func`` on torch,
``jax.vjp`` on JAX); a library without autodiff and no ``divergence`` raises ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from ._xp import Array, Namespace, array_namespace, device_of
from .backends import backend_for
from .config import SdeVeConfig
from .samplers import ode as _ode
from .samplers.pc import score as _score

__all__ = ["LogLikelihood", "decode", "encode", "log_likelihood"]

Model = Callable[[Array, Array], Array]
Divergence = Callable[[Array, Array], Array]

TRACES = ("hutchinson", "exact")
PROBES = ("rademacher", "gaussian")
_BINS = 256  # 8-bit data


@dataclasses.dataclass(frozen=True)
class LogLikelihood:
    """The result of :func:`log_likelihood`.

    Attributes
    ----------
    nats
        ``(B,)``: ``log p(x)`` in nats at ``t = sampling_eps``; with ``dequantize`` the variational lower bound
        ``log p(x_dequantized) + D ln 256`` on the log-probability of the 8-bit data.
    bits_per_dim
        ``(B,)``: ``-nats / (D ln 2)`` (Song's offset of 8 bits included by ``nats`` when ``dequantize``).
    nfe
        Evaluations of the augmented ODE's right-hand side (each one model evaluation, plus its autodiff): an
        int, or a 0-d array where reading it would synchronise a device or trace.
    latent
        ``x(1)``, the code of ``x`` at ``sigma_max`` (what :func:`encode` returns), ``x``'s shape.
    """

    nats: Array
    bits_per_dim: Array
    nfe: Any
    latent: Array


# ---------------------------------------------------------------------------------------------- arguments
def _config(scheduler: Any) -> tuple[float, float, float]:
    """``(sigma_min, sigma_max, sampling_eps)`` of a scheduler, a config, or the defaults for ``None``."""
    if scheduler is None:
        scheduler = SdeVeConfig()
    config = getattr(scheduler, "config", scheduler)
    try:
        return float(config["sigma_min"]), float(config["sigma_max"]), float(config["sampling_eps"])
    except (KeyError, TypeError):
        raise TypeError(
            f"scheduler must be an sdeve.ScoreSdeVeScheduler or SdeVeConfig (or None), got {type(scheduler).__name__}"
        ) from None


def _check_data(x: Any, name: str = "x") -> Namespace:
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array of shape (B, ...), got {type(x).__name__}")
    xp = array_namespace(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (B, ...) with B >= 1, got {tuple(x.shape)}")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    return xp


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value.lower()


# ---------------------------------------------------------------------------------------------- divergences
def _per_example_sum(a: Array, xp: Namespace) -> Array:
    return xp.sum(xp.reshape(a, (a.shape[0], -1)), axis=1)


def _value_and_vjp(backend: Any, fn: Callable[[Array], Array], x: Array, v: Array) -> tuple[Array, Array]:
    """``(fn(x), v^T d fn / dx)``: one forward and one backward pass where the adapter offers both at once."""
    if backend is None:
        raise TypeError("this array library has no automatic differentiation in sdeve: pass divergence=")
    value, product = backend.value_and_vjp(fn, x, v)
    return value, product


def _hutchinson(model: Model, backend: Any, probe: Array) -> Callable[[Array, Array], tuple[Array, Array]]:
    """``(x, sigma) -> (score, v^T (ds/dx) v)`` per example, one VJP (Hutchinson 1990; Skilling 1989)."""

    def score_and_div(x: Array, sigma: Array) -> tuple[Array, Array]:
        xp = array_namespace(x)
        score, product = _value_and_vjp(backend, lambda z: _score(model, z, sigma), x, probe)
        return score, _per_example_sum(product * probe, xp)

    return score_and_div


def _exact_autodiff(model: Model, backend: Any) -> Callable[[Array, Array], tuple[Array, Array]]:
    """``(x, sigma) -> (score, tr(ds/dx))`` per example, from ONE vector-Jacobian product on a batch of ``D``
    copies of ``x``: copy ``d`` gets the basis vector ``e_d`` as cotangent, and since examples are independent
    its product is row ``d`` of each example's Jacobian (``D`` times the memory of one evaluation)."""

    def score_and_div(x: Array, sigma: Array) -> tuple[Array, Array]:
        xp = array_namespace(x)
        batch, tail = int(x.shape[0]), tuple(int(d) for d in x.shape[1:])
        dim = math.prod(tail)
        copies = xp.concat([x] * dim, axis=0)  # (D * B, ...), copy d in rows [d B, (d + 1) B)
        sigmas = xp.concat([sigma] * dim, axis=0)
        index = xp.reshape(xp.arange(dim, device=device_of(x)), (1, 1, *tail))
        which = xp.reshape(xp.arange(dim, device=device_of(x)), (dim, 1) + (1,) * len(tail))
        basis = xp.astype(xp.broadcast_to(index == which, (dim, batch, *tail)), x.dtype)
        basis = xp.reshape(basis, (dim * batch, *tail))
        value, rows = _value_and_vjp(backend, lambda z: _score(model, z, sigmas), copies, basis)
        diagonal = xp.reshape(_per_example_sum(rows * basis, xp), (dim, batch))
        return value[:batch, ...], xp.sum(diagonal, axis=0)

    return score_and_div


def _given(model: Model, divergence: Divergence) -> Callable[[Array, Array], tuple[Array, Array]]:
    """``(x, sigma) -> (score, divergence(x, sigma))``, the divergence checked to be ``(B,)``."""
    if not callable(divergence):
        raise TypeError(f"divergence must be callable as divergence(x, sigma) -> (B,), got {type(divergence).__name__}")

    def score_and_div(x: Array, sigma: Array) -> tuple[Array, Array]:
        div = divergence(x, sigma)
        if tuple(getattr(div, "shape", ())) != (x.shape[0],):
            raise ValueError(f"divergence(x, sigma) must return shape (B,) = ({x.shape[0]},), got "
                             f"{type(div).__name__} of shape {tuple(getattr(div, 'shape', ()))}")
        xp = array_namespace(x)
        return _score(model, x, sigma), (div if div.dtype == x.dtype else xp.astype(div, x.dtype))

    return score_and_div


def _augmented(score_and_div: Callable[[Array, Array], tuple[Array, Array]], sigma_min: float,
               log_ratio: float) -> _ode.Rhs:
    """The right-hand side of the augmented ODE for ``(x, delta_logp)``: ``(f, div f)`` (Appendix D.2)."""

    def fun(t: Array, y: _ode.State) -> _ode.State:
        x = y[0]
        xp = array_namespace(x)
        sigma_b, sigma = _ode.noise_level(t, sigma_min, log_ratio, x, xp)
        score, div = score_and_div(x, sigma_b)
        rate = -log_ratio * sigma * sigma
        return _as(rate, x.dtype, xp) * score, _as(rate, div.dtype, xp) * div

    return fun


# ---------------------------------------------------------------------------------------------- noise
def _normal(backend: Any, source: Any, like: Array) -> tuple[Array, Any]:
    now, later = backend.split(source)
    return backend.normal(now, tuple(like.shape), dtype=like.dtype, device=device_of(like), like=like), later


def _probe(backend: Any, source: Any, x: Array, kind: str) -> tuple[Array, Any]:
    """A Rademacher (the sign of a normal draw: +-1 with probability 1/2 each) or Gaussian probe like ``x``."""
    z, source = _normal(backend, source, x)
    if kind == "gaussian":
        return z, source
    xp = array_namespace(x)
    return xp.where(z >= 0, xp.ones_like(z), -xp.ones_like(z)), source


def _dequantized(backend: Any, source: Any, x: Array) -> tuple[Array, Any]:
    """Song's uniform dequantization of 8-bit data in [0, 1]: ``(255 x + u) / 256``, ``u ~ U[0, 1)``.

    ``u = 1 - exp(-(z1^2 + z2^2) / 2)`` for two standard normals is exactly uniform (``(z1^2 + z2^2) / 2`` is
    exponential with rate 1), so only the adapter's normal draws are needed.
    """
    xp = array_namespace(x)
    z1, source = _normal(backend, source, x)
    z2, source = _normal(backend, source, x)
    u = -xp.expm1(-(z1 * z1 + z2 * z2) / 2)
    return ((_BINS - 1) * x + u) / _BINS, source


def _likelihood_program(model: Model, dynamic: tuple[Array, Array | None], static: tuple[Any, ...]
                        ) -> _ode.Solution:
    """The augmented ODE for ``(x, delta_logp)`` from ``t = sampling_eps`` to 1, as one program the backend may
    compile (JAX: ``jax.jit`` around ``lax.while_loop``, the VJPs inside)."""
    x, probe = dynamic
    backend, (sigma_min, sigma_max, eps), mode, divergence, rtol, atol = static
    if mode == "given":
        score_and_div = _given(model, divergence)
    elif mode == "hutchinson":
        score_and_div = _hutchinson(model, backend, probe)
    else:
        score_and_div = _exact_autodiff(model, backend)
    xp = array_namespace(x)
    start = (x, xp.zeros((x.shape[0],), dtype=x.dtype, device=device_of(x)))
    rhs = _augmented(score_and_div, sigma_min, math.log(sigma_max / sigma_min))
    return _ode.solve_rk45(rhs, start, eps, 1.0, rtol=rtol, atol=atol, backend=backend)


def _as(a: Array, dtype: Any, xp: Namespace) -> Array:
    return a if a.dtype == dtype else xp.astype(a, dtype)


# ---------------------------------------------------------------------------------------------- public
def log_likelihood(
    model: Model, x: Array, *, scheduler: Any = None, trace: str = "hutchinson", noise: str = "rademacher",
    rtol: float = 1e-5, atol: float = 1e-5, generator: Any = None, divergence: Divergence | None = None,
    dequantize: bool = False,
) -> LogLikelihood:
    """The log-likelihood of ``x`` under the probability-flow ODE of ``model`` (Song et al. 2021, Appendix D.2).

    Parameters
    ----------
    model
        ``model(x, sigma) -> grad_x log p_sigma(x)``, ``sigma`` a ``(B,)`` array in ``x``'s dtype.
    x
        ``(B, ...)`` data, real floating. With ``dequantize``: 8-bit data scaled to ``[0, 1]`` (values ``k / 255``,
        Song's non-centred scaling, which his VE models use).
    scheduler
        A :class:`sdeve.ScoreSdeVeScheduler` or :class:`sdeve.SdeVeConfig`: ``sigma_min``, ``sigma_max`` and
        ``sampling_eps`` (the ODE runs from ``t = sampling_eps`` to 1). Default: diffusers' defaults.
    trace
        ``"hutchinson"`` (an unbiased estimate, one VJP per evaluation) or ``"exact"`` (``D`` VJPs).
    noise
        The Hutchinson probes: ``"rademacher"`` or ``"gaussian"``; one per example, fixed for the solve.
    rtol, atol
        RK45 tolerances (> 0) on the augmented state ``(x, delta_logp)``.
    generator
        For the probes and the dequantization noise: the framework's generator, a seed, or ``None``.
    divergence
        ``divergence(x, sigma) -> (B,)``, the exact divergence of the score: used when given (then ``trace`` and
        ``noise`` are not), in any namespace; otherwise the framework's autodiff supplies it.
    dequantize
        Song's uniform dequantization ``(255 x + u) / 256`` and his 8-bit offset (``D ln 256`` nats, 8 bits/dim).

    Returns
    -------
    LogLikelihood
        ``nats`` and ``bits_per_dim`` of shape ``(B,)`` in ``x``'s namespace, device and dtype; ``nfe``; ``latent``.

    Raises
    ------
    TypeError
        No ``divergence`` and a namespace without autodiff; arguments of the wrong type.
    ValueError
        An unknown ``trace`` or ``noise``, tolerances ``<= 0``, a ``divergence`` of the wrong shape, data outside
        ``[0, 1]`` with ``dequantize``.
    """
    _check_data(x)
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, sigma) -> score, got {type(model).__name__}")
    trace = _check_choice("trace", trace, TRACES)
    noise = _check_choice("noise", noise, PROBES)
    rtol, atol = _ode.check_tolerances(rtol, atol)
    if divergence is not None and not callable(divergence):
        raise TypeError(f"divergence must be callable as divergence(x, sigma) -> (B,), got {type(divergence).__name__}")
    _config(scheduler)
    return likelihood_with(model, x, backend_for(x), scheduler=scheduler, trace=trace, noise=noise, rtol=rtol,
                           atol=atol, generator=generator, divergence=divergence, dequantize=bool(dequantize))


def likelihood_with(
    model: Model, x: Array, backend: Any, *, scheduler: Any = None, trace: str = "hutchinson",
    noise: str = "rademacher", rtol: float = 1e-5, atol: float = 1e-5, generator: Any = None,
    divergence: Divergence | None = None, dequantize: bool = False,
) -> LogLikelihood:
    """:func:`log_likelihood` with the adapter given (arguments already checked)."""
    xp = array_namespace(x)
    sigma_min, sigma_max, eps = _config(scheduler)
    needs_noise = dequantize or (divergence is None and trace == "hutchinson")
    source = backend.make_generator(generator, device_of(x)) if needs_noise else None
    if dequantize:
        if backend.readable(x) and not bool(xp.all((x >= 0) & (x <= 1))):
            raise ValueError("dequantize=True expects 8-bit data scaled to [0, 1] (values k / 255)")
        x, source = _dequantized(backend, source, x)
    probe = None
    if divergence is None and trace == "hutchinson":
        probe, source = _probe(backend, source, x, noise)
    mode = "given" if divergence is not None else trace
    static = (backend, (sigma_min, sigma_max, eps), mode, divergence, rtol, atol)
    solution = backend.compile_program(_likelihood_program, model, (x, probe), static)
    z, delta = _ode.finished(solution, backend)
    dim = math.prod(int(d) for d in x.shape[1:])
    prior = -0.5 * dim * math.log(2 * math.pi * sigma_max**2) - _per_example_sum(z * z, xp) / (2 * sigma_max**2)
    nats = prior + delta + (dim * math.log(_BINS) if dequantize else 0.0)
    nfe = int(solution.nfe) if backend.readable(solution.nfe) else solution.nfe
    return LogLikelihood(nats, -nats / (dim * math.log(2)), nfe, z)


def encode(model: Model, x: Array, *, scheduler: Any = None, rtol: float = 1e-5, atol: float = 1e-5) -> Array:
    """The probability-flow ODE up from ``sigma(sampling_eps)`` (about ``sigma_min``) to ``sigma_max``: the
    latent code of ``x`` (Song et al. 2021, Sec. 4.3, "manipulating latent representations").

    ``x``: ``(B, ...)`` data; returns the code, same shape, namespace, device and dtype. Adaptive RK45 with
    ``rtol``/``atol`` (> 0) in Song's time; :func:`decode` inverts it to the tolerance.
    """
    return _flow(model, x, scheduler, rtol, atol, upward=True)


def decode(model: Model, z: Array, *, scheduler: Any = None, rtol: float = 1e-5, atol: float = 1e-5) -> Array:
    """The probability-flow ODE down from ``sigma_max`` to ``sigma(sampling_eps)``: the sample of code ``z``
    (Song's ODE sampler from a given latent, without the final denoising step, so that
    ``decode(encode(x)) == x`` to the tolerance). ``z``: ``(B, ...)``; returns its shape, namespace and dtype.
    """
    return _flow(model, z, scheduler, rtol, atol, upward=False)


def _flow(model: Model, x: Array, scheduler: Any, rtol: float, atol: float, *, upward: bool) -> Array:
    _check_data(x, "x" if upward else "z")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, sigma) -> score, got {type(model).__name__}")
    rtol, atol = _ode.check_tolerances(rtol, atol)
    sigma_min, sigma_max, eps = _config(scheduler)
    start = sigma_min * (sigma_max / sigma_min) ** eps
    ends = (start, sigma_max) if upward else (sigma_max, start)
    x, _ = _ode.solve_flow(model, x, *ends, backend=backend_for(x), sigma_min=sigma_min, sigma_max=sigma_max,
                           rtol=rtol, atol=atol)
    return x
