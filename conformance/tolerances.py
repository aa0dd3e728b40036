"""The one table of tolerances, derived from each dtype's machine epsilon, and the one comparison helper.

How an error is measured
------------------------
Every output of the scheduler is a short sum of terms (``x + g^2 s + g z``, ``x + eps s + sqrt(2 eps) z``,
``x + sigma z``), and the terms can cancel. An error is therefore taken per element relative to the sum of
the terms' magnitudes (``scale``, supplied by the reference), plus a floor (``FLOOR``) so that a subnormal
result flushed to zero (XLA, CUDA) or rounded to its spacing is not reported as a large relative error. The table reports the maximum over elements.

How a tolerance is derived
--------------------------
``rtol = TOLERANCES[dtype] + FACTOR * condition * eps(schedule dtype)``:

- ``TOLERANCES[dtype] = FACTOR * eps(dtype)`` for float32 and float64: rounding the output and each of the
  few operations. For float16 and bfloat16, which the core computes in float32 and rounds once,
  ``eps(dtype) + FACTOR * eps(float32)``. ``FACTOR = 16`` leaves room for a handful of rounded operations, the
  reduction order of the corrector's norms (pairwise in NumPy, blocked in torch and XLA; a naive float32 sum
  of ``n`` squares would need ``n * eps``, these need ``~log2(n) * eps``) and fused multiply-adds.
- ``condition * eps(schedule dtype)`` is wider than the dtype's epsilon suggests, and on purpose: the schedule
  is an array of noise levels held in float64 where the namespace has it and in float32 where it does not
  (JAX without x64, the diffusers drop-in which keeps diffusers' float32 schedule). Each level is rounded to
  that dtype, and two quantities amplify that rounding:

  * ``exp`` of a rounded argument: ``discrete_sigmas = exp(linspace(log sigma_min, log sigma_max, N))`` and
    ``sigma(t) = sigma_min exp(t log(sigma_max / sigma_min))`` have relative error ``|argument| * eps``,
    condition ``1 + |log sigma|`` (up to 1 + 18.4 for sigma in [1e-4, 1e4]);
  * the predictor's ``g^2 = sigma^2 - sigma_adj^2`` subtracts two neighbouring levels of ratio
    ``r = (sigma_max / sigma_min)^(1 / (N - 1))``: condition ``kappa = (sigma^2 + sigma_adj^2) /
    (sigma^2 - sigma_adj^2)``, about ``1 / log r`` (272 for N = 10^4 over [1e-4, 1e4], 1 at the first level).

  The reference computes ``g^2 = sigma^2 (1 - r^-2)`` with ``expm1``, which has no cancellation, so these
  conditions measure what holding the schedule in a finite dtype costs. With a float64 schedule the term is
  far below float32's epsilon; with a float32 schedule it dominates (``kappa * eps32 ~ 3e-5``).
- Timesteps lie in ``[sampling_eps, 1]`` and are compared with absolute error (scale 1): ``linspace`` in
  float32 rounds ``t = 1e-5`` to about ``6e-8`` absolute error, which is ``6e-3`` relative.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "corrector_rtol",
    "EPS",
    "FACTOR",
    "FLOOR",
    "HALF_PRECISION",
    "JIT_FACTOR",
    "NOISE_ALPHA",
    "NOISE_MOMENT_Z",
    "NOISE_SEED_OVERLAP",
    "TINY",
    "TOLERANCES",
    "assert_close",
    "check_meta",
    "dtype_name",
    "max_relative_error",
    "rtol_for",
    "to_numpy",
]

EPS: dict[str, float] = {
    "float16": float(np.finfo(np.float16).eps),  # 9.77e-4
    "bfloat16": 2.0**-7,  # 7.81e-3
    "float32": float(np.finfo(np.float32).eps),  # 1.19e-7
    "float64": float(np.finfo(np.float64).eps),  # 2.22e-16
}

# Smallest normal number per dtype.
TINY: dict[str, float] = {
    "float16": float(np.finfo(np.float16).tiny),  # 6.10e-5
    "bfloat16": float(np.finfo(np.float32).tiny),  # bfloat16 has float32's exponent range
    "float32": float(np.finfo(np.float32).tiny),
    "float64": float(np.finfo(np.float64).tiny),
}

# The floor of an error's scale. XLA (JAX on CPU and GPU) and CUDA flush subnormal results to zero, so in the
# dtype the arithmetic runs in (float32 for half-precision samples) an absolute error of up to TINY is one
# "rounding": floored at TINY / EPS, a flush counts as one epsilon (found by Hypothesis: 0.1 * 1.7e-40 is 0
# under XLA). Half-precision results are computed in float32 and rounded once, to a subnormal spacing of at
# most TINY * EPS, so TINY itself is their floor.
FLOOR: dict[str, float] = {
    "float16": TINY["float16"],
    "bfloat16": TINY["bfloat16"],
    "float32": TINY["float32"] / EPS["float32"],
    "float64": TINY["float64"] / EPS["float64"],
}

# The largest finite value per dtype: a case whose reference exceeds a quarter of it is not representable.
MAX: dict[str, float] = {
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": float(np.finfo(np.float32).max),
    "float32": float(np.finfo(np.float32).max),
    "float64": float(np.finfo(np.float64).max),
}

FACTOR = 16.0

# Half precision is computed in float32 (sdeve._xp.compute_dtype) and rounded once to the sample's dtype: at
# most half an ulp of the result, so one eps of the half dtype plus float32's tolerance bounds it, far tighter
# than 16 eps of float16 (1.6%) or bfloat16 (12.5%) would be.
HALF_PRECISION = ("float16", "bfloat16")

TOLERANCES: dict[str, float] = {
    name: (eps + FACTOR * EPS["float32"]) if name in HALF_PRECISION else FACTOR * eps for name, eps in EPS.items()
}

# jax.jit against eager JAX: not bitwise. XLA:CPU contracts ``x + a * b`` into a fused multiply-add under jit
# (measured: the jitted ``x + y * z`` equals the once-rounded FMA on every element, eager equals the twice-
# rounded expression), and the array API has no FMA to make eager do the same. So jit and eager differ by one
# rounding of a product term: measured at most 0.95 eps (predictor, add_noise) and 1.6 eps (corrector, whose
# norms are also contracted) relative to the terms' magnitudes, in every dtype. The bound checked is
# ``JIT_FACTOR * eps``.
JIT_FACTOR = 2.0

# Statistical thresholds of the noise checks (conformance.checks_noise); every seed is fixed, so a run is
# deterministic and a test that passes keeps passing.
NOISE_ALPHA = 1e-3  # Kolmogorov-Smirnov significance: D must stay below kstwo.ppf(1 - alpha, n)
NOISE_MOMENT_Z = 5.0  # sample mean, variance, skewness, kurtosis within 5 standard errors of N(0, 1)'s
NOISE_SEED_OVERLAP = 0.01  # seeds 0 and 1 agree on under 1% of draws (bfloat16 coincides ~1e-3 by chance)


def dtype_name(dtype: Any) -> str:
    """``"float32"`` etc. for a dtype of any library."""
    text = str(dtype).rsplit(".", 1)[-1]
    for name in ("bfloat16", "float16", "float32", "float64"):
        if name in text:
            return name
    raise ValueError(f"not a floating dtype: {dtype}")


def corrector_rtol(dtype: Any, per_example: int) -> float:
    """The tolerance for a corrector's output: :func:`rtol_for` plus the rounding of its step size, which comes
    from two per-example norms, sums of ``per_example`` squares. An adapter may fuse that reduction and sum in
    another order (torch's ``vector_norm``); the standard bound of such a sum, ``sqrt(n) * eps`` for each norm,
    enters the step size twice (it is squared)."""
    return rtol_for(dtype) + 2.0 * math.sqrt(per_example) * EPS[dtype_name(dtype)]


def rtol_for(dtype: Any, *, schedule_dtype: Any = None, condition: float = 0.0) -> float:
    """The relative tolerance for results in ``dtype``: ``FACTOR * eps(dtype)``, plus
    ``FACTOR * condition * eps(schedule_dtype)`` for the rounding of a schedule held in ``schedule_dtype``
    (see the module docstring for the conditions)."""
    tol = TOLERANCES[dtype_name(dtype)]
    if schedule_dtype is not None and condition:
        tol += FACTOR * condition * EPS[dtype_name(schedule_dtype)]
    return tol


def to_numpy(x: Any) -> np.ndarray:
    """``x`` from any supported library as a float64 NumPy array (computing Dask graphs, copying off devices)."""
    import array_api_compat as compat

    if compat.is_torch_array(x):
        return x.detach().to("cpu").double().numpy()
    if compat.is_cupy_array(x):
        return x.get().astype(np.float64)
    if compat.is_dask_array(x):
        return np.asarray(x.compute()).astype(np.float64)
    if compat.is_array_api_strict_namespace(compat.array_namespace(x)):
        import array_api_strict as s

        return np.asarray(s.astype(x, s.float64) if x.dtype != s.float64 else x).astype(np.float64)
    if compat.is_jax_array(x) and str(x.dtype) == "bfloat16":
        return np.asarray(x.astype("float32")).astype(np.float64)
    return np.asarray(x).astype(np.float64)


def check_meta(actual: Any, like: Any) -> None:
    """``AssertionError`` unless ``actual`` has the namespace, shape, dtype and device of ``like``."""
    import array_api_compat as compat

    a_ns, l_ns = compat.array_namespace(actual), compat.array_namespace(like)
    assert a_ns is l_ns, f"namespace {a_ns.__name__} != {l_ns.__name__}"
    assert tuple(actual.shape) == tuple(like.shape), f"shape {tuple(actual.shape)} != {tuple(like.shape)}"
    assert actual.dtype == like.dtype, f"dtype {actual.dtype} != {like.dtype}"
    if not compat.is_dask_array(actual):
        assert str(compat.device(actual)) == str(compat.device(like)), f"device {compat.device(actual)} != {compat.device(like)}"


def max_relative_error(actual: Any, expected: np.ndarray, scale: Any = None, *, dtype: Any = None) -> float:
    """Max over elements of ``|actual - expected| / (scale + FLOOR[dtype])``; ``scale`` defaults to ``|expected|``.

    ``inf`` when the finite/non-finite pattern differs (a NaN or an overflow where the reference is finite).
    """
    values = to_numpy(actual) if not isinstance(actual, np.ndarray) else actual.astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if values.shape != expected.shape:
        raise AssertionError(f"shape {values.shape} != {expected.shape}")
    if values.size == 0:
        return 0.0
    if not np.array_equal(np.isfinite(values), np.isfinite(expected)):
        return float("inf")
    tiny = FLOOR[dtype_name(dtype if dtype is not None else actual.dtype)]
    scale = np.abs(expected) if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), expected.shape)
    finite = np.isfinite(expected)
    return float(np.max(np.abs(values[finite] - expected[finite]) / (scale[finite] + tiny), initial=0.0))


def assert_close(actual: Any, expected: np.ndarray, *, like: Any = None, rtol: float | None = None, scale: Any = None) -> float:
    """Check namespace, shape, dtype and device of ``actual`` against ``like`` (the input it came from), then its
    values against the float64 ``expected`` with :func:`max_relative_error`. Returns that error.

    ``scale`` is a number or an array broadcastable to ``expected`` (default: the largest ``|expected|``).
    """
    if like is not None:
        check_meta(actual, like)
    expected = np.asarray(expected, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    tol = rtol_for(actual.dtype) if rtol is None else rtol
    err = max_relative_error(actual, expected, scale)
    assert err <= tol, f"max relative error {err:.3e} > tolerance {tol:.3e} (dtype {actual.dtype})"
    return err
