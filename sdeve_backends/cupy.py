"""CuPy: noise from ``cupy.random.Generator`` on the sample's GPU, and the CuPy-bound scheduler."""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from sdeve import BackendBase, register_backend
from sdeve.validation import check_seed
from sdeve import ScoreSdeVeScheduler as _CoreScheduler

__all__ = ["ADAPTER", "BACKEND", "CupyBackend", "ScoreSdeVeScheduler"]


def _generator(generator: Any) -> Any:
    if generator is None:
        return cupy.random.default_rng()
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return cupy.random.default_rng(check_seed(generator))
    if isinstance(generator, (cupy.random.Generator, cupy.random.RandomState)):
        return generator
    raise TypeError(f"expected a cupy.random.Generator, an int seed or None, got {type(generator).__name__}")


class CupyBackend(BackendBase):
    """Noise from ``cupy.random.Generator`` (or an int seed; ``None`` for fresh entropy), on ``device``. Values
    live on the GPU: a read would synchronise, so none is read."""

    name = "cupy"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        with (device if isinstance(device, cupy.cuda.Device) else cupy.cuda.Device()):
            return _generator(generator)

    def readable(self, x: Any) -> bool:
        return False

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> Any:
        dtype = np.dtype(dtype)
        draw_dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        with (device if isinstance(device, cupy.cuda.Device) else cupy.cuda.Device()):
            noise = _generator(source).standard_normal(tuple(shape), dtype=draw_dtype)
            return noise if noise.dtype == dtype else noise.astype(dtype)


BACKEND = ADAPTER = CupyBackend()
# Imported, the adapter is also registered, so that a first lookup needs no entry-point scan (which
# torch.compile cannot trace).
register_backend("cupy", BACKEND)


class ScoreSdeVeScheduler(_CoreScheduler):
    """:class:`sdeve.ScoreSdeVeScheduler` with its schedule in CuPy (float64, on the GPU) and CuPy generators."""

    _bound_namespace = "cupy"
