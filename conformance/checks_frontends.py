"""Checks of the front ends and of properties particular to one backend:

- ``jit``: JAX results identical with and without ``jax.jit`` (generic scheduler and Flax API);
- ``flax``: ``sdeve_backends.jax.FlaxScoreSdeVeScheduler`` against the reference, noise from its key;
- ``diffusers``: ``sdeve_backends.torch.ScoreSdeVeScheduler`` against ``diffusers.ScoreSdeVeScheduler`` from
  the same generator seeds (when diffusers is installed);
- ``strict_standard_only``: the core runs on ``array_api_strict`` without NumPy doing its math;
- ``reference_mpmath``: the float64 reference itself against a 50-digit mpmath evaluation.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any

import numpy as np

from . import reference as ref
from .backends import LoadedBackend
from .cases import CASES, make_data
from .checks import _inputs, _log_condition, _representable, scheduler_for
from .registry import Measure, NotApplicable, check, worst
from .tolerances import EPS, JIT_FACTOR, check_meta, max_relative_error, rtol_for, to_numpy

__all__ = ["numpy_calls_from_core", "numpy_imports_in_core"]

# Every jax.jit compiles anew (about half a second each on a loaded CPU), and the Flax steps are compiled
# kernels: one case with a traced (B,) timestep over 10^4 levels for jit; for the Flax API that case and a
# rank-5 one with odd and size-1 axes, at both ends of the schedule.
JIT_CASES = (CASES[1],)
FLAX_CASES = (CASES[1], CASES[7])


def _jax_only(backend: LoadedBackend) -> None:
    if backend.backend.module != "jax.numpy":
        raise NotApplicable("JAX only")


# ------------------------------------------------------------------------------------------ jit
@check("jit", applies=_jax_only)
def check_jit(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """``jax.jit`` of every step against the eager step, in units of the terms' magnitude: within one rounding
    of a product term (XLA's fused multiply-add; see ``JIT_FACTOR`` in :mod:`conformance.tolerances`)."""
    import jax

    from sdeve_backends.jax import ADAPTER, FlaxScoreSdeVeScheduler

    tol = JIT_FACTOR * EPS[dtype_label]
    rows: dict[str, list[Measure]] = {op: [] for op in ("jit.step_pred", "jit.step_correct", "jit.add_noise", "jit.flax_step_pred", "jit.flax_step_correct")}
    for case in JIT_CASES:
        scheduler = scheduler_for(case, backend)
        position = case.positions()[-1]
        data = make_data(case, position)
        held = _inputs(backend, dtype, data.x, data.score, data.noise[0])
        if held is None:
            continue
        (x, s, z), (xv, sv, zv) = held
        t = scheduler.timesteps[position] if case.time_kind != "batch" else backend.asarray(data.t, scheduler.timesteps.dtype)
        index = backend.asarray(np.full(case.shape[0], position))
        t_seen = np.broadcast_to(to_numpy(t), (case.shape[0],))
        _, _, pred_terms = ref.step_pred(xv, sv, zv, t_seen, case.num_steps, case.sigma_min, case.sigma_max, case.num_steps)
        _, _, corr_terms = ref.step_correct(xv, sv, zv, case.snr)
        pairs = {
            "jit.step_pred": (lambda s, t, x, z: scheduler.step_pred(s, t, x, noise=z, return_dict=False), (s, t, x, z), pred_terms["prev"]),  # noqa: B023 - run in this iteration
            "jit.step_correct": (lambda s, x, z: scheduler.step_correct(s, x, noise=z, return_dict=False), (s, x, z), corr_terms["prev"]),  # noqa: B023 - run in this iteration
            "jit.add_noise": (lambda x, z, i: (scheduler.add_noise(x, z, i),), (x, z, index), np.abs(xv) + np.abs(zv) * case.sigma_max),  # noqa: B023 - run in this iteration
        }
        flax = FlaxScoreSdeVeScheduler(**case.config())
        state = flax.create_state()
        key = jax.random.key(case.seed)
        key_noise = to_numpy(ADAPTER.normal(key, tuple(x.shape), dtype=x.dtype))
        _, _, flax_terms = ref.step_pred(xv, sv, key_noise, t_seen, case.num_steps, case.sigma_min, case.sigma_max, case.num_steps)
        pairs["jit.flax_step_pred"] = (
            lambda st, s, t, x, k: flax.step_pred(st, s, t, x, k, return_dict=False)[:2], (state, s, t, x, key), flax_terms["prev"]  # noqa: B023 - run in this iteration
        )
        pairs["jit.flax_step_correct"] = (
            lambda st, s, x, k: flax.step_correct(st, s, x, k, return_dict=False)[:1],  # noqa: B023 - run in this iteration
            (state, s, x, key),
            ref.step_correct(xv, sv, key_noise, case.snr)[2]["prev"],
        )
        for op, (fn, args, scale) in pairs.items():
            eager, jitted = fn(*args), jax.jit(fn)(*args)
            errors = []
            for e, j in zip(eager, jitted):
                check_meta(j, x)
                errors.append(max_relative_error(j, to_numpy(e), scale, dtype=dtype))
            ulps = max(_ulps(e, j) for e, j in zip(eager, jitted))
            rows[op].append(Measure(op, max(errors), tol, f"{case.name}@{position}", detail=f"{ulps} ulp of the result"))
    rows["jit.step_pred"].extend(_jit_scalar_timesteps(backend, dtype))
    return [worst(op, measures) for op, measures in rows.items()]


def _jit_scalar_timesteps(backend: LoadedBackend, dtype: Any) -> list[Measure]:
    """Eager and jitted ``step_pred`` from a 0-d ``timesteps[i]`` at the positions where ``floor(t (M-1))``
    taken in float32 and in float64 disagree (with a float32 schedule), and the ends: an eager path that
    indexed on the host in float64 picked another level there than the compiled one."""
    import jax

    case = CASES[6]  # diffusers' defaults, N = 2000, batch 64
    scheduler = scheduler_for(case, backend)
    times = to_numpy(scheduler.timesteps)
    product32 = np.floor(times.astype(np.float32) * np.float32(case.num_steps - 1))
    product64 = np.floor(times * (case.num_steps - 1))
    positions = sorted({0, case.num_steps - 1, *np.nonzero(product32 != product64)[0].tolist()})
    data = make_data(case, 0)
    held = _inputs(backend, dtype, data.x, data.score / data.level[:, None] if data.x.ndim > 1 else data.score, data.noise[0])
    if held is None:
        return []
    (x, s, z), _ = held

    def step(t: Any) -> Any:
        return scheduler.step_pred(s, t, x, noise=z).prev_sample_mean

    jitted = jax.jit(step)
    measures = []
    for position in positions:
        t = scheduler.timesteps[position]
        eager, compiled = to_numpy(step(t)), to_numpy(jitted(t))
        scale = np.abs(eager) + np.abs(to_numpy(x))
        err = max_relative_error(compiled, eager, scale, dtype=dtype)
        measures.append(Measure("jit.step_pred", err, JIT_FACTOR * EPS[dtype_label_of(dtype)], f"{case.name}@{position} (0-d t)"))
    return measures


def dtype_label_of(dtype: Any) -> str:
    from .tolerances import dtype_name

    return dtype_name(dtype)


def _ulps(a: Any, b: Any) -> int:
    """The largest distance in units in the last place between two arrays of one float dtype."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.itemsize == 2:
        view = np.int16
    else:
        view = np.int32 if a.dtype.itemsize == 4 else np.int64
    ia, ib = a.view(view).astype(np.int64), b.view(view).astype(np.int64)
    # Sign-magnitude bit patterns to a monotone integer line: negative floats count down from zero.
    mask = np.int64(np.iinfo(view).max)
    ia, ib = np.where(ia < 0, -(ia & mask), ia), np.where(ib < 0, -(ib & mask), ib)
    return int(np.max(np.abs(ia - ib), initial=0))


# ------------------------------------------------------------------------------------------ Flax
@check("flax", applies=_jax_only)
def check_flax(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """The Flax state API against the reference; its noise is the key's (``jax.random.normal`` via the
    adapter), regenerated here from the same key."""
    import jax

    from sdeve_backends.jax import ADAPTER, FlaxScoreSdeVeScheduler

    rows: dict[str, list[Measure]] = {"flax.step_pred.prev_sample": [], "flax.step_pred.prev_sample_mean": [], "flax.step_correct": []}
    for case in FLAX_CASES:
        flax = FlaxScoreSdeVeScheduler(**case.config())
        state = flax.set_sigmas(flax.set_timesteps(flax.create_state(), case.num_steps), case.num_steps)
        sched = state.discrete_sigmas.dtype
        for position in (case.positions()[0], case.positions()[-1]):  # the ends: level N-1 and level 0
            data = make_data(case, position)
            held = _inputs(backend, dtype, data.x, data.score)
            if held is None:
                continue
            (x, s), (xv, sv) = held
            key = jax.random.key(case.seed + position)
            zv = to_numpy(ADAPTER.normal(key, tuple(x.shape), dtype=x.dtype))
            t = state.timesteps[position]
            prev, mean, st = flax.step_pred(state, s, t, x, key, return_dict=False)
            prev_ref, mean_ref, terms = ref.step_pred(
                xv, sv, zv, float(t), case.num_steps, case.sigma_min, case.sigma_max, case.num_steps, sched
            )
            condition = 2.0 * _log_condition(case) * float(np.max(terms["kappa"]))
            tol = rtol_for(dtype, schedule_dtype=sched, condition=condition)
            label = f"{case.name}@{position}"
            for op, actual, want, scale in (
                ("flax.step_pred.prev_sample", prev, prev_ref, terms["prev"]),
                ("flax.step_pred.prev_sample_mean", mean, mean_ref, terms["mean"]),
            ):
                check_meta(actual, x)
                if _representable(dtype_label, want):
                    rows[op].append(Measure(op, max_relative_error(actual, want, scale, dtype=dtype), tol, label))
            corr = flax.step_correct(st, s, x, key).prev_sample
            corr_ref, _, corr_terms = ref.step_correct(xv, sv, zv, case.snr)
            check_meta(corr, x)
            if _representable(dtype_label, corr_ref):
                rows["flax.step_correct"].append(
                    Measure("flax.step_correct", max_relative_error(corr, corr_ref, corr_terms["prev"], dtype=dtype), rtol_for(dtype), label)
                )
    return [worst(op, measures) for op, measures in rows.items()]


# ------------------------------------------------------------------------------------------ diffusers
def _diffusers_applies(backend: LoadedBackend) -> None:
    if backend.backend.module != "torch":
        raise NotApplicable("the diffusers drop-in is torch's")
    try:
        import diffusers  # noqa: F401 - only whether it imports
    except ImportError as exc:
        raise NotApplicable(f"diffusers is not installed: {exc}") from None


DIFFUSERS_CASES = (CASES[0], CASES[4], CASES[6], CASES[8])


@check("diffusers", applies=_diffusers_applies)
def check_diffusers(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """The torch drop-in against diffusers from the same ``torch.Generator`` seeds: the schedule, ``step_pred``
    (both outputs) and ``step_correct`` from the first, middle and last timestep, and ``add_noise`` (diffusers'
    is 4-D only). Errors in units of the terms' magnitude.

    Not bitwise, by design of the drop-in: it fuses ``x + a * y`` and computes the corrector's step size in
    float64 on the host, and its vectorised ``sigma(t)`` agrees with diffusers' Python loop to an ulp. Both
    hold diffusers' float32 schedule, so the tolerance is the float32-schedule one of the value checks
    (the predictor's ``g^2`` amplifies a level's ulp by ``kappa``) and float32's for the corrector, whose
    noise diffusers draws in float32 whatever the sample's dtype.
    """
    import diffusers
    import torch

    from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn

    if dtype_label not in ("float32", "float64"):
        raise NotApplicable("diffusers computes half precision in half precision (and returns float32 from step_correct)")
    ops = ("diffusers.schedule", "diffusers.step_pred.prev_sample", "diffusers.step_pred.prev_sample_mean", "diffusers.step_correct", "diffusers.add_noise")
    rows: dict[str, list[Measure]] = {op: [] for op in ops}
    f32 = torch.float32
    for case in DIFFUSERS_CASES:
        ours, theirs = DropIn(**case.config()), diffusers.ScoreSdeVeScheduler(**case.config())
        for sch in (ours, theirs):
            sch.set_timesteps(case.num_steps)
            sch.set_sigmas(case.num_steps)
        for name in ("timesteps", "sigmas", "discrete_sigmas"):
            tol = rtol_for(f32, schedule_dtype=f32, condition=3.0 + 2.0 * _log_condition(case))
            err = max_relative_error(getattr(ours, name), to_numpy(getattr(theirs, name)), dtype=f32)
            rows["diffusers.schedule"].append(Measure("diffusers.schedule", err, tol, f"{case.name}.{name}"))
        for position in case.positions():
            data = make_data(case, position)
            x, s = backend.asarray(data.x, dtype), backend.asarray(data.score, dtype)
            t = ours.timesteps[position]
            mine = ours.step_pred(s, t, x, generator=torch.manual_seed(position))
            want = theirs.step_pred(s, t, x, generator=torch.manual_seed(position))
            z = to_numpy(torch.randn(tuple(x.shape), generator=torch.manual_seed(position), dtype=dtype))
            _, _, terms = ref.step_pred(to_numpy(x), to_numpy(s), z, float(t), case.num_steps, case.sigma_min, case.sigma_max, case.num_steps)
            tol = rtol_for(dtype, schedule_dtype=f32, condition=2.0 * _log_condition(case) * float(np.max(terms["kappa"])))
            label = f"{case.name}@{position}"
            for op, a, b, scale in (
                ("diffusers.step_pred.prev_sample", mine.prev_sample, want.prev_sample, terms["prev"]),
                ("diffusers.step_pred.prev_sample_mean", mine.prev_sample_mean, want.prev_sample_mean, terms["mean"]),
            ):
                check_meta(a, x)
                rows[op].append(Measure(op, max_relative_error(a, to_numpy(b), scale, dtype=dtype), tol, label))
            a = ours.step_correct(s, x, generator=torch.manual_seed(position)).prev_sample
            b = theirs.step_correct(s, x, generator=torch.manual_seed(position)).prev_sample
            zc = to_numpy(torch.randn(tuple(x.shape), generator=torch.manual_seed(position), dtype=f32))
            _, _, corr_terms = ref.step_correct(to_numpy(x), to_numpy(s), zc, case.snr)
            check_meta(a, x)
            tol = rtol_for(dtype, schedule_dtype=f32, condition=1.0)
            rows["diffusers.step_correct"].append(Measure("diffusers.step_correct", max_relative_error(a, to_numpy(b), corr_terms["prev"], dtype=dtype), tol, label))
        image = backend.asarray(np.random.default_rng(case.seed).standard_normal((2, 3, 4, 5)), dtype)
        noise = backend.asarray(np.random.default_rng(case.seed + 1).standard_normal((2, 3, 4, 5)), dtype)
        index = torch.tensor([0, case.num_steps - 1])
        a, b = ours.add_noise(image, noise, index), theirs.add_noise(image, noise, index)
        check_meta(a, image)
        _, scale = ref.add_noise(to_numpy(image), to_numpy(noise), index.numpy(), ref.discrete_sigmas(case.num_steps, case.sigma_min, case.sigma_max))
        tol = rtol_for(dtype, schedule_dtype=f32, condition=_log_condition(case))
        rows["diffusers.add_noise"].append(Measure("diffusers.add_noise", max_relative_error(a, to_numpy(b), scale, dtype=dtype), tol, case.name))
    return [worst(op, measures) for op, measures in rows.items()]


# ------------------------------------------------------------------------------------------ strict
def _strict_only(backend: LoadedBackend) -> None:
    if backend.backend.module != "array_api_strict":
        raise NotApplicable("array_api_strict only")


# The one core module that holds NumPy: the schedule's host tables (float64) and the host timestep index.
HOST_TABLE_MODULES = ("schedule.py",)


def numpy_imports_in_core() -> list[str]:
    """``file:line`` of every ``import numpy``/``from numpy ...`` in ``sdeve/`` outside the host-table module."""
    import sdeve

    found = []
    root = os.path.dirname(sdeve.__file__)
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py") or name in HOST_TABLE_MODULES:
            continue
        path = os.path.join(root, name)
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m == "numpy" or m.startswith("numpy.") or m == "array_api_compat.numpy" for m in modules):
                found.append(f"{name}:{node.lineno}")
    return found


def numpy_calls_from_core(run: Any) -> list[str]:
    """Run ``run()`` under a profiler and return every call made from a frame in ``sdeve/`` into NumPy (or
    array-api-compat's NumPy wrapper): Python functions via ``call`` events, C functions via ``c_call``."""
    import array_api_compat

    import sdeve

    core = os.path.dirname(sdeve.__file__) + os.sep
    numpy_dirs = (os.path.dirname(np.__file__) + os.sep, os.path.join(os.path.dirname(array_api_compat.__file__), "numpy") + os.sep)
    calls: list[str] = []

    host = tuple(os.path.join(core, name) for name in HOST_TABLE_MODULES)

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if frame.f_code.co_filename.startswith(host) or (frame.f_back and frame.f_back.f_code.co_filename.startswith(host)):
            return
        if event == "call":
            caller = frame.f_back
            if caller is not None and caller.f_code.co_filename.startswith(core) and frame.f_code.co_filename.startswith(numpy_dirs):
                calls.append(f"{frame.f_code.co_name} from {os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}")
        elif event == "c_call" and frame.f_code.co_filename.startswith(core):
            module = getattr(arg, "__module__", None) or type(getattr(arg, "__self__", None)).__module__
            if str(module).split(".")[0] == "numpy":
                calls.append(f"{getattr(arg, '__name__', arg)} from {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}")

    sys.setprofile(profiler)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


@check("strict_standard_only", applies=_strict_only)
def check_strict(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """On ``array_api_strict`` (which rejects anything outside the standard, and mixing with NumPy arrays),
    the schedule and all three updates run, return ``array_api_strict`` arrays, and no frame of ``sdeve/``
    calls into NumPy but the host-table module (the schedule's float64 tables and the host timestep index), which
    is also the only one that imports it. Error = the number of violations."""
    case = CASES[1]
    data = make_data(case, 3)
    held = _inputs(backend, dtype, data.x, data.score, data.noise[0])
    assert held is not None
    (x, s, z), _ = held
    outputs: list[Any] = []

    def steps() -> None:
        scheduler = scheduler_for(case, backend)
        t = backend.asarray(data.t, scheduler.timesteps.dtype)
        outputs.extend(scheduler.step_pred(s, t, x, noise=z).to_tuple())
        outputs.extend(scheduler.step_pred(s, float(data.t[0]), x, noise=z).to_tuple())
        outputs.append(scheduler.step_correct(s, x, noise=z).prev_sample)
        outputs.append(scheduler.add_noise(x, z, backend.asarray(np.arange(case.shape[0]) % case.num_steps)))
        outputs.extend((scheduler.timesteps, scheduler.sigmas, scheduler.discrete_sigmas))

    calls = numpy_calls_from_core(steps)
    for out in outputs[:6]:
        check_meta(out, x)
    foreign = [type(o).__module__ for o in outputs if not type(o).__module__.startswith("array_api_strict")]
    imports = numpy_imports_in_core()
    return [
        Measure("strict.numpy_calls_from_core", float(len(calls)), 0.0, detail="; ".join(calls[:3])),
        Measure("strict.numpy_imports_in_core", float(len(imports)), 0.0, detail=", ".join(imports)),
        Measure("strict.outputs_are_strict", float(len(foreign)), 0.0, detail=", ".join(foreign)),
    ]


# ------------------------------------------------------------------------------------------ mpmath
def _numpy_only(backend: LoadedBackend) -> None:
    if backend.name != "numpy":
        raise NotApplicable("the reference is NumPy's; checked once, on the numpy row")


@check("reference_mpmath", dtypes="none", applies=_numpy_only)
def check_reference_mpmath(backend: LoadedBackend, dtype_label: str, dtype: Any) -> list[Measure]:
    """The float64 reference against mpmath at 50 digits: schedule, both predictor outputs, corrector and
    add_noise at the ends of the config ranges."""
    from .mp import mp_errors

    rows: dict[str, list[Measure]] = {}
    for point, quantity, err, tol in mp_errors():
        rows.setdefault(f"reference_mpmath.{quantity}", []).append(Measure(quantity, err, tol, point))
    return [worst(op, measures) for op, measures in rows.items()]
