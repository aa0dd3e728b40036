"""A lazy array-API namespace of the tests' own making, and a third-party adapter for it.

``lazyxp`` wraps ``array_api_strict``: every function and operator works, but an array refuses to give up its
value (``bool``, ``float``, ``int``, ``__index__``, ``tolist``, ``__array__``, ``__dlpack__``), as a future or a
traced value would until it is computed. ``value(x)`` is the escape hatch the tests use at the end.
``BACKEND`` is its adapter, as a third-party library would ship it (``register_backend`` or an entry point).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import array_api_strict as strict
import numpy as np

from sdeve import BackendBase

__all__ = ["BACKEND", "LazyArray", "lazyxp", "value", "wrap"]

_STRICT_ARRAY = type(strict.asarray(0.0))


class LazyArray:
    """An ``array_api_strict`` array that cannot be read."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __array_namespace__(self, api_version: str | None = None) -> types.ModuleType:
        return lazyxp

    shape = property(lambda self: self._inner.shape)
    dtype = property(lambda self: self._inner.dtype)
    ndim = property(lambda self: self._inner.ndim)
    size = property(lambda self: self._inner.size)
    device = property(lambda self: self._inner.device)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("lazyxp arrays have no value until computed")

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __array__ = __dlpack__ = tolist = _refuse  # type: ignore[assignment]

    def __getitem__(self, key: Any) -> LazyArray:
        return LazyArray(self._inner[_unwrap(key)])

    def to_device(self, device: Any, /, stream: Any = None) -> LazyArray:
        return LazyArray(self._inner.to_device(device))


def _binary(name: str) -> Any:
    def op(self: LazyArray, other: Any) -> Any:
        return _wrap(getattr(self._inner, name)(_unwrap(other)))

    return op


for _name in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "floordiv", "rfloordiv", "pow",
              "rpow", "mod", "rmod", "gt", "ge", "lt", "le", "eq", "ne", "and", "rand", "or", "ror", "matmul"):
    setattr(LazyArray, f"__{_name}__", _binary(f"__{_name}__"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(LazyArray, f"__{_name}__", lambda self, _n=_name: LazyArray(getattr(self._inner, f"__{_n}__")()))


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, LazyArray):
        return obj._inner
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(v) for v in obj)
    return obj


def _wrap(obj: Any) -> Any:
    if isinstance(obj, _STRICT_ARRAY):
        return LazyArray(obj)
    if isinstance(obj, tuple):
        return tuple(_wrap(v) for v in obj)
    if isinstance(obj, list):
        return [_wrap(v) for v in obj]
    return obj


def _function(fn: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    return call


lazyxp = types.ModuleType("lazyxp", "a lazy array-API namespace (tests only)")
for _name in dir(strict):
    if _name.startswith("_") and _name != "__array_namespace_info__":
        continue
    _obj = getattr(strict, _name)
    setattr(lazyxp, _name, _function(_obj) if callable(_obj) and not isinstance(_obj, type) else _obj)
lazyxp.__array_api_version__ = strict.__array_api_version__  # type: ignore[attr-defined]
sys.modules.setdefault("lazyxp", lazyxp)


def wrap(values: Any, dtype: Any = None) -> LazyArray:
    """NumPy values as a lazy array."""
    return LazyArray(strict.asarray(np.asarray(values), dtype=dtype))


def value(x: LazyArray) -> np.ndarray:
    """The value of a lazy array, computed (what a lazy library's ``compute()`` would be)."""
    return np.asarray(x._inner)


class LazyBackend(BackendBase):
    """The adapter a third party ships for ``lazyxp``: NumPy draws, wrapped; never reads a value."""

    name = "lazyxp"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> Any:
        draws = self.make_generator(source).standard_normal(shape)
        return lazyxp.astype(wrap(draws), dtype)


BACKEND = LazyBackend()
