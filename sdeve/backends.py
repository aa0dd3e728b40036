"""Find the adapter (:class:`sdeve.protocols.Backend`) for an array, a namespace or a library name.

Adapters are found through package entry points in the group ``sdeve.backends``, named by the array
library's top-level module (``numpy``, ``torch``, ``jax``, ``cupy``, ``dask``, ...): the core never imports
them. An entry point names either a :class:`~sdeve.protocols.Backend` instance, or a callable that takes the
array namespace and returns one. The entry point ``array_api`` is the adapter for namespaces with none of
their own (``array_api_strict`` and any other).

A third-party array library ships its own adapter without touching sdeve, in its ``pyproject.toml``::

    [project.entry-points."sdeve.backends"]
    mylib = "mylib_sdeve:BACKEND"

or registers one at run time with :func:`register_backend`.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat as compat

from ._xp import Namespace, resolve_namespace
from .protocols import Backend

__all__ = ["ENTRY_POINT_GROUP", "FALLBACK", "backend_for", "backend_names", "library_name", "register_backend"]

ENTRY_POINT_GROUP = "sdeve.backends"
FALLBACK = "array_api"

# array-api-compat answers from sys.modules, so asking never imports a framework.
_ARRAY_TESTS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("numpy", compat.is_numpy_array),
    ("torch", compat.is_torch_array),
    ("jax", compat.is_jax_array),
    ("cupy", compat.is_cupy_array),
    ("dask", compat.is_dask_array),
)
_NAMESPACE_TESTS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("numpy", compat.is_numpy_namespace),
    ("torch", compat.is_torch_namespace),
    ("jax", compat.is_jax_namespace),
    ("cupy", compat.is_cupy_namespace),
    ("dask", compat.is_dask_namespace),
)
_NAME_ALIASES = {"np": "numpy", "jnp": "jax", "jax.numpy": "jax", "dask.array": "dask"}

_registered: dict[str, Any] = {}
_loaded: dict[str, Backend] = {}
_by_type: dict[type, Backend] = {}
_lock = threading.Lock()


def library_name(obj: Any) -> str:
    """The library an array, a namespace module or a name belongs to: its top-level module name."""
    if isinstance(obj, str):
        name = _NAME_ALIASES.get(obj.lower(), obj.lower())
        return name.split(".")[0]
    tests = _NAMESPACE_TESTS if isinstance(obj, ModuleType) else _ARRAY_TESTS
    for name, test in tests:
        if test(obj):
            return name
    module = obj if isinstance(obj, ModuleType) else compat.array_namespace(obj)
    return str(module.__name__).split(".")[0]


def register_backend(name: str, backend: Backend | Callable[[Namespace], Backend]) -> None:
    """Use ``backend`` for the arrays of library ``name`` (its top-level module name), ahead of entry points.

    ``backend`` is an adapter, or a callable taking the namespace and returning one.
    """
    with _lock:
        _registered[name] = backend
        _loaded.pop(name, None)
        if not isinstance(backend, type) and isinstance(backend, Backend):
            _loaded[name] = backend
        _by_type.clear()


def backend_names() -> tuple[str, ...]:
    """The libraries with an adapter: registered at run time or through entry points."""
    points = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return tuple(sorted((points | set(_registered)) - {FALLBACK}))


def _entry_point(name: str) -> Any:
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        return point.load()
    return None


def _load(name: str, namespace: Callable[[], Namespace]) -> Backend:
    cached = _loaded.get(name)
    if cached is not None:
        return cached
    found = _registered.get(name)
    if found is None:
        found = _entry_point(name)
    if found is None:
        found = _entry_point(FALLBACK)
    if found is None:
        raise LookupError(
            f"no sdeve backend for {name!r}: install sdeve with its adapters (package sdeve_backends), or "
            f"register one with sdeve.backends.register_backend({name!r}, ...)"
        )
    backend: Backend = found(namespace()) if isinstance(found, type) or not isinstance(found, Backend) else found
    _loaded[name] = backend
    return backend


def backend_for(obj: Any) -> Backend:
    """The adapter for an array, a namespace module, or a library name (``"torch"``, ``"jax.numpy"``...)."""
    cached = _by_type.get(type(obj)) if not isinstance(obj, (str, ModuleType)) else None
    if cached is not None:
        return cached
    name = library_name(obj)
    if isinstance(obj, str):
        backend = _load(name, lambda: resolve_namespace(obj))
    elif isinstance(obj, ModuleType):
        backend = _load(name, lambda: resolve_namespace(obj))
    else:
        backend = _load(name, lambda: compat.array_namespace(obj))
        _by_type[type(obj)] = backend
    return backend
