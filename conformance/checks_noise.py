"""Each adapter's own noise: shape, dtype and device; standard normal; reproducible; different across seeds.

The noise comes from ``sdeve_backends.noise_like`` with the framework's own generator type (a NumPy
``Generator``, a ``torch.Generator``, a JAX key, a Dask ``Generator``, a CuPy ``Generator``; an int seed
too). Every seed is fixed, so a run is deterministic and a statistical test that passes keeps passing.

Thresholds live with the other tolerances in :mod:`conformance.tolerances`.

- moments: the mean, variance, skewness and excess kurtosis of ``n = 131072`` draws, each as a z-score
  against its standard error under N(0, 1) (``1/sqrt(n)``, ``sqrt(2/n)``, ``sqrt(6/n)``, ``sqrt(24/n)``);
  tolerance 5 standard errors;
- Kolmogorov-Smirnov against N(0, 1) at significance ``ALPHA = 1e-3``: the statistic ``D`` must stay below
  the critical value ``kstwo.ppf(1 - ALPHA, n)`` (5.4e-3 here). Rounding to bfloat16 moves the empirical CDF
  by at most ``pdf * spacing / 2 ~ 1.6e-3``, well inside it;
- reproducible: two fresh generators with the same seed (and the same int seed twice) give identical noise;
- seeds differ: seeds 0 and 1 agree on fewer than 1% of the elements (two independent bfloat16 normals
  coincide with probability ~1e-3; float32 ones essentially never).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import LoadedBackend
from .registry import Measure, check
from .tolerances import NOISE_ALPHA, NOISE_MOMENT_Z, NOISE_SEED_OVERLAP, check_meta, to_numpy

__all__ = ["ALPHA", "NOISE_SHAPE", "generator_factory"]

ALPHA, MOMENT_Z, SEED_OVERLAP = NOISE_ALPHA, NOISE_MOMENT_Z, NOISE_SEED_OVERLAP
NOISE_SHAPE = (64, 2048)  # 131072 draws; rank 2 so that Dask chunks and torch strides are exercised


def generator_factory(backend: LoadedBackend) -> Callable[[int], Any]:
    """``seed -> a fresh generator of the backend framework's own type``."""
    module = backend.backend.module
    if module == "torch":
        import torch

        device = backend.device if backend.device is not None else "cpu"
        return lambda seed: torch.Generator(device=device).manual_seed(seed)
    if module == "jax.numpy":
        import jax

        return lambda seed: jax.random.key(seed)
    if module == "dask.array":
        import dask.array as da

        return lambda seed: da.random.default_rng(seed)
    if module == "cupy":
        import cupy

        return lambda seed: cupy.random.default_rng(seed)
    return lambda seed: np.random.default_rng(seed)  # numpy, and the NumPy-drawing fallback (array_api_strict)


def _draw(generator: Any, like: Any) -> Any:
    from sdeve_backends import noise_like

    return noise_like(generator, like)


def moment_z_scores(values: np.ndarray) -> dict[str, float]:
    """z-scores of the first four sample moments against N(0, 1)."""
    n = values.size
    v = values.ravel()
    mean = float(np.mean(v))
    centred = v - mean
    var = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / var**1.5
    kurt = float(np.mean(centred**4)) / var**2 - 3.0
    return {
        "mean": mean * np.sqrt(n),
        "var": (var - 1.0) / np.sqrt(2.0 / n),
        "skew": skew / np.sqrt(6.0 / n),
        "kurt": kurt / np.sqrt(24.0 / n),
    }


@check("noise")
def check_noise(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """The adapter's noise for samples of this backend and dtype."""
    from scipy import stats

    make = generator_factory(backend)
    like = backend.asarray(np.zeros(NOISE_SHAPE), dtype)
    noise = _draw(make(0), like)
    check_meta(noise, like)
    values = to_numpy(noise)
    z = moment_z_scores(values)
    worst_moment = max(z, key=lambda k: abs(z[k]))
    ks = stats.kstest(values.ravel(), "norm")
    critical = float(stats.kstwo.ppf(1.0 - ALPHA, values.size))
    again = to_numpy(_draw(make(0), like))
    by_int = [to_numpy(_draw(7, like)) for _ in range(2)]
    changed = int(np.sum(again != values)) + int(np.sum(by_int[0] != by_int[1]))
    other = to_numpy(_draw(make(1), like))
    overlap = float(np.mean(other == values))
    return [
        Measure("noise.meta", 0.0, 0.0, detail=f"{tuple(noise.shape)} {noise.dtype}"),
        Measure("noise.moments", abs(z[worst_moment]), MOMENT_Z, detail=f"worst: {worst_moment} z={z[worst_moment]:+.2f}"),
        Measure("noise.ks", float(ks.statistic), critical, detail=f"p={ks.pvalue:.3f}, alpha={ALPHA:g}, n={values.size}"),
        Measure("noise.reproducible", float(changed), 0.0, detail="same seed, generator and int"),
        Measure("noise.seeds_differ", overlap, SEED_OVERLAP, detail="fraction equal, seeds 0 and 1"),
    ]
