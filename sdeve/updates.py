"""Every update of the VE SDE samplers as pure functions. Noise is always an argument.

Each update is a pair of coefficients and one primitive, :func:`combine`::

    prev_sample_mean = x + a * score
    prev_sample      = prev_sample_mean + b * noise

The coefficient formulas (Song et al. 2021, Appendix G; ``score_sde``'s ``sampling.py``) are written once with
arithmetic operators and an injected ``sqrt``, so the same line runs on host floats (``math.sqrt``), host
tables (``numpy.sqrt``) and device arrays (``xp.sqrt``). An adapter may supply a fused :func:`combine`
(:meth:`sdeve.protocols.Backend.combine`); the conformance suite compares it with this one.

Shapes: ``sample``, ``model_output`` and ``noise`` share one shape ``(B, ...)`` of rank >= 1, batch first.
Coefficients are Python floats, 0-d arrays or ``(B,)`` arrays; they broadcast over every axis after the first.
Arithmetic runs in :func:`sdeve._xp.compute_dtype` of the sample's dtype (at least float32) and the outputs are
cast back to the sample's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union

from ._xp import Array, Namespace, array_namespace, compute_dtype

__all__ = [
    "CorrectorNorm",
    "add_noise",
    "ald_step_size",
    "ancestral_coefficients",
    "combine",
    "combine_with",
    "corrector_step_size",
    "corrector_update",
    "euler_maruyama_coefficients",
    "langevin_coefficients",
    "langevin_step_size",
    "predictor_update",
    "reverse_diffusion_coefficients",
    "sqrt_for",
]

CorrectorNorm = Literal["batch", "example"]
Coefficient = Union[Array, float]
T = TypeVar("T")
Combine = Callable[..., "tuple[Array, Array] | None"]


# ---------------------------------------------------------------------- coefficient formulas
def reverse_diffusion_coefficients(sigma: T, adjacent: T, *, sqrt: Callable[[T], T]) -> tuple[T, T]:
    """The reverse-diffusion predictor's ``(g^2, g)`` with ``g^2 = sigma^2 - adjacent^2`` (Song et al., eq. 47).

    ``sigma^2 - adjacent^2`` cancels (neighbouring levels differ by a factor close to 1), so it is taken as
    ``(sigma - adjacent) * (sigma + adjacent)``: the difference of two close levels is exact, and ``g^2`` carries
    two roundings rather than the condition number times one.
    """
    g2 = (sigma - adjacent) * (sigma + adjacent)  # type: ignore[operator]
    return g2, sqrt(g2)


def ancestral_coefficients(sigma: T, adjacent: T, *, sqrt: Callable[[T], T]) -> tuple[T, T]:
    """The VE ancestral-sampling predictor's ``(sigma^2 - s'^2, sqrt(s'^2 (sigma^2 - s'^2) / sigma^2))``
    (Song et al., Appendix F; ``s' = adjacent``, the level below)."""
    g2 = (sigma - adjacent) * (sigma + adjacent)  # type: ignore[operator]
    return g2, sqrt(adjacent * adjacent * g2 / (sigma * sigma))  # type: ignore[operator]


def euler_maruyama_coefficients(diffusion: Any, dt: float) -> tuple[Any, Any]:
    """The reverse Euler–Maruyama predictor's ``(g(t)^2 |dt|, g(t) sqrt(|dt|))`` (Song et al., eq. 6 and
    ``sampling.py``'s ``EulerMaruyamaPredictor``), ``g(t) = diffusion``, ``dt < 0``."""
    step = abs(dt)
    return diffusion * diffusion * step, diffusion * math.sqrt(step)


def langevin_coefficients(step_size: Any, *, sqrt: Callable[[Any], Any]) -> tuple[Any, Any]:
    """A Langevin corrector's ``(eps, sqrt(2 eps))`` from its step size ``eps`` (Song et al., Alg. 4 and 5)."""
    return step_size, sqrt(step_size * 2)


def ald_step_size(sigma: Any, snr: Any) -> Any:
    """Annealed Langevin dynamics' step size ``eps = 2 (snr * sigma)^2`` (``AnnealedLangevinDynamics``)."""
    scaled = sigma * snr
    return scaled * scaled * 2


def _example_norms(x: Array, *, xp: Namespace) -> Array:
    """L2 norm of each example over all non-batch axes: shape ``(B,)``."""
    if x.ndim == 1:
        return xp.abs(x)
    # sqrt(sum(x * x)) rather than linalg.vector_norm: the same formula in every library (none rescales), core
    # functions only, and on Dask one chunked reduction.
    return xp.sqrt(xp.sum(x * x, axis=tuple(range(1, x.ndim))))


def langevin_step_size(grad_norm: Any, noise_norm: Any, snr: Any, smallest_normal: float, *,
                       where: Callable[[Any, Any, Any], Any], isfinite: Callable[[Any], Any]) -> Any:
    """``eps = 2 * (snr * ||z|| / ||s||)^2`` from the norms (Song et al. 2021, Alg. 5), 0 where it cannot be
    represented: a score norm below ``sqrt(smallest_normal)`` (zero, as far as the step goes: libraries that keep
    subnormal numbers and those that flush them agree) or a step that overflows.

    Written with operators and the injected ``where``/``isfinite``, so that it runs on Python floats
    (:data:`HOST`) and on arrays (``xp.where`` with a Python scalar branch, as the standard allows since 2024.12,
    and ``xp.isfinite``) alike.
    """
    usable = grad_norm >= math.sqrt(smallest_normal)
    ratio = snr * noise_norm / where(usable, grad_norm, 1.0)
    step = ratio * ratio * 2
    return where(usable & isfinite(step), step, 0.0)


_SMALLEST_NORMAL: dict[tuple[int, Any], float] = {}


def smallest_normal(xp: Namespace, dtype: Any) -> float:
    """``xp.finfo(dtype).smallest_normal`` as a Python float, looked up once per namespace and dtype (``finfo``
    costs microseconds a step)."""
    key = (id(xp), dtype)
    value = _SMALLEST_NORMAL.get(key)
    if value is None:
        value = _SMALLEST_NORMAL[key] = float(xp.finfo(dtype).smallest_normal)
    return value


def _host_where(condition: bool, a: Any, b: Any) -> Any:
    return a if condition else b


HOST: dict[str, Callable[..., Any]] = {"where": _host_where, "isfinite": math.isfinite}  # on Python floats


def _norms(model_output: Array, noise: Array, norm: CorrectorNorm, xp: Namespace,
           fused: Callable[[Array], Array | None] | None = None) -> tuple[Array, Array, Any]:
    """The score's and the noise's norms for the step size, batch means or per example, and the compute dtype;
    ``fused`` is an adapter's per-example norm (:meth:`sdeve.protocols.Backend.norms`)."""
    if norm not in ("batch", "example"):
        raise ValueError(f"norm must be 'batch' or 'example', got {norm!r}")
    dtype = compute_dtype(xp, model_output.dtype)
    grad_norm, noise_norm = (_fused_norms(_as(a, dtype, xp=xp), xp, fused) for a in (model_output, noise))
    if norm == "batch":
        grad_norm, noise_norm = xp.mean(grad_norm), xp.mean(noise_norm)
    return grad_norm, noise_norm, dtype


def _host_norms(model_output: Array, noise: Array, xp: Namespace, norms: Callable[[Array], Array | None] | None,
                host_norms: Callable[[Array, Array], tuple[float, float] | None] | None) -> tuple[float, float, Any]:
    """The batch-mean norms of the score and the noise as Python floats, and the compute dtype."""
    read = host_norms(model_output, noise) if host_norms is not None else None
    if read is not None:
        return read[0], read[1], compute_dtype(xp, model_output.dtype)
    grad_norm, noise_norm, dtype = _norms(model_output, noise, "batch", xp, norms)
    return float(grad_norm), float(noise_norm), dtype


def _fused_norms(x: Array, xp: Namespace, fused: Callable[[Array], Array | None] | None) -> Array:
    out = fused(x) if fused is not None else None
    return _example_norms(x, xp=xp) if out is None else out


def corrector_step_size(
    model_output: Array, noise: Array, snr: Any, *, norm: CorrectorNorm = "batch", xp: Namespace | None = None,
    norms: Callable[[Array], Array | None] | None = None,
) -> Array:
    """The Langevin step size ``eps = 2 * (snr * ||z|| / ||s||)^2`` (Song et al. 2021, Alg. 5).

    ``norm="batch"`` (diffusers and Song et al.): ``||.||`` is the batch mean of per-example norms, giving one
    0-d step size for the whole batch. ``norm="example"``: one step size per example, shape ``(B,)``, so an
    example's update does not depend on the rest of its batch.

    Where the score's norm is zero (or below the square root of the smallest normal number) the step size would
    be infinite or not representable; it is 0 instead, so the corrector returns the sample unchanged, the same
    on every backend, as it is for a step size that overflows (:func:`langevin_step_size`). The result is in the
    compute dtype of ``model_output``'s dtype. ``snr`` is a number or a 0-d array (traced under ``jax.jit``, so
    one compiled program serves every value).
    """
    xp = array_namespace(model_output) if xp is None else xp
    grad_norm, noise_norm, dtype = _norms(model_output, noise, norm, xp, norms)
    tiny = smallest_normal(xp, dtype)
    return langevin_step_size(grad_norm, noise_norm, snr, tiny, where=xp.where, isfinite=xp.isfinite)


# ---------------------------------------------------------------------- the primitive
def _as(x: Array, dtype: Any, *, xp: Namespace) -> Array:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def per_example(coefficient: Coefficient, ndim: int, dtype: Any, *, xp: Namespace) -> Coefficient:
    """A float, 0-d or ``(B,)`` coefficient in ``dtype``, shaped to broadcast against rank ``ndim`` (batch first)."""
    if isinstance(coefficient, (int, float)):
        return float(coefficient)
    coefficient = _as(coefficient, dtype, xp=xp)
    if coefficient.ndim == 0:
        return coefficient
    if coefficient.ndim != 1:
        raise ValueError(f"per-example coefficients must be 0-d or of shape (B,), got shape {coefficient.shape}")
    return xp.reshape(coefficient, (coefficient.shape[0],) + (1,) * (ndim - 1))


def combine(x: Array, a: Coefficient, s: Array, b: Coefficient, z: Array, *,
            xp: Namespace | None = None) -> tuple[Array, Array]:
    """``(x + a*s + b*z, x + a*s)`` in the compute dtype, returned in ``x``'s dtype: every update's arithmetic."""
    xp = array_namespace(x) if xp is None else xp
    dtype = compute_dtype(xp, x.dtype)
    a = per_example(a, x.ndim, dtype, xp=xp)
    b = per_example(b, x.ndim, dtype, xp=xp)
    mean = _as(x, dtype, xp=xp) + a * _as(s, dtype, xp=xp)
    prev = mean + b * _as(z, dtype, xp=xp)
    return _as(prev, x.dtype, xp=xp), _as(mean, x.dtype, xp=xp)


def combine_with(fused: Combine | None, x: Array, a: Coefficient, s: Array, b: Coefficient, z: Array, *,
                  xp: Namespace, reuse: bool = False) -> tuple[Array, Array]:
    """:func:`combine`, by the adapter's fused primitive ``fused`` where it has one for these arrays."""
    if fused is not None:
        out = fused(x, a, s, b, z, reuse=reuse)
        if out is not None:
            return out
    return combine(x, a, s, b, z, xp=xp)


def sqrt_for(xp: Namespace) -> Callable[[Any], Any]:
    """``sqrt`` for a coefficient that is a Python float (``math.sqrt``) or an array of ``xp``."""

    def sqrt(v: Any) -> Any:
        return math.sqrt(v) if isinstance(v, float) else xp.sqrt(v)

    return sqrt


# ---------------------------------------------------------------------- the updates
def predictor_update(
    sample: Array,
    model_output: Array,
    noise: Array,
    sigma: Coefficient,
    adjacent_sigma: Coefficient,
    *,
    xp: Namespace | None = None,
    fused: Combine | None = None,
) -> tuple[Array, Array]:
    """One reverse-diffusion predictor step (Song et al. 2021, eq. (47) / Alg. 2, VE case)::

        prev_sample_mean = sample + g^2 * model_output
        prev_sample      = prev_sample_mean + g * noise,      g^2 = sigma^2 - adjacent_sigma^2

    Parameters
    ----------
    sample, model_output, noise
        Arrays of shape ``(B, ...)``; ``model_output`` is the score ``grad_x log p_sigma(x)`` (data units^-1).
    sigma, adjacent_sigma
        Noise levels (data units): Python floats, or arrays 0-d or ``(B,)`` of any real dtype. ``g^2`` is taken
        in the wider of their dtype and the compute dtype, then rounded once.
    xp
        The namespace of ``sample``; found from it when ``None``.
    fused
        An adapter's fused :func:`combine` (optional).

    Returns
    -------
    (prev_sample, prev_sample_mean)
        Both of ``sample``'s shape and dtype.
    """
    xp = array_namespace(sample) if xp is None else xp
    if isinstance(sigma, (int, float)) and isinstance(adjacent_sigma, (int, float)):
        a, b = reverse_diffusion_coefficients(float(sigma), float(adjacent_sigma), sqrt=math.sqrt)
    else:
        sigma = xp.asarray(sigma) if isinstance(sigma, (int, float)) else sigma
        wide = xp.result_type(sigma.dtype, compute_dtype(xp, sample.dtype))
        sigma = _as(sigma, wide, xp=xp)
        adjacent = adjacent_sigma if isinstance(adjacent_sigma, (int, float)) else _as(adjacent_sigma, wide, xp=xp)
        a, b = reverse_diffusion_coefficients(sigma, adjacent, sqrt=xp.sqrt)
    return combine_with(fused, sample, a, model_output, b, noise, xp=xp)


def corrector_update(
    sample: Array,
    model_output: Array,
    noise: Array,
    snr: Any,
    *,
    norm: CorrectorNorm = "batch",
    xp: Namespace | None = None,
    fused: Combine | None = None,
    norms: Callable[[Array], Array | None] | None = None,
    host: bool = False,
    reuse: bool = False,
    host_norms: Callable[[Array, Array], tuple[float, float] | None] | None = None,
) -> tuple[Array, Array]:
    """One Langevin corrector step (Song et al. 2021, Alg. 5)::

        prev_sample_mean = sample + eps * model_output
        prev_sample      = prev_sample_mean + sqrt(2 * eps) * noise

    with ``eps`` from :func:`corrector_step_size` (``norms``: an adapter's fused per-example norm). Inputs of
    shape ``(B, ...)``; returns
    ``(prev_sample, prev_sample_mean)`` in ``sample``'s dtype. An all-zero score returns ``sample`` unchanged.

    ``host=True`` (the caller's adapter says the arrays may be read and used as constants: in host memory,
    eager, outside autograd) takes the batch step size as a Python float, the same formula on two norms read
    once, so that the update's coefficients are kernel arguments rather than a chain of 0-d array operations;
    ``host_norms`` is an adapter's reading of both (:meth:`sdeve.protocols.Backend.host_norms`).
    """
    xp = array_namespace(sample) if xp is None else xp
    if host and norm == "batch":
        grad_norm, noise_norm, dtype = _host_norms(model_output, noise, xp, norms, host_norms)
        tiny = smallest_normal(xp, dtype)
        step: Any = langevin_step_size(grad_norm, noise_norm, float(snr), tiny, **HOST)
        a, b = langevin_coefficients(step, sqrt=math.sqrt)
    else:
        step = corrector_step_size(model_output, noise, snr, norm=norm, xp=xp, norms=norms)
        a, b = langevin_coefficients(step, sqrt=xp.sqrt)
    return combine_with(fused, sample, a, model_output, b, noise, xp=xp, reuse=reuse)


def add_noise(original: Array, noise: Array, sigma: Coefficient, *, xp: Namespace | None = None) -> Array:
    """Forward VE perturbation ``original + sigma * noise``: ``(B, ...)`` arrays, ``sigma`` a float, 0-d or
    ``(B,)``. The result has ``original``'s dtype; the product is taken in at least float32."""
    xp = array_namespace(original) if xp is None else xp
    dtype = compute_dtype(xp, original.dtype)
    scale = per_example(sigma, original.ndim, dtype, xp=xp)
    noisy = _as(original, dtype, xp=xp) + scale * _as(noise, dtype, xp=xp)
    return _as(noisy, original.dtype, xp=xp)
