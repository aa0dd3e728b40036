"""The one table of tolerances, derived from each dtype's machine epsilon, and the one assertion helper.

``rtol(dtype) = FACTOR * eps(dtype)``. The updates are a handful of elementwise operations and two norms:
each output is a sum of a few rounded terms, so a few ulps of the largest term bound the error; FACTOR
leaves room for the reduction order of the norms (pairwise in NumPy, blocked in torch and XLA) and for
fused multiply-adds. Errors are measured relative to the largest magnitude of the terms (``scale``), not
elementwise, because ``x + g^2 * s`` can cancel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EPS", "FACTOR", "TOLERANCES", "assert_close", "rtol_for"]

EPS: dict[str, float] = {
    "float16": float(np.finfo(np.float16).eps),  # 9.77e-4
    "bfloat16": 2.0**-7,  # 7.81e-3
    "float32": float(np.finfo(np.float32).eps),  # 1.19e-7
    "float64": float(np.finfo(np.float64).eps),  # 2.22e-16
}

FACTOR = 16.0

TOLERANCES: dict[str, float] = {name: FACTOR * eps for name, eps in EPS.items()}


def dtype_name(dtype: Any) -> str:
    """``"float32"`` etc. for a dtype of any library."""
    text = str(dtype).rsplit(".", 1)[-1]
    for name in EPS:
        if name in text:
            return name
    raise ValueError(f"not a floating dtype: {dtype}")


def rtol_for(dtype: Any) -> float:
    """The relative tolerance for results in ``dtype``."""
    return TOLERANCES[dtype_name(dtype)]


def assert_close(actual: Any, expected: np.ndarray, *, like: Any = None, rtol: float | None = None, scale: float | None = None) -> float:
    """Check namespace, shape, dtype and device of ``actual`` against ``like`` (the input it came from), then its
    values against the float64 ``expected``. Returns the max error relative to ``scale``
    (default: the largest ``|expected|``)."""
    import array_api_compat as compat

    if like is not None:
        a_ns, l_ns = compat.array_namespace(actual), compat.array_namespace(like)
        assert a_ns is l_ns, f"namespace {a_ns.__name__} != {l_ns.__name__}"
        assert tuple(actual.shape) == tuple(like.shape), f"shape {tuple(actual.shape)} != {tuple(like.shape)}"
        assert actual.dtype == like.dtype, f"dtype {actual.dtype} != {like.dtype}"
        if not compat.is_dask_array(actual):
            assert str(compat.device(actual)) == str(compat.device(like)), f"device {compat.device(actual)} != {compat.device(like)}"
    values = _to_numpy(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert values.shape == expected.shape, f"shape {values.shape} != {expected.shape}"
    tol = rtol_for(actual.dtype) if rtol is None else rtol
    ref_scale = float(np.max(np.abs(expected))) if scale is None else scale
    ref_scale = ref_scale if ref_scale > 0 else 1.0
    err = float(np.max(np.abs(values - expected))) / ref_scale if values.size else 0.0
    assert np.all(np.isfinite(values)) == np.all(np.isfinite(expected)), "non-finite values differ"
    assert err <= tol, f"max relative error {err:.3e} > tolerance {tol:.3e} (dtype {actual.dtype})"
    return err


def _to_numpy(x: Any) -> np.ndarray:
    import array_api_compat as compat

    if compat.is_torch_array(x):
        return x.detach().to("cpu").double().numpy()
    if compat.is_cupy_array(x):
        return x.get().astype(np.float64)
    if compat.is_dask_array(x):
        return np.asarray(x.compute()).astype(np.float64)
    if compat.is_array_api_strict_array(x):
        import array_api_strict as s

        return np.asarray(s.astype(x, s.float64))
    return np.asarray(x).astype(np.float64)
