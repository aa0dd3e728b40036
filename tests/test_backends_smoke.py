"""Every installed backend runs the three updates through the generic scheduler, types preserved."""

from __future__ import annotations

import numpy as np

import sdeve
from conformance.backends import LoadedBackend


def test_steps_keep_namespace_device_dtype(backend: LoadedBackend) -> None:
    scheduler = sdeve.ScoreSdeVeScheduler()
    scheduler.set_timesteps(10)
    scheduler.set_sigmas(10)
    rng = np.random.default_rng(0)
    for dtype in backend.dtypes().values():
        sample = backend.asarray(rng.standard_normal((3, 2, 4)), dtype)
        score = backend.asarray(-rng.standard_normal((3, 2, 4)) / 10, dtype)
        pred = scheduler.step_pred(score, scheduler.timesteps[2], sample, generator=1)
        corr = scheduler.step_correct(score, sample, generator=1)
        for out in (pred.prev_sample, pred.prev_sample_mean, corr.prev_sample):
            assert type(out) is type(sample)
            assert out.dtype == sample.dtype
            assert tuple(out.shape) == tuple(sample.shape)
            assert np.all(np.isfinite(backend.to_numpy(out)))
