"""Conformance rows for Song et al.'s predictor-corrector pairs and the probability-flow ODE's fixed steps: each on
every backend and dtype against the float64 references of :mod:`conformance.reference` (``pc_run``,
``flow_run``), with the same noise.

The model is the exact score of standard normal data, ``-x / (1 + sigma^2)``, smooth, so the comparison measures
rounding. A run rounds each update's handful of operations once and carries earlier errors on with factors of at
most about 1 (the samplers contract towards the data): the tolerance is one update's (a corrector's includes its
step size's norms, :func:`~conformance.tolerances.corrector_rtol`) times the number of updates, relative to the
largest value of the reference run.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from . import reference as ref
from .backends import LoadedBackend
from .registry import Measure, NotApplicable, check, worst
from .tolerances import HALF_PRECISION, check_meta, corrector_rtol, max_relative_error, rtol_for

LEVELS = (30.0, 8.0, 2.0, 0.5, 0.1, 0.0)
SHAPE = (4, 3, 2)
PREDICTORS = ("reverse_diffusion", "euler_maruyama", "ancestral", "none")
CORRECTORS = ("langevin", "ald", "none")


def _score(x: Any, sigma: Any) -> Any:
    import array_api_compat  # noqa: PLC0415

    xp = array_api_compat.array_namespace(x)
    return -x / (1.0 + xp.reshape(sigma, (-1,) + (1,) * (x.ndim - 1)) ** 2)


def _score64(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return -x / (1.0 + np.reshape(sigma, (-1,) + (1,) * (x.ndim - 1)) ** 2)


class _Given:
    """Noise handed out in order, as the backend's arrays (a noise source the samplers accept)."""

    def __init__(self, backend: LoadedBackend, draws: list[np.ndarray]) -> None:
        self.draws, self.loaded = iter(draws), backend

    def __call__(self, like: Any) -> Any:
        return self.loaded.asarray(next(self.draws), like.dtype)


def _skip_half(dtype_label: str) -> None:
    if dtype_label in HALF_PRECISION:
        raise NotApplicable("a run of many updates in half precision is rounding, not a formula: unchecked")


@check("pc_pairs")
def check_pc_pairs(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """Every predictor x corrector pair of the PC sampler (2 corrector steps), 5 timesteps, against Song's."""
    from sdeve.samplers.pc import sample_pc  # noqa: PLC0415

    _skip_half(dtype_label)
    rng = np.random.default_rng(11)
    start = rng.standard_normal(SHAPE) * LEVELS[0]
    noises = [rng.standard_normal(SHAPE) for _ in range(3 * len(LEVELS))]
    model_sigmas = [level * 1.1 for level in LEVELS[:-1]]
    rows = []
    for predictor, corrector in itertools.product(PREDICTORS, CORRECTORS):
        want = ref.pc_run(_score64, start, LEVELS, model_sigmas, iter(noises), predictor, corrector, 0.16, 2)
        x = backend.asarray(start, dtype)
        got = sample_pc(_score, x, LEVELS, noise=_Given(backend, noises), model_sigmas=model_sigmas,
                        predictor=predictor, corrector=corrector, snr=0.16, correct_steps=2)
        check_meta(got, x)
        updates = (len(LEVELS) - 1) * 3
        tol = updates * corrector_rtol(dtype, int(np.prod(SHAPE[1:])))
        scale = np.full(SHAPE, float(np.max(np.abs(want))))
        rows.append(Measure("pc_pairs", max_relative_error(got, want, scale, dtype=dtype), tol,
                            f"{predictor}+{corrector}"))
    return [worst("pc_pairs", rows)]


@check("ode_fixed")
def check_ode_fixed(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """The probability-flow ODE by Euler and Heun steps (and the denoising step), against the reference."""
    from sdeve.samplers.ode import sample_ode  # noqa: PLC0415

    _skip_half(dtype_label)
    start = np.random.default_rng(12).standard_normal(SHAPE) * LEVELS[0]
    rows = []
    for method in ("euler", "heun"):
        want = ref.flow_run(lambda x, s: x / (1.0 + s * s), start, LEVELS, heun=method == "heun")
        x = backend.asarray(start, dtype)
        got = sample_ode(_score, x, LEVELS, method=method)
        check_meta(got, x)
        scale = np.full(SHAPE, float(np.max(np.abs(want))))
        rows.append(Measure("ode_fixed", max_relative_error(got, want, scale, dtype=dtype),
                            2 * len(LEVELS) * rtol_for(dtype), method))
    return [worst("ode_fixed", rows)]
