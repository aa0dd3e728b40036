"""NumPy adapter (``numpy.random.Generator`` or an int seed) and the NumPy-bound scheduler."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdeve.scheduler import ScoreSdeVeScheduler as _CoreScheduler

from ._base import Adapter, numpy_generator, numpy_standard_normal

__all__ = ["ADAPTER", "NumpyAdapter", "ScoreSdeVeScheduler"]


class NumpyAdapter(Adapter):
    """Noise from ``numpy.random.Generator`` (or ``RandomState``, an int seed, or ``None`` for fresh entropy)."""

    name = "numpy"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return numpy_generator(generator)

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> np.ndarray:
        if device not in (None, "cpu"):
            raise ValueError(f"NumPy arrays live on 'cpu', got device={device!r}")
        return numpy_standard_normal(numpy_generator(generator), shape, dtype)


ADAPTER = NumpyAdapter()


class ScoreSdeVeScheduler(_CoreScheduler):
    """:class:`sdeve.ScoreSdeVeScheduler` with its schedule in NumPy (float64) and NumPy generators."""

    _bound_namespace = "numpy"
