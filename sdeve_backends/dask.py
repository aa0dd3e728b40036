"""Dask: noise from ``dask.array.random.default_rng`` with chunks that follow the sample's."""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np

from ._base import Adapter

__all__ = ["ADAPTER", "DaskAdapter"]


def _generator(generator: Any) -> Any:
    if isinstance(generator, da.random.Generator):
        return generator
    if generator is None or isinstance(generator, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return da.random.default_rng(generator)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return da.random.default_rng(int(generator))
    raise TypeError(
        f"expected a dask.array.random.Generator (dask.array.random.default_rng), a NumPy generator, an int seed "
        f"or None, got {type(generator).__name__}"
    )


class DaskAdapter(Adapter):
    """Lazy standard-normal noise, chunked like the sample it is for."""

    name = "dask"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return _generator(generator)

    def settle(self, *arrays: da.Array) -> tuple[da.Array, ...]:
        """Called by :func:`sdeve.sample` after every timestep: compute the step into memory (one ``persist``
        for all, chunks kept), so that a loop of N steps builds N small graphs rather than one graph that
        grows with every step (building that one is quadratic in N)."""
        return tuple(dask.persist(*arrays))

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> da.Array:
        if any(s is None or (isinstance(s, float) and math.isnan(s)) for s in shape):
            raise ValueError(f"cannot draw noise for a Dask array of unknown shape {shape}; call compute_chunk_sizes() first")
        dtype = np.dtype(dtype)
        draw_dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        chunks = like.chunks if like is not None and hasattr(like, "chunks") else "auto"
        noise = _generator(generator).standard_normal(size=tuple(shape), chunks=chunks, dtype=draw_dtype)
        return noise if noise.dtype == dtype else noise.astype(dtype)


ADAPTER = DaskAdapter()
