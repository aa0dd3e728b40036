"""Dask: noise from ``dask.array.random.default_rng`` with chunks that follow the sample's, a fused
elementwise pass per chunk, and each step persisted so that a loop's graph does not grow."""

from __future__ import annotations

import math
import sys
from typing import Any

import dask
import dask.array as da
import numpy as np

from sdeve import BackendBase, register_backend
from sdeve.validation import check_seed

__all__ = ["ADAPTER", "BACKEND", "DaskBackend"]


def _generator(generator: Any) -> Any:
    if isinstance(generator, da.random.Generator):
        return generator
    if generator is None or isinstance(generator, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return da.random.default_rng(generator)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return da.random.default_rng(check_seed(generator))
    raise TypeError(
        f"expected a dask.array.random.Generator (dask.array.random.default_rng), a NumPy generator, an int seed "
        f"or None, got {type(generator).__name__}"
    )


def _wait_for(arrays: Any) -> None:
    """Block until the persisted ``arrays`` exist, when they live on a ``dask.distributed`` cluster."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return
    futures = distributed.futures_of(arrays)
    if futures:
        distributed.wait(futures)


def _block_norms(block: np.ndarray) -> np.ndarray:
    flat = block.reshape(block.shape[0], -1)
    return np.sqrt(np.einsum("ij,ij->i", flat, flat))


def _combine_block(x: np.ndarray, s: np.ndarray, z: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``(x + a*s) + b*z`` for one chunk, in the core's order of operations, with two temporaries."""
    out = np.multiply(s, coefficients[0])
    out += x
    out += np.multiply(z, coefficients[1])
    return out


class DaskBackend(BackendBase):
    """Lazy standard-normal noise chunked like the sample it is for; never reads a value."""

    name = "dask"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return _generator(generator)

    def readable(self, x: Any) -> bool:
        return False

    def settle(self, arrays: tuple[Any, ...], previous: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """Compute a step into memory (one ``persist`` for all, chunks kept), so that a loop of N steps builds
        N small graphs rather than one that grows with every step (building that one is quadratic in N).

        On a ``dask.distributed`` client ``persist`` returns at once; waiting there for the step before keeps two
        steps in flight, so the workers never draw and hold the noise of every step ahead.
        """
        settled = tuple(dask.persist(*arrays))
        _wait_for(previous)
        return settled

    def fori_loop(self, lower: int, upper: int, body: Any, carry: Any) -> Any:
        """A Python loop that settles the carry after every iteration (see :meth:`settle`)."""
        for i in range(lower, upper):
            (settled,) = dask.persist(body(i, carry))
            _wait_for(carry)
            carry = settled
        return carry

    def norms(self, x: Any) -> Any:
        """Per-example norms as one task a chunk (``sqrt`` of an ``einsum`` of the chunk with itself) where the
        non-batch axes are whole chunks; else the core's."""
        dtype = np.dtype(x.dtype)
        if x.ndim < 2 or dtype not in (np.float32, np.float64) or any(len(c) != 1 for c in x.chunks[1:]):
            return None
        return x.map_blocks(_block_norms, drop_axis=list(range(1, x.ndim)), dtype=dtype)

    def combine(self, x: Any, a: Any, s: Any, b: Any, z: Any, *, reuse: bool) -> tuple[Any, Any] | None:
        """:func:`sdeve.updates.combine` with the elementwise pass fused into one NumPy kernel per chunk (two
        temporaries per chunk instead of four). One coefficient pair for the batch (floats or 0-d arrays) in
        float32/float64 only; anything else goes to the core."""
        dtype = np.dtype(x.dtype)
        scalar = all(isinstance(c, float) or getattr(c, "ndim", 1) == 0 for c in (a, b))
        if (not scalar or x.ndim < 1 or dtype not in (np.float32, np.float64) or s.dtype != dtype
                or z.dtype != dtype or not (x.chunks == s.chunks == z.chunks)):
            return None
        coefficients = da.stack([da.asarray(a), da.asarray(b)]).astype(dtype)
        index = "abcdefghijklmnopqrstuvwxy"[: x.ndim]
        prev = da.blockwise(_combine_block, index, x, index, s, index, z, index, coefficients, "k",
                            dtype=dtype, concatenate=True)
        mean = x + coefficients[0] * s  # lazy: computed only if asked for
        return prev, mean

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> da.Array:
        if any(s is None or (isinstance(s, float) and math.isnan(s)) for s in shape):
            raise ValueError(f"cannot draw noise for a Dask array of unknown shape {shape}; call compute_chunk_sizes() first")
        dtype = np.dtype(dtype)
        draw_dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        chunks = like.chunks if like is not None and hasattr(like, "chunks") else "auto"
        noise = _generator(source).standard_normal(size=tuple(shape), chunks=chunks, dtype=draw_dtype)
        return noise if noise.dtype == dtype else noise.astype(dtype)


BACKEND = ADAPTER = DaskBackend()
# Imported, the adapter is also registered, so that a first lookup needs no entry-point scan (which
# torch.compile cannot trace).
register_backend("dask", BACKEND)
