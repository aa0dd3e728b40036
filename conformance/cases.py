"""The configurations, shapes and data the value checks run on: fixed, so that every run checks the same.

The configs span the ranges the suite promises: ``sigma_min`` 1e-4..1, ``sigma_max`` 1..1e4,
``num_inference_steps`` 1..10^4, several ``snr``, ``correct_steps`` 0..3, ``sampling_eps`` 1e-5..0.5. The
shapes have rank 1 to 5, batch 1 to 64, odd and size-1 axes. Each case also fixes how the timestep is passed
(a Python float, a 0-d array, or one per example) and how ``add_noise`` gets its index (an int or ``(B,)``).
The Hypothesis tests (``test_properties.py``) draw further configs, shapes and values around these.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from . import reference as ref

__all__ = ["CASES", "Case", "Data", "make_data"]

TimeKind = Literal["float", "array0", "batch"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One config, one sample shape, and the step positions checked."""

    name: str
    sigma_min: float
    sigma_max: float
    num_steps: int
    sampling_eps: float
    snr: float
    correct_steps: int
    shape: tuple[int, ...]
    time_kind: TimeKind
    seed: int

    def config(self) -> dict[str, float | int]:
        """Constructor arguments (``num_train_timesteps`` = the steps, so the schedule is built once)."""
        return {
            "num_train_timesteps": self.num_steps,
            "snr": self.snr,
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
            "sampling_eps": self.sampling_eps,
            "correct_steps": self.correct_steps,
        }

    def positions(self) -> tuple[int, ...]:
        """The schedule positions stepped from: first, middle, last (fewer for short schedules)."""
        n = self.num_steps
        return tuple(sorted({0, n // 2, n - 1}))


CASES: tuple[Case, ...] = (
    Case("default", 0.01, 1348.0, 10, 1e-5, 0.15, 1, (4, 3, 8, 8), "float", 0),
    Case("wide-N1e4", 1e-4, 1e4, 10_000, 1e-3, 0.3, 3, (64, 5), "batch", 1),
    Case("N1", 1.0, 10.0, 1, 1e-5, 0.05, 0, (1,), "float", 2),
    Case("N2-rank5", 1e-4, 1.0, 2, 0.5, 1.0, 2, (2, 3, 1, 4, 5), "batch", 3),
    Case("odd-rank3", 0.3, 50.0, 1000, 1e-5, 0.16, 1, (7, 1, 9), "array0", 4),
    Case("size1", 1e-2, 1e2, 100, 1e-5, 0.15, 0, (1, 1, 1, 1), "float", 5),
    Case("batch64-rank1", 0.01, 1348.0, 2000, 1e-5, 0.15, 1, (64,), "batch", 6),
    Case("rank5-odd", 0.05, 500.0, 37, 1e-2, 0.2, 3, (3, 5, 7, 1, 3), "array0", 7),
    Case("sigma1", 1e-3, 1.0, 500, 1e-5, 0.1, 2, (5, 2, 3), "float", 8),
)


@dataclasses.dataclass(frozen=True)
class Data:
    """Inputs in float64 for one step: ``t`` per example (``(B,)``), the levels it maps to, and arrays."""

    t: np.ndarray
    level: np.ndarray
    x: np.ndarray
    score: np.ndarray
    noise: tuple[np.ndarray, ...]


def make_data(case: Case, position: int, draws: int = 1) -> Data:
    """Sample, score and ``draws`` noise arrays for a step from schedule ``position``.

    The sample has the scale of the level it is at (``x ~ sigma N(0, I)``) and the score is that of a
    Gaussian of that scale, perturbed (``-x / sigma^2 + N(0, I) / (10 sigma)``), so that every term of every
    update has a realistic magnitude. With per-example times, each example is at its own position.
    """
    rng = np.random.default_rng(case.seed * 1009 + position)
    batch = case.shape[0]
    times = ref.timesteps(case.num_steps, case.sampling_eps)
    if case.time_kind == "batch":
        picks = rng.integers(0, case.num_steps, size=batch)
        picks[0] = position
        t = times[picks]
    else:
        t = np.full(batch, times[position])
    level = ref.discrete_sigmas(case.num_steps, case.sigma_min, case.sigma_max)[ref.index_of(t, case.num_steps)]
    per = level.reshape((batch,) + (1,) * (len(case.shape) - 1))
    x = rng.standard_normal(case.shape) * per
    score = -x / per**2 + rng.standard_normal(case.shape) / (10 * per)
    noise = tuple(rng.standard_normal(case.shape) for _ in range(draws))
    return Data(t, level, x, score, noise)
