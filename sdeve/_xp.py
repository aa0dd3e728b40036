"""Namespace, device and dtype helpers over ``array-api-compat``.

This is the only place where the core learns which array library it is talking to. It never imports a
framework itself: a namespace named by string is imported on request, through ``array-api-compat`` where
the library needs a compatibility wrapper.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import array_api_compat

__all__ = [
    "Array",
    "Namespace",
    "array_namespace",
    "compute_dtype",
    "default_float",
    "device_of",
    "has_float64",
    "index_dtype",
    "namespace_name",
    "resolve_namespace",
    "schedule_dtype",
    "to_device",
]

Array = Any
Namespace = Any

# A user may name a namespace; these are the modules behind each name. Wrapped libraries (NumPy, torch,
# CuPy, Dask) go through array-api-compat so that the core sees only standard functions.
_NAMESPACE_MODULES: dict[str, str] = {
    "numpy": "array_api_compat.numpy",
    "np": "array_api_compat.numpy",
    "torch": "array_api_compat.torch",
    "jax": "jax.numpy",
    "jax.numpy": "jax.numpy",
    "jnp": "jax.numpy",
    "cupy": "array_api_compat.cupy",
    "dask": "array_api_compat.dask.array",
    "dask.array": "array_api_compat.dask.array",
    "array_api_strict": "array_api_strict",
    "array_api_compat.numpy": "array_api_compat.numpy",
    "array_api_compat.torch": "array_api_compat.torch",
    "array_api_compat.cupy": "array_api_compat.cupy",
    "array_api_compat.dask.array": "array_api_compat.dask.array",
}

_MODULE_ALIASES: dict[str, str] = {
    "numpy": "numpy",
    "torch": "torch",
    "jax.numpy": "jax.numpy",
    "jax": "jax.numpy",
    "cupy": "cupy",
    "dask.array": "dask.array",
    "array_api_strict": "array_api_strict",
    "array_api_compat.numpy": "numpy",
    "array_api_compat.torch": "torch",
    "array_api_compat.cupy": "cupy",
    "array_api_compat.dask.array": "dask.array",
}


# array_namespace is on every step's path and costs microseconds; the answer depends only on the types.
_NAMESPACE_BY_TYPES: dict[tuple[type, ...], Namespace] = {}


def array_namespace(*arrays: Array) -> Namespace:
    """Return the standard namespace of ``arrays`` (all of one library), via ``array-api-compat``.

    Raises ``TypeError`` naming the types when the arrays come from different libraries or are not arrays.
    """
    types = tuple(type(a) for a in arrays)
    cached = _NAMESPACE_BY_TYPES.get(types)
    if cached is not None:
        return cached
    try:
        xp = array_api_compat.array_namespace(*arrays)
        if not any(isinstance(a, (int, float, complex, bool)) or a is None for a in arrays):
            _NAMESPACE_BY_TYPES[types] = xp
        return xp
    except TypeError as exc:
        kinds = ", ".join(sorted({f"{type(a).__module__}.{type(a).__name__}" for a in arrays}))
        raise TypeError(
            f"expected arrays of one supported array library (numpy, torch, jax, cupy, dask, or any "
            f"array-API namespace), got {kinds}: {exc}"
        ) from None


def resolve_namespace(xp: Namespace | str | None) -> Namespace:
    """Turn ``xp`` (a module such as ``numpy``/``torch``/``jax.numpy``, or its name) into a standard namespace.

    ``None`` means NumPy. A module that already is a standard namespace (``array_api_strict``, ``jax.numpy``,
    an ``array_api_compat`` wrapper) is returned as it is.
    """
    if xp is None:
        xp = "numpy"
    if isinstance(xp, str):
        target = _NAMESPACE_MODULES.get(xp.lower())
        if target is None:
            raise ValueError(
                f"unknown array namespace {xp!r}; expected one of {sorted(_NAMESPACE_MODULES)} or a module"
            )
        try:
            return importlib.import_module(target)
        except ImportError as exc:
            raise ImportError(f"namespace {xp!r} needs {target.split('.')[0]!r} installed: {exc}") from exc
    if isinstance(xp, ModuleType):
        name = xp.__name__
        if name in _NAMESPACE_MODULES and _NAMESPACE_MODULES[name] != name:
            return importlib.import_module(_NAMESPACE_MODULES[name])
        if hasattr(xp, "asarray") and hasattr(xp, "linspace"):
            return xp
    raise TypeError(f"expected an array namespace (a module or its name), got {xp!r}")


def namespace_name(xp: Namespace) -> str:
    """A short, stable name for a namespace: ``numpy``, ``torch``, ``jax.numpy``, ``cupy``, ``dask.array``..."""
    name = getattr(xp, "__name__", type(xp).__name__)
    return _MODULE_ALIASES.get(name, name)


def device_of(x: Array) -> Any:
    """The device of ``x`` (``None`` for a traced JAX value, as array-api-compat reports it)."""
    if array_api_compat.is_torch_array(x) or (array_api_compat.is_numpy_array(x) and hasattr(x, "device")):
        return x.device  # the standard attribute; array-api-compat's device() costs a few microseconds more
    try:
        return array_api_compat.device(x)
    except Exception:  # JAX tracers and exotic arrays: no concrete device
        return None


def to_device(x: Array, device: Any) -> Array:
    """Move ``x`` to ``device``; ``x`` itself when it is already there or ``device`` is ``None`` (so that a
    namespace without device control is never asked to move anything)."""
    if device is None or device_of(x) == device:
        return x
    return array_api_compat.to_device(x, device)


def has_float64(xp: Namespace, device: Any = None) -> bool:
    """Whether ``xp`` supports float64 on ``device`` (False for JAX without x64, or for torch on MPS)."""
    try:
        info = xp.__array_namespace_info__()
        return "float64" in info.dtypes(device=device, kind="real floating")
    except Exception:
        return hasattr(xp, "float64")


def schedule_dtype(xp: Namespace, device: Any = None) -> Any:
    """The dtype schedules are held in: float64 where the namespace and device have it, else float32."""
    return xp.float64 if has_float64(xp, device) else xp.float32


def index_dtype(xp: Namespace, device: Any = None) -> Any:
    """The namespace's default indexing dtype (int64, or int32 for JAX without x64)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
    except Exception:
        return xp.int64


def compute_dtype(xp: Namespace, dtype: Any) -> Any:
    """The dtype the updates compute in for samples of ``dtype``: ``dtype``, but at least float32.

    Half-precision samples are promoted so that coefficients such as ``sigma_max**2 ~ 1.8e6`` do not overflow
    float16 (max 65504) or lose their digits in bfloat16; the result is cast back to the sample's dtype. Wider
    dtypes (float64, NumPy's longdouble) compute in themselves.
    """
    if dtype == xp.float64 or dtype == xp.float32:
        return dtype
    try:
        narrow = xp.finfo(dtype).bits < 32
    except (TypeError, ValueError):
        narrow = True
    return xp.float32 if narrow else dtype


def default_float(xp: Namespace, device: Any = None) -> Any:
    """The namespace's default real floating dtype on ``device`` (float32 where the inspection API is missing)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
    except Exception:
        return xp.float32
