"""NumPy adapter (``numpy.random.Generator`` or an int seed) and the NumPy-bound scheduler."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdeve import BackendBase, register_backend
from sdeve import ScoreSdeVeScheduler as _CoreScheduler

from .generic import numpy_generator, numpy_standard_normal

__all__ = ["ADAPTER", "BACKEND", "NumpyBackend", "ScoreSdeVeScheduler"]


class NumpyBackend(BackendBase):
    """Noise from ``numpy.random.Generator`` (or ``RandomState``, an int seed, or ``None`` for fresh entropy)."""

    name = "numpy"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return numpy_generator(generator)

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None,
               like: Any = None) -> np.ndarray:
        if device not in (None, "cpu"):
            raise ValueError(f"NumPy arrays live on 'cpu', got device={device!r}")
        return numpy_standard_normal(numpy_generator(source), shape, dtype)

    def readable(self, x: Any) -> bool:
        return True


BACKEND = ADAPTER = NumpyBackend()
# Imported, the adapter is also registered, so that a first lookup needs no entry-point scan (which
# torch.compile cannot trace).
register_backend("numpy", BACKEND)


class ScoreSdeVeScheduler(_CoreScheduler):
    """:class:`sdeve.ScoreSdeVeScheduler` with its schedule in NumPy (float64) and NumPy generators."""

    _bound_namespace = "numpy"
