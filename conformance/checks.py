"""The value checks: ``sdeve.ScoreSdeVeScheduler`` on a backend against the float64 reference, fed the same
inputs and the same noise, over every case of :mod:`conformance.cases`.

Each output is first checked for namespace, device, dtype and shape (those of the input it came from, or of
the schedule), then its values: the reported error is the worst over cases, with that case's tolerance (see
:mod:`conformance.tolerances` for how tolerances follow the dtype's epsilon and the schedule's conditions).
The reference is given the inputs *as the backend holds them* (rounded to the dtype under test), so the
error measured is the computation's, not the rounding of the inputs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import sdeve

from . import reference as ref
from .backends import LoadedBackend
from .cases import CASES, Case, Data, make_data
from .registry import Measure, NotApplicable, check, schedule_dtype_name, worst
from .tolerances import EPS, FACTOR, MAX, check_meta, corrector_rtol, max_relative_error, rtol_for, to_numpy

__all__ = ["forbid_dask_compute", "scheduler_for"]


def scheduler_for(case: Case, backend: LoadedBackend) -> sdeve.ScoreSdeVeScheduler:
    """The generic scheduler with ``case``'s config, its schedule in ``backend``'s namespace and device."""
    scheduler = sdeve.ScoreSdeVeScheduler(**case.config(), xp=backend.xp, device=backend.device)
    scheduler.set_timesteps(case.num_steps)
    scheduler.set_sigmas(case.num_steps)
    return scheduler


@contextlib.contextmanager
def forbid_dask_compute(backend: LoadedBackend) -> Iterator[None]:
    """For Dask: any ``compute`` inside the block raises (a step must build a graph, not run one)."""
    if backend.backend.module != "dask.array":
        yield
        return
    import dask

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a Dask graph was computed during a step; steps must stay lazy")

    with dask.config.set(scheduler=refuse):
        yield


def _log_condition(case: Case) -> float:
    """``1 + max |log sigma|``: the condition of a level computed as ``exp`` of a rounded logarithm."""
    return 1.0 + max(abs(math.log(case.sigma_min)), abs(math.log(case.sigma_max)))


def _inputs(backend: LoadedBackend, dtype: Any, *arrays: np.ndarray) -> tuple[list[Any], list[np.ndarray]] | None:
    """``arrays`` as backend arrays in ``dtype`` and as the float64 values they hold; ``None`` when a value
    does not fit the dtype (float16 with large noise levels)."""
    with np.errstate(over="ignore"):  # float16 overflow is expected here: the case is then skipped
        held = [backend.asarray(a, dtype) for a in arrays]
        values = [to_numpy(h) for h in held]
    if not all(np.all(np.isfinite(v)) for v in values):
        return None
    return held, values


def _representable(dtype_label: str, *expected: np.ndarray) -> bool:
    return all(float(np.max(np.abs(e), initial=0.0)) < MAX[dtype_label] / 4 for e in expected)


def _timestep(case: Case, backend: LoadedBackend, data: Data) -> tuple[Any, np.ndarray, str]:
    """The timestep as the case passes it, the float64 times per example the backend is given, and the dtype
    its index product is taken in (a Python float's: float64; an array's: the schedule dtype)."""
    if case.time_kind == "float":
        return float(data.t[0]), data.t, "float64"
    name = schedule_dtype_name(backend)
    sched = backend.dtypes()[name]
    if case.time_kind == "array0":
        t = backend.asarray(np.asarray(data.t[0]), sched)
        return t, np.full(data.t.shape, float(to_numpy(t))), name
    t = backend.asarray(data.t, sched)
    return t, to_numpy(t), name


def _schedule_dtype(backend: LoadedBackend) -> str:
    return schedule_dtype_name(backend)


def _each_step(
    backend: LoadedBackend, dtype: Any, pick: Callable[[Data], tuple[np.ndarray, ...]]
) -> Iterator[tuple[Case, sdeve.ScoreSdeVeScheduler, int, Data, tuple[list[Any], list[np.ndarray]]]]:
    """Every case and schedule position whose inputs (``pick(data)``) fit ``dtype``: the case, its scheduler,
    the position, the data and the inputs as :func:`_inputs` holds them."""
    for case in CASES:
        scheduler = scheduler_for(case, backend)
        for position in case.positions():
            data = make_data(case, position)
            held = _inputs(backend, dtype, *pick(data))
            if held is not None:
                yield case, scheduler, position, data, held


# ------------------------------------------------------------------------------------------ schedule
@check("schedule", dtypes="schedule")
def check_schedule(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """``timesteps``, ``sigmas`` and ``discrete_sigmas`` against the reference, every case's config."""
    rows: dict[str, list[Measure]] = {"schedule.timesteps": [], "schedule.sigmas": [], "schedule.discrete_sigmas": []}
    for case in CASES:
        scheduler = scheduler_for(case, backend)
        like = backend.asarray(np.zeros(case.num_steps), dtype)
        times = ref.timesteps(case.num_steps, case.sampling_eps)
        log_ratio = math.log(case.sigma_max / case.sigma_min)
        expected = {
            # t in [eps, 1]: absolute error (scale 1).
            "schedule.timesteps": (scheduler.timesteps, times, 1.0, 0.0),
            # sigma_min exp(t log r): rounding of t (abs) and of the argument, times log r.
            "schedule.sigmas": (scheduler.sigmas, ref.sigmas(times, case.sigma_min, case.sigma_max), None, 3.0 + 2.0 * log_ratio),
            "schedule.discrete_sigmas": (
                scheduler.discrete_sigmas,
                ref.discrete_sigmas(case.num_steps, case.sigma_min, case.sigma_max),
                None,
                _log_condition(case),
            ),
        }
        for op, (actual, want, scale, condition) in expected.items():
            check_meta(actual, like)
            err = max_relative_error(actual, want, scale, dtype=dtype)
            rows[op].append(Measure(op, err, rtol_for(dtype, schedule_dtype=dtype, condition=condition), case.name))
    return [worst(op, measures) for op, measures in rows.items()]


# ------------------------------------------------------------------------------------------ predictor
@check("step_pred")
def check_step_pred(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """``step_pred``'s two outputs, noise passed in, timesteps as floats, 0-d or ``(B,)`` arrays."""
    sched = _schedule_dtype(backend)
    out: dict[str, list[Measure]] = {"step_pred.prev_sample": [], "step_pred.prev_sample_mean": []}
    for case, scheduler, position, data, held in _each_step(backend, dtype, lambda d: (d.x, d.score, d.noise[0])):
        (x, s, z), (xv, sv, zv) = held
        t, t_seen, t_dtype = _timestep(case, backend, data)
        prev_ref, mean_ref, terms = ref.step_pred(
            xv, sv, zv, t_seen, case.num_steps, case.sigma_min, case.sigma_max, case.num_steps, t_dtype
        )
        if not _representable(dtype_label, prev_ref, mean_ref):
            continue
        with forbid_dask_compute(backend):
            result = scheduler.step_pred(s, t, x, noise=z)
        condition = 2.0 * _log_condition(case) * float(np.max(terms["kappa"]))
        tol = rtol_for(dtype, schedule_dtype=sched, condition=condition)
        label = f"{case.name}@{position}"
        for op, actual, want, scale in (
            ("step_pred.prev_sample", result.prev_sample, prev_ref, terms["prev"]),
            ("step_pred.prev_sample_mean", result.prev_sample_mean, mean_ref, terms["mean"]),
        ):
            check_meta(actual, x)
            out[op].append(Measure(op, max_relative_error(actual, want, scale, dtype=dtype), tol, label))
    return [worst(op, measures) for op, measures in out.items()]


# ------------------------------------------------------------------------------------------ corrector
@check("step_correct")
def check_step_correct(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """``step_correct`` (the snr rule, batch means of per-example norms), noise passed in."""
    measures: list[Measure] = []
    for case, scheduler, position, _, held in _each_step(backend, dtype, lambda d: (d.x, d.score, d.noise[0])):
        (x, s, z), (xv, sv, zv) = held
        prev_ref, _, terms = ref.step_correct(xv, sv, zv, case.snr)
        if not _representable(dtype_label, prev_ref):
            continue
        with forbid_dask_compute(backend):
            result = scheduler.step_correct(s, x, noise=z)
        check_meta(result.prev_sample, x)
        err = max_relative_error(result.prev_sample, prev_ref, terms["prev"], dtype=dtype)
        per_example = math.prod(tuple(x.shape)[1:])
        measures.append(Measure("step_correct.prev_sample", err, corrector_rtol(dtype, per_example),
                                f"{case.name}@{position}"))
    return [worst("step_correct.prev_sample", measures)]


# ------------------------------------------------------------------------------------------ add_noise
@check("add_noise")
def check_add_noise(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """``add_noise`` with an int index or one per example, any rank."""
    sched = _schedule_dtype(backend)
    measures: list[Measure] = []
    for case, scheduler, position, _, held in _each_step(backend, dtype, lambda d: (d.x, d.noise[0])):
        levels = ref.discrete_sigmas(case.num_steps, case.sigma_min, case.sigma_max)
        (x, z), (xv, zv) = held
        if case.time_kind == "batch":
            idx_values = np.random.default_rng(position).integers(0, case.num_steps, size=case.shape[0])
            idx_values[0] = position
            index: Any = backend.asarray(idx_values)
        else:
            idx_values = np.full(case.shape[0], position)
            index = position
        want, scale = ref.add_noise(xv, zv, idx_values, levels)
        if not _representable(dtype_label, want):
            continue
        with forbid_dask_compute(backend):
            noisy = scheduler.add_noise(x, z, index)
        check_meta(noisy, x)
        tol = rtol_for(dtype, schedule_dtype=sched, condition=_log_condition(case))
        measures.append(Measure("add_noise", max_relative_error(noisy, want, scale, dtype=dtype), tol, f"{case.name}@{position}"))
    return [worst("add_noise", measures)]


# ------------------------------------------------------------------------------------------ a PC step
@check("pc_step")
def check_pc_step(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """``correct_steps`` corrector steps then a predictor step, the score recomputed from the sample each
    time (a Gaussian's, ``-x / sigma^2``), as the sampling loop runs them; the error may grow by one step's
    tolerance per update."""
    sched = _schedule_dtype(backend)
    measures: list[Measure] = []
    for case in CASES:
        scheduler = scheduler_for(case, backend)
        position = case.positions()[len(case.positions()) // 2]
        data = make_data(case, position, draws=case.correct_steps + 1)
        batch_shape = (case.shape[0],) + (1,) * (len(case.shape) - 1)
        held = _inputs(backend, dtype, data.x, -1.0 / data.level.reshape(batch_shape) ** 2, *data.noise)
        if held is None:
            continue
        (x, c, *zs), (xv, cv, *zvs) = held
        t, t_seen, t_dtype = _timestep(case, backend, data)
        scale = np.zeros(case.shape)
        tol = 0.0
        with forbid_dask_compute(backend):
            for k in range(case.correct_steps):
                x = scheduler.step_correct(x * c, x, noise=zs[k]).prev_sample
                xv, _, terms = ref.step_correct(xv, xv * cv, zvs[k], case.snr)
                scale, tol = scale + terms["prev"], tol + rtol_for(dtype)
            x_final = scheduler.step_pred(x * c, t, x, noise=zs[-1]).prev_sample_mean
        _, mean_ref, terms = ref.step_pred(
            xv, xv * cv, zvs[-1], t_seen, case.num_steps, case.sigma_min, case.sigma_max, case.num_steps, t_dtype
        )
        if not _representable(dtype_label, mean_ref):
            continue
        condition = 2.0 * _log_condition(case) * float(np.max(terms["kappa"]))
        tol += rtol_for(dtype, schedule_dtype=sched, condition=condition)
        check_meta(x_final, held[0][0])
        err = max_relative_error(x_final, mean_ref, scale + terms["mean"], dtype=dtype)
        measures.append(Measure("pc_step", err, tol, f"{case.name}x{case.correct_steps}"))
    return [worst("pc_step", measures)]


# ------------------------------------------------------------------------------------------ purity
@check("inputs_unchanged")
def check_inputs_unchanged(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """No step writes into its inputs (the ``numpy_readonly`` backend raises on any write); error = the
    number of input elements that changed."""
    case = CASES[0]
    scheduler = scheduler_for(case, backend)
    data = make_data(case, 3, draws=1)
    held = _inputs(backend, dtype, data.x, data.score, data.noise[0])
    assert held is not None
    (x, s, z), values = held
    t = backend.asarray(np.full(case.shape[0], data.t[0]), backend.dtypes()[_schedule_dtype(backend)])
    t_before = to_numpy(t)
    index = backend.asarray(np.arange(case.shape[0]))
    scheduler.step_pred(s, t, x, noise=z)
    scheduler.step_correct(s, x, noise=z)
    scheduler.add_noise(x, z, index)
    changed = sum(int(np.sum(to_numpy(a) != v)) for a, v in zip((x, s, z, t), (*values, t_before)))
    changed += int(np.sum(to_numpy(index) != np.arange(case.shape[0])))
    return [Measure("inputs_unchanged", float(changed), 0.0, case.name)]


def _lazy_applies(backend: LoadedBackend) -> None:
    if backend.backend.module != "dask.array":
        raise NotApplicable("only Dask is lazy")


@check("dask_lazy", dtypes="none", applies=_lazy_applies)
def check_dask_lazy(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """Dask steps build graphs and compute nothing (the value checks also run under this guard); error = 1
    when a step computed."""
    case = CASES[0]
    scheduler = scheduler_for(case, backend)
    data = make_data(case, 0)
    (x, s, z), _ = _inputs(backend, backend.dtypes()["float32"], data.x, data.score, data.noise[0]) or ((), ())
    try:
        with forbid_dask_compute(backend):
            scheduler.step_pred(s, float(data.t[0]), x, noise=z)
            scheduler.step_correct(s, x, noise=z)
            scheduler.add_noise(x, z, 1)
            scheduler.step_pred(s, scheduler.timesteps[1], x, generator=0)
    except AssertionError as exc:
        return [Measure("dask_lazy", 1.0, 0.0, detail=str(exc))]
    return [Measure("dask_lazy", 0.0, 0.0)]


def epsilon_tolerance_note() -> str:
    """One line for the report: the base tolerances per dtype."""
    return ", ".join(f"{name} {FACTOR * eps:.2e}" for name, eps in EPS.items())
