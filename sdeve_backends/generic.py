"""The adapter for array-API namespaces with none of their own (``array_api_strict`` and any other), and the
NumPy generator helpers the NumPy-fed adapters share."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdeve import BackendBase
from sdeve.validation import check_seed
from sdeve._xp import Array, Namespace

__all__ = ["GenericBackend", "numpy_generator", "numpy_standard_normal"]


def numpy_generator(generator: Any) -> Any:
    """A ``numpy.random.Generator`` from ``None`` (fresh entropy), an int seed, a ``Generator`` or ``RandomState``."""
    if generator is None:
        return np.random.default_rng()
    if isinstance(generator, (np.random.Generator, np.random.RandomState)):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(check_seed(generator))
    if isinstance(generator, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(generator)
    raise TypeError(
        f"expected a numpy.random.Generator, a RandomState, an int seed or None, got {type(generator).__name__}"
    )


def numpy_standard_normal(rng: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard normals from a NumPy generator in ``dtype`` (float32/64 drawn natively, others cast)."""
    dtype = np.dtype(dtype)
    if isinstance(rng, np.random.Generator) and dtype in (np.float32, np.float64):
        return rng.standard_normal(shape, dtype=dtype)
    return np.asarray(rng.standard_normal(shape)).astype(dtype, copy=False)


class GenericBackend(BackendBase):
    """NumPy draws moved in with ``xp.asarray``. ``generator`` is anything :func:`numpy_generator` accepts."""

    name = "array_api"

    def __init__(self, xp: Namespace) -> None:
        self.xp = xp

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return numpy_generator(generator)

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None,
               like: Array | None = None) -> Array:
        xp = self.xp
        host_dtype = np.float64 if dtype == xp.float64 else np.float32
        draws = numpy_standard_normal(numpy_generator(source), shape, host_dtype)
        out = xp.asarray(draws, device=device) if device is not None else xp.asarray(draws)
        return out if out.dtype == dtype else xp.astype(out, dtype)
