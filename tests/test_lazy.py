"""The core's functions on lazy namespaces, declared once with array-api-extra's ``lazy_xp_function``: with
``xp=jax.numpy`` each runs under ``jax.jit``, with ``xp=dask.array`` it must not compute its graph. The values
are checked against the float64 reference with ``array_api_extra.testing.assert_close``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import assert_close, lazy_xp_function, patch_lazy_xp_functions

from conformance import reference as ref
from sdeve._xp import resolve_namespace
from sdeve.schedule import adjacent_sigmas, timestep_index
from sdeve.updates import add_noise, combine, corrector_step_size, corrector_update, predictor_update

for _function in (combine, predictor_update, corrector_update, corrector_step_size, add_noise, timestep_index,
                  adjacent_sigmas):
    lazy_xp_function(_function)

N = 10
LEVELS = ref.discrete_sigmas(N)


@pytest.fixture(params=["numpy", "jax.numpy", "dask.array"])
def xp(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip(request.param.split(".")[0])
    namespace = resolve_namespace(request.param)
    patch_lazy_xp_functions(request, monkeypatch, xp=namespace)
    return namespace


def _inputs(xp: Any) -> tuple[list[Any], list[np.ndarray]]:
    rng = np.random.default_rng(4)
    values = [rng.standard_normal((4, 3, 2)) * 30, rng.standard_normal((4, 3, 2)) / 30, rng.standard_normal((4, 3, 2))]
    values = [v.astype(np.float32) for v in values]
    return [xp.asarray(v) for v in values], [v.astype(np.float64) for v in values]


def test_combine(xp: Any) -> None:
    (x, s, z), (xv, sv, zv) = _inputs(xp)
    prev, mean = combine(x, 812.25, s, 28.5, z)
    assert_close(mean, xp.asarray((xv + 812.25 * sv).astype(np.float32)), rtol=1e-6)
    assert_close(prev, xp.asarray((xv + 812.25 * sv + 28.5 * zv).astype(np.float32)), rtol=1e-6)


def test_predictor_update(xp: Any) -> None:
    (x, s, z), (xv, sv, zv) = _inputs(xp)
    j = np.asarray([0, 3, 7, 9])
    sigma, adjacent = xp.asarray(LEVELS[j]), xp.asarray(ref.adjacent(LEVELS, j))
    prev, mean = predictor_update(x, s, z, sigma, adjacent)
    g2 = (LEVELS[j] ** 2 - ref.adjacent(LEVELS, j) ** 2)[:, None, None]
    assert_close(mean, xp.asarray((xv + g2 * sv).astype(np.float32)), rtol=2e-6)
    assert_close(prev, xp.asarray((xv + g2 * sv + np.sqrt(g2) * zv).astype(np.float32)), rtol=2e-6)


@pytest.mark.parametrize("norm", ["batch", "example"])
def test_corrector_update(xp: Any, norm: str) -> None:
    (x, s, z), (xv, sv, zv) = _inputs(xp)
    prev, mean = corrector_update(x, s, z, 0.15, norm=norm)
    want_prev, want_mean = ref.corrector(xv, sv, zv, 0.15, norm)
    assert_close(mean, xp.asarray(want_mean.astype(np.float32)), rtol=2e-6)
    assert_close(prev, xp.asarray(want_prev.astype(np.float32)), rtol=2e-6)
    step = corrector_step_size(s, z, 0.15, norm=norm)
    assert_close(step, xp.asarray(np.asarray(ref.corrector_eps(sv, zv, 0.15, norm), dtype=np.float32)), rtol=2e-6)


def test_add_noise(xp: Any) -> None:
    (x, _, z), (xv, _, zv) = _inputs(xp)
    idx = np.asarray([0, 2, 5, 9])
    out = add_noise(x, z, xp.asarray(LEVELS[idx].astype(np.float32)))
    assert_close(out, xp.asarray(ref.noised(xv, zv, idx, LEVELS).astype(np.float32)), rtol=2e-6)


def test_timestep_index_and_adjacent_levels(xp: Any) -> None:
    times = ref.timesteps(N).astype(np.float32)
    index = timestep_index(xp.asarray(times), N)
    want = ref.index_of(times, N, np.float32)
    assert_close(xp.astype(index, xp.int64), xp.asarray(want))
    below = adjacent_sigmas(xp.asarray(LEVELS), xp.asarray(want))
    assert_close(below, xp.asarray(ref.adjacent(LEVELS, want)))
