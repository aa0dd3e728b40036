"""Conformance rows for the sigma-space samplers and Gotta Go Fast: each on every backend and dtype against the
float64 references of :mod:`conformance.reference_sigma`, with the same noise.

The model is the exact score of standard normal data, ``-x / (1 + sigma^2)`` (its denoiser ``x / (1 + sigma^2)``
is smooth, so the comparison measures rounding, not chaos). A run of ``N`` steps rounds each step's handful of
operations once; the errors of earlier steps are carried on with factor ``a_i <= 1`` (the samplers contract
towards the data), so the tolerance is one step's (:func:`~conformance.tolerances.rtol_for`) times the number
of model evaluations, relative to the largest value of the reference run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import LoadedBackend
from .reference_sigma import (
    ref_adaptive,
    ref_dpmpp_2m,
    ref_dpmpp_2m_sde,
    ref_dpmpp_3m_sde,
    ref_euler_ancestral,
    ref_karras,
)
from .registry import Measure, NotApplicable, check
from .tolerances import HALF_PRECISION, check_meta, max_relative_error, rtol_for

LEVELS = (40.0, 10.0, 3.0, 1.2, 0.5, 0.2, 0.05, 0.0)
SHAPE = (4, 3)


def _score(x: Any, sigma: Any) -> Any:
    import array_api_compat  # noqa: PLC0415

    xp = array_api_compat.array_namespace(x)
    return -x / (1.0 + xp.reshape(sigma, (-1, 1)) ** 2)


def _den(x: np.ndarray, sigma: float) -> np.ndarray:
    return x / (1.0 + sigma * sigma)


def _score64(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return -x / (1.0 + np.reshape(sigma, (-1, 1)) ** 2)


def _cases() -> dict[str, tuple[str, Callable[..., np.ndarray], dict[str, Any], int]]:
    """name -> (sdeve sampler, reference, options, model evaluations)."""
    n = len(LEVELS) - 1
    return {
        "euler": ("euler", lambda *a, **o: ref_karras(*a, heun=False, **o), {"s_churn": 1.0}, n),
        "heun": ("heun", lambda *a, **o: ref_karras(*a, heun=True, **o), {"final_step": "trapezoid"}, 2 * n - 1),
        "euler_ancestral": ("euler_ancestral", ref_euler_ancestral, {}, n),
        "dpmpp_2m": ("dpmpp_2m", ref_dpmpp_2m, {}, n),
        "dpmpp_2m_sde": ("dpmpp_2m_sde", ref_dpmpp_2m_sde, {"solver_type": "heun"}, n),
        "dpmpp_3m_sde": ("dpmpp_3m_sde", ref_dpmpp_3m_sde, {}, n),
    }


def _applies(backend: LoadedBackend) -> None:
    """Every backend; half precision is skipped inside the check."""


def _run(backend: LoadedBackend, dtype: Any, name: str) -> list[Measure]:
    from sdeve.samplers import sigma_space  # noqa: PLC0415

    sampler, reference, options, evaluations = _cases()[name]
    rng = np.random.default_rng(7)
    start = rng.standard_normal(SHAPE) * LEVELS[0]
    noises = [rng.standard_normal(SHAPE) for _ in range(2 * len(LEVELS))]
    expected = reference(_den, start, list(LEVELS), iter(noises), **options)
    draws = iter(noises)
    x = backend.asarray(start, dtype)
    out = getattr(sigma_space, f"sample_{sampler}")(_score, x, LEVELS, noise=lambda like: backend.asarray(
        next(draws), like.dtype), **options)
    check_meta(out, x)
    scale = np.full(SHAPE, float(np.max(np.abs(expected))))
    return [Measure(f"sigma_{name}", max_relative_error(out, expected, scale, dtype=dtype),
                    evaluations * rtol_for(dtype), f"{len(LEVELS) - 1} steps")]


def _register(name: str) -> None:
    def run(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
        if dtype_label in HALF_PRECISION:
            raise NotApplicable("the sigma-space samplers compute in the sample's dtype; half precision unchecked")
        return _run(backend, dtype, name)

    run.__doc__ = f"sdeve's {name} sampler, {len(LEVELS) - 1} steps, against the float64 reference."
    check(f"sigma_{name}", applies=_applies)(run)


for _name in _cases():
    _register(_name)


@check("sigma_adaptive_sde", dtypes="schedule")
def check_adaptive(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """Gotta Go Fast (per-example steps) against the float64 reference; float64 only, where accept/reject
    decisions do not depend on rounding."""
    from sdeve.samplers import adaptive  # noqa: PLC0415

    if dtype_label != "float64":
        raise NotApplicable("accept/reject decisions follow rounding: compared in float64 only")
    rng = np.random.default_rng(8)
    start = rng.standard_normal(SHAPE) * 10.0
    noises = [rng.standard_normal(SHAPE) for _ in range(500)]
    expected = ref_adaptive(_score64, start, [10.0, 0.05, 0.0], iter(noises), rtol=0.1)
    draws = iter(noises)
    x = backend.asarray(start, dtype)
    out = adaptive.sample_adaptive_sde(_score, x, [10.0, 0.05, 0.0], rtol=0.1,
                                       noise=lambda like: backend.asarray(next(draws), like.dtype))
    check_meta(out, x)
    scale = np.full(SHAPE, float(np.max(np.abs(expected))))
    return [Measure("sigma_adaptive_sde", max_relative_error(out, expected, scale, dtype=dtype),
                    100 * rtol_for(dtype), "rtol 0.1")]
