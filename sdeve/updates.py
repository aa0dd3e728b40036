"""The three updates of the VE SDE sampler as pure functions. Noise is always an argument.

Shapes: ``sample``, ``model_output`` and ``noise`` share one shape ``(B, ...)`` of rank >= 1, batch first.
Per-example coefficients are 0-d (one value for the batch) or of shape ``(B,)``; they broadcast over every
axis after the first. Arithmetic runs in :func:`sdeve._xp.compute_dtype` of the sample's dtype (at least
float32) and the outputs are cast back to the sample's dtype.
"""

from __future__ import annotations

import math
from typing import Literal, Union

from ._xp import Array, Namespace, array_namespace, compute_dtype, scalars_on_host

__all__ = ["CorrectorNorm", "add_noise", "corrector_step_size", "corrector_update", "predictor_update"]

CorrectorNorm = Literal["batch", "example"]


Coefficient = Union[Array, float]


def _per_example(coefficient: Array, ndim: int, *, xp: Namespace) -> Array:
    """Reshape a 0-d or ``(B,)`` coefficient to broadcast against an array of rank ``ndim`` (batch first)."""
    if isinstance(coefficient, float) or coefficient.ndim == 0:
        return coefficient
    if coefficient.ndim != 1:
        raise ValueError(f"per-example coefficients must be 0-d or of shape (B,), got shape {coefficient.shape}")
    return xp.reshape(coefficient, (coefficient.shape[0],) + (1,) * (ndim - 1))


def _as_compute(x: Array, dtype: object, *, xp: Namespace) -> Array:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def predictor_update(
    sample: Array,
    model_output: Array,
    noise: Array,
    sigma: Coefficient,
    adjacent_sigma: Coefficient,
    *,
    xp: Namespace | None = None,
) -> tuple[Array, Array]:
    """One reverse-diffusion predictor step (Song et al. 2021, eq. (47) / Alg. 2, VE case).

    With ``g^2 = sigma^2 - adjacent_sigma^2``::

        prev_sample_mean = sample + g^2 * model_output
        prev_sample      = prev_sample_mean + g * noise

    Parameters
    ----------
    sample, model_output, noise
        Arrays of shape ``(B, ...)``; ``model_output`` is the score ``grad_x log p_sigma(x)`` (data units^-1).
    sigma, adjacent_sigma
        Noise levels (data units): Python floats, or arrays 0-d or ``(B,)`` of any real dtype.
    xp
        The namespace of ``sample``; found from it when ``None``.

    Returns
    -------
    (prev_sample, prev_sample_mean)
        Both of ``sample``'s shape and dtype.
    """
    xp = array_namespace(sample) if xp is None else xp
    dtype = compute_dtype(xp, sample.dtype)
    if isinstance(sigma, float) and isinstance(adjacent_sigma, float):
        diffusion: Coefficient = math.sqrt((sigma - adjacent_sigma) * (sigma + adjacent_sigma))
    else:
        sigma = xp.asarray(sigma) if isinstance(sigma, float) else sigma
        # sigma^2 - adjacent^2 cancels (neighbouring levels differ by a factor close to 1: up to ~270x the
        # rounding at N = 10^4), so it is taken in the schedule's dtype when that is wider (a float64 schedule
        # for float32 samples) and rounded afterwards, and as (sigma - adj) * (sigma + adj): the difference of
        # two close levels is exact, so g^2 carries two roundings rather than kappa times one, and XLA cannot
        # contract it into a fused multiply-add that rounds differently under jax.jit than eagerly.
        wide = xp.result_type(sigma.dtype, dtype)
        sigma = _as_compute(sigma, wide, xp=xp)
        adjacent_sigma = _as_compute(adjacent_sigma, wide, xp=xp) if not isinstance(adjacent_sigma, float) else adjacent_sigma
        # g is rounded once to the compute dtype and squared there (diffusers' parity is the drop-in's business:
        # it hands this function its own float32 g with adjacent 0).
        g = _as_compute(xp.sqrt((sigma - adjacent_sigma) * (sigma + adjacent_sigma)), dtype, xp=xp)
        diffusion = _per_example(g, sample.ndim, xp=xp)
    x = _as_compute(sample, dtype, xp=xp)
    prev_mean = x + (diffusion * diffusion) * _as_compute(model_output, dtype, xp=xp)
    prev = prev_mean + diffusion * _as_compute(noise, dtype, xp=xp)
    return _as_compute(prev, sample.dtype, xp=xp), _as_compute(prev_mean, sample.dtype, xp=xp)


def _example_norms(x: Array, *, xp: Namespace) -> Array:
    """L2 norm of each example over all non-batch axes: shape ``(B,)``."""
    if x.ndim == 1:
        return xp.abs(x)
    # sqrt(sum(x * x)) rather than linalg.vector_norm: the same formula in every library here (none of them
    # rescales), core functions only, and on Dask one chunked reduction (compat's vector_norm took 1.4x as long).
    return xp.sqrt(xp.sum(x * x, axis=tuple(range(1, x.ndim))))


def corrector_step_size(
    model_output: Array, noise: Array, snr: float, *, norm: CorrectorNorm = "batch", xp: Namespace | None = None
) -> Array:
    """The Langevin step size ``eps = 2 * (snr * ||z|| / ||s||)^2`` (Song et al. 2021, Alg. 5).

    ``norm="batch"`` (diffusers and Song et al.): ``||.||`` is the batch mean of per-example norms, giving one
    0-d step size for the whole batch. ``norm="example"``: one step size per example, shape ``(B,)``, so an
    example's update does not depend on the rest of its batch.

    Where the score norm is zero the step size would be infinite; it is 0 instead, so the corrector returns
    the sample unchanged. The result is in the compute dtype of ``model_output``'s dtype.
    """
    xp = array_namespace(model_output) if xp is None else xp
    dtype = compute_dtype(xp, model_output.dtype)
    grad_norm = _example_norms(_as_compute(model_output, dtype, xp=xp), xp=xp)
    noise_norm = _example_norms(_as_compute(noise, dtype, xp=xp), xp=xp)
    if norm == "batch":
        grad_norm = xp.mean(grad_norm)
        noise_norm = xp.mean(noise_norm)
    elif norm != "example":
        raise ValueError(f"norm must be 'batch' or 'example', got {norm!r}")
    positive = grad_norm > 0
    safe_grad_norm = xp.where(positive, grad_norm, xp.ones_like(grad_norm))
    step = (float(snr) * noise_norm / safe_grad_norm) ** 2 * 2
    return xp.where(positive, step, xp.zeros_like(step))


def _host_step_size(model_output: Array, noise: Array, snr: float, *, xp: Namespace) -> float:
    """:func:`corrector_step_size` with ``norm="batch"`` as a Python float (arrays in host memory only)."""
    dtype = compute_dtype(xp, model_output.dtype)
    grad_norm = float(xp.mean(_example_norms(_as_compute(model_output, dtype, xp=xp), xp=xp)))
    noise_norm = float(xp.mean(_example_norms(_as_compute(noise, dtype, xp=xp), xp=xp)))
    if not grad_norm > 0:
        return 0.0
    return (float(snr) * noise_norm / grad_norm) ** 2 * 2


def corrector_update(
    sample: Array,
    model_output: Array,
    noise: Array,
    snr: float,
    *,
    norm: CorrectorNorm = "batch",
    xp: Namespace | None = None,
) -> tuple[Array, Array]:
    """One Langevin corrector step (Song et al. 2021, Alg. 5)::

        prev_sample_mean = sample + eps * model_output
        prev_sample      = prev_sample_mean + sqrt(2 * eps) * noise

    with ``eps`` from :func:`corrector_step_size`. Inputs of shape ``(B, ...)``; returns
    ``(prev_sample, prev_sample_mean)`` in ``sample``'s dtype. An all-zero score returns ``sample`` unchanged.
    """
    xp = array_namespace(sample) if xp is None else xp
    dtype = compute_dtype(xp, sample.dtype)
    step: Coefficient
    if norm == "batch" and scalars_on_host(sample):
        step = _host_step_size(model_output, noise, snr, xp=xp)
    else:
        step = _per_example(corrector_step_size(model_output, noise, snr, norm=norm, xp=xp), sample.ndim, xp=xp)
    x = _as_compute(sample, dtype, xp=xp)
    prev_mean = x + step * _as_compute(model_output, dtype, xp=xp)
    prev = prev_mean + ((step * 2) ** 0.5) * _as_compute(noise, dtype, xp=xp)
    return _as_compute(prev, sample.dtype, xp=xp), _as_compute(prev_mean, sample.dtype, xp=xp)


def add_noise(original: Array, noise: Array, sigma: Array, *, xp: Namespace | None = None) -> Array:
    """Forward VE perturbation ``original + sigma * noise``: ``(B, ...)`` arrays, ``sigma`` 0-d or ``(B,)``.

    The result has ``original``'s dtype; the product is taken in at least float32.
    """
    xp = array_namespace(original) if xp is None else xp
    dtype = compute_dtype(xp, original.dtype)
    scale = _per_example(_as_compute(sigma, dtype, xp=xp), original.ndim, xp=xp)
    noisy = _as_compute(original, dtype, xp=xp) + scale * _as_compute(noise, dtype, xp=xp)
    return _as_compute(noisy, original.dtype, xp=xp)
