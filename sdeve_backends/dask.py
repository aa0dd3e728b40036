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

    def corrector_update(
        self, sample: Any, model_output: Any, noise: Any, snr: float, *, norm: str, owns_noise: bool,
        generator: Any = None,
    ) -> tuple[da.Array, da.Array] | None:
        """The batch-rule corrector with its elementwise pass fused into one NumPy kernel per chunk.

        The step size needs two batch norms, so the step is a reduction and then an elementwise pass; written
        as array expressions, that pass makes four temporaries per chunk. Here it makes two (measured at
        16 MiB in 4 chunks: 1.32x -> 1.17x of the floor). Same formulas and rounding as
        :func:`sdeve.updates.corrector_update`; half precision and per-example norms go to the core.
        """
        dtype = np.dtype(sample.dtype)
        if (
            noise is None or norm != "batch" or sample.ndim < 2 or dtype not in (np.float32, np.float64)
            or model_output.dtype != dtype or noise.dtype != dtype
            or not (sample.chunks == model_output.chunks == noise.chunks)
        ):
            return None
        axes = tuple(range(1, sample.ndim))
        grad_norm = da.sqrt(da.sum(model_output * model_output, axis=axes)).mean()
        noise_norm = da.sqrt(da.sum(noise * noise, axis=axes)).mean()
        positive = grad_norm > 0
        step = da.where(positive, (float(snr) * noise_norm / da.where(positive, grad_norm, 1.0)) ** 2 * 2, 0.0)
        coefficients = da.stack([step, (step * 2) ** 0.5]).astype(dtype)
        index = "abcdefghijklmnopqrstuvwxy"[: sample.ndim]
        prev = da.blockwise(
            _corrector_block, index, sample, index, model_output, index, noise, index, coefficients, "z",
            dtype=dtype, concatenate=True,
        )
        prev_mean = sample + coefficients[0] * model_output  # lazy: computed only if asked for
        return prev, prev_mean

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> da.Array:
        if any(s is None or (isinstance(s, float) and math.isnan(s)) for s in shape):
            raise ValueError(f"cannot draw noise for a Dask array of unknown shape {shape}; call compute_chunk_sizes() first")
        dtype = np.dtype(dtype)
        draw_dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        chunks = like.chunks if like is not None and hasattr(like, "chunks") else "auto"
        noise = _generator(generator).standard_normal(size=tuple(shape), chunks=chunks, dtype=draw_dtype)
        return noise if noise.dtype == dtype else noise.astype(dtype)


def _corrector_block(x: np.ndarray, model_output: np.ndarray, noise: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``(x + c0 * model_output) + c1 * noise`` for one chunk, in the core's order of operations."""
    out = np.multiply(model_output, coefficients[0])
    out += x
    out += np.multiply(noise, coefficients[1])
    return out


ADAPTER = DaskAdapter()
