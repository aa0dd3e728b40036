"""Checks on user input shared by every front end. Each raises ``TypeError``/``ValueError`` saying what was
expected; none reads an array's values unless that is a cheap host operation."""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Any

import array_api_compat

from ._xp import Array, Namespace, array_namespace, compute_dtype

__all__ = ["MAX_SEED", "as_float", "batch_size", "check_float_array", "check_levels_fit", "check_pair", "check_seed", "check_sigma_max",
           "check_unit_interval", "is_python_scalar"]


def is_python_scalar(value: Any) -> bool:
    """True for Python/NumPy real scalars and ``Decimal`` (not bools, not arrays)."""
    if type(value) is float or type(value) is int:  # the common case, without the ABC checks below
        return True
    # NumPy 2 scalars carry __array_namespace__ but are numbers, usable with any library's samples.
    # (NumPy's bool_ is not a numbers.Real; array-api-compat tells NumPy scalars apart without importing NumPy.)
    real = isinstance(value, (numbers.Real, decimal.Decimal))
    return (real and not isinstance(value, bool) and getattr(value, "ndim", 0) == 0
            and (array_api_compat.is_numpy_array(value) or not hasattr(value, "__array_namespace__")))


def as_float(value: Any, name: str) -> float:
    """A real number as a Python float; ``ValueError`` naming ``name`` for one beyond the float range."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} is beyond the float range") from None


def batch_size(x: Array, name: str = "sample") -> int:
    """The batch size ``x.shape[0]``; ``ValueError`` for 0-d arrays or an unknown (lazy Dask) batch size."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have rank >= 1 with the batch first, got a 0-d array")
    size = x.shape[0]
    if size is None or (isinstance(size, float) and math.isnan(size)):
        raise ValueError(
            f"{name} has an unknown batch size (shape {x.shape}); call .compute_chunk_sizes() on the Dask array first"
        )
    return int(size)


def check_float_array(x: Array, name: str, *, xp: Namespace) -> None:
    """``TypeError`` unless ``x`` has a real floating dtype (float16, bfloat16, float32, float64)."""
    try:
        ok = xp.isdtype(x.dtype, "real floating")
    except Exception:
        ok = False
    if not ok:
        raise TypeError(f"{name} must have a real floating dtype (float16/bfloat16/float32/float64), got {x.dtype}")


# (types, dtypes) that passed the namespace and dtype checks: those depend on nothing else, and the checks
# cost microseconds on every step.
_CHECKED_PAIRS: dict[tuple[Any, ...], Namespace] = {}


def check_pair(model_output: Array, sample: Array, name: str = "model_output") -> Namespace:
    """Check ``model_output`` (called ``name`` in messages: ``noise``, ``init``...) and ``sample`` for a step
    and return their namespace.

    Both must be arrays of one library with equal shapes of rank >= 1 (batch first) and real floating dtypes.
    """
    key = (type(model_output), type(sample), getattr(model_output, "dtype", None), getattr(sample, "dtype", None))
    xp = _CHECKED_PAIRS.get(key)
    if xp is None:
        for label, value in ((name, model_output), ("sample", sample)):
            if not hasattr(value, "shape") or not hasattr(value, "dtype"):
                raise TypeError(f"{label} must be an array, got {type(value).__name__}")
        try:
            xp = array_namespace(model_output, sample)
        except TypeError as exc:
            raise TypeError(f"{name} and sample must be arrays of one library: {exc}") from None
        check_float_array(sample, "sample", xp=xp)
        check_float_array(model_output, name, xp=xp)
        for label, value in ((name, model_output), ("sample", sample)):
            _check_plain(value, label)
        if len(_CHECKED_PAIRS) > 256:  # array types made on the fly must not grow this without end
            _CHECKED_PAIRS.clear()
        _CHECKED_PAIRS[key] = xp
    batch_size(sample)
    if model_output.shape != sample.shape and tuple(model_output.shape) != tuple(sample.shape):
        raise ValueError(f"{name} and sample must have the same shape, got {tuple(model_output.shape)} and {tuple(sample.shape)}")
    return xp


def _check_plain(x: Array, name: str) -> None:
    """``TypeError`` for a NumPy ndarray subclass (``np.matrix``'s ``*`` is a matrix product): convert first."""
    cls = type(x)
    if array_api_compat.is_numpy_array(x) and not (cls.__name__ == "ndarray" and cls.__module__ == "numpy"):
        raise TypeError(f"{name} is a {cls.__module__}.{cls.__name__}, an ndarray subclass: pass numpy.asarray({name})")


def check_levels_fit(sigma_min: float, sigma_max: float, dtype: Any, *, xp: Namespace) -> None:
    """``ValueError`` unless samples of ``dtype`` can hold the levels: the model is given them in ``dtype`` (so
    ``sigma_min`` must be a normal number there), and the updates square ``sigma_max`` (:func:`check_sigma_max`)."""
    tiny = float(xp.finfo(dtype).smallest_normal)
    if sigma_min < tiny:
        raise ValueError(f"sigma_min={sigma_min:g} is below the smallest normal {dtype_name(dtype)} ({tiny:g}): "
                         "sample in a wider dtype")
    check_sigma_max(sigma_max, dtype, xp=xp)


def check_sigma_max(sigma_max: float, dtype: Any, *, xp: Namespace) -> None:
    """``ValueError`` unless ``sigma_max`` fits samples of ``dtype``: representable there, and ``sigma_max**2``
    finite in the compute dtype with two decades of room for the score's magnitude."""
    wide = float(xp.finfo(compute_dtype(xp, dtype)).max)
    limit = min(float(xp.finfo(dtype).max), math.sqrt(wide) / 100)
    if sigma_max > limit:
        raise ValueError(f"sigma_max={sigma_max:g} is too large for {dtype_name(dtype)} samples (at most "
                         f"{limit:.3g}, so that sigma_max**2 stays finite): sample in a wider dtype")


def dtype_name(dtype: Any) -> str:
    """A dtype as people write it: ``float32``, ``torch.bfloat16``..."""
    return str(getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or dtype)


def check_unit_interval(t: Any, name: str = "timestep", *, readable: bool = False) -> None:
    """``ValueError`` unless every value of ``t`` lies in ``[0, 1]`` (NaN included). An array is read only when
    the caller says that is cheap (``readable``: concrete, in host memory)."""
    if is_python_scalar(t):
        value = as_float(t, name)
        if not (0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be a continuous time in [0, 1], got {value}")
        return
    if readable:
        xp = array_namespace(t)
        if t.ndim and t.shape[0] == 0:
            return
        # bool() of a 0-d host array is the one cheap read this check makes.
        inside = xp.all((t >= 0) & (t <= 1))
        if not bool(inside):
            raise ValueError(f"{name} must be a continuous time in [0, 1], got values outside it")


# Int seeds every backend takes: JAX's PRNGKey needs a signed 64-bit integer.
MAX_SEED = 2**63 - 1


def check_seed(seed: Any) -> int:
    """An int seed (Python or NumPy int, not bool) as an ``int`` in ``[0, 2**63 - 1]``; ``ValueError`` outside."""
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        shown = value if abs(value) < 10**30 else "a larger number"
        raise ValueError(f"an int seed (generator) must lie in [0, 2**63 - 1], got {shown}")
    return value
