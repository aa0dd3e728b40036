"""CuPy: noise from ``cupy.random.Generator`` on the sample's GPU, and the CuPy-bound scheduler."""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from sdeve.scheduler import ScoreSdeVeScheduler as _CoreScheduler

from ._base import Adapter

__all__ = ["ADAPTER", "CupyAdapter", "ScoreSdeVeScheduler"]


def _generator(generator: Any) -> Any:
    if generator is None:
        return cupy.random.default_rng()
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return cupy.random.default_rng(int(generator))
    if isinstance(generator, (cupy.random.Generator, cupy.random.RandomState)):
        return generator
    raise TypeError(f"expected a cupy.random.Generator, an int seed or None, got {type(generator).__name__}")


class CupyAdapter(Adapter):
    """Noise from ``cupy.random.Generator`` (or an int seed; ``None`` for fresh entropy), on ``device``."""

    name = "cupy"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        with (device if isinstance(device, cupy.cuda.Device) else cupy.cuda.Device()):
            return _generator(generator)

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> Any:
        dtype = np.dtype(dtype)
        draw_dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        with (device if isinstance(device, cupy.cuda.Device) else cupy.cuda.Device()):
            rng = _generator(generator)
            if isinstance(rng, cupy.random.Generator):
                noise = rng.standard_normal(tuple(shape), dtype=draw_dtype)
            else:
                noise = rng.standard_normal(tuple(shape), dtype=draw_dtype)
            return noise if noise.dtype == dtype else noise.astype(dtype)


ADAPTER = CupyAdapter()


class ScoreSdeVeScheduler(_CoreScheduler):
    """:class:`sdeve.ScoreSdeVeScheduler` with its schedule in CuPy (float64, on the GPU) and CuPy generators."""

    _bound_namespace = "cupy"
