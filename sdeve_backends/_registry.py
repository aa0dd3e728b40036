"""Find the adapter for an array or a namespace, importing a framework only when one of its arrays is seen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat as compat

from ._base import Adapter, FallbackAdapter

__all__ = ["adapter_for", "adapter_names", "noise_like"]

# name -> (array test, namespace test, module holding ADAPTER). The tests come from array-api-compat, which
# looks in sys.modules and so never imports a framework to answer.
_ADAPTERS: dict[str, tuple[Callable[[Any], bool], Callable[[Any], bool], str]] = {
    "numpy": (compat.is_numpy_array, compat.is_numpy_namespace, "sdeve_backends.numpy"),
    "torch": (compat.is_torch_array, compat.is_torch_namespace, "sdeve_backends.torch"),
    "jax": (compat.is_jax_array, compat.is_jax_namespace, "sdeve_backends.jax"),
    "cupy": (compat.is_cupy_array, compat.is_cupy_namespace, "sdeve_backends.cupy"),
    "dask": (compat.is_dask_array, compat.is_dask_namespace, "sdeve_backends.dask"),
}


# Looked up on every step: the adapter depends only on the array's type.
_ADAPTER_BY_TYPE: dict[type, Adapter] = {}


def adapter_names() -> tuple[str, ...]:
    """Frameworks with an adapter of their own."""
    return tuple(_ADAPTERS)


def _load(name: str) -> Adapter:
    module = importlib.import_module(_ADAPTERS[name][2])
    adapter: Adapter = module.ADAPTER
    return adapter


def adapter_for(obj: Any) -> Adapter:
    """The adapter for an array, a namespace module, or a framework name (``"torch"``...).

    A namespace with no adapter of its own (``array_api_strict`` and any other) gets a
    :class:`~sdeve_backends._base.FallbackAdapter`: NumPy draws moved in with ``xp.asarray``.
    """
    if isinstance(obj, str):
        key = {"jax.numpy": "jax", "dask.array": "dask"}.get(obj, obj)
        if key in _ADAPTERS:
            return _load(key)
        from sdeve._xp import resolve_namespace  # noqa: PLC0415

        return FallbackAdapter(resolve_namespace(obj))
    if isinstance(obj, ModuleType):
        for name, (_, is_namespace, _) in _ADAPTERS.items():
            if is_namespace(obj):
                return _load(name)
        return FallbackAdapter(obj)
    cached = _ADAPTER_BY_TYPE.get(type(obj))
    if cached is not None:
        return cached
    for name, (is_array, _, _) in _ADAPTERS.items():
        if is_array(obj):
            adapter = _load(name)
            break
    else:
        adapter = FallbackAdapter(compat.array_namespace(obj))
    _ADAPTER_BY_TYPE[type(obj)] = adapter
    return adapter


def noise_like(generator: Any, x: Any, *, dtype: Any = None) -> Any:
    """Standard-normal noise shaped like ``x`` (its device, and its dtype unless given), from ``generator``."""
    return adapter_for(x).normal_like(generator, x, dtype=dtype)
