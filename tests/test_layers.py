"""The architecture's promises, from a user's side: adapters found by entry point or registration (a third
party's lazy namespace included), every fast path equal to the core's function, the timestep index taken in
t's dtype on every front end, the schedule swapped atomically, and the torch steps under ``torch.compile`` and
``torch.func.vmap``."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sdeve
from sdeve import oracles, updates
from sdeve.backends import backend_for, library_name
from tests import lazy_namespace as lazy

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- adapters
@pytest.mark.parametrize("name", ["numpy", "torch", "jax", "dask", "array_api_strict"])
def test_every_library_finds_its_adapter_by_entry_point(name: str) -> None:
    xp = sdeve._xp.resolve_namespace(pytest.importorskip(name.split(".")[0]) and name)
    x = xp.asarray([1.0, 2.0])
    backend = backend_for(x)
    assert backend is backend_for(xp) is backend_for(name)
    assert backend.name == {"array_api_strict": "array_api"}.get(name, name)
    assert isinstance(backend, sdeve.Backend)


@pytest.fixture
def lazy_backend() -> Any:
    sdeve.register_backend("lazyxp", lazy.BACKEND)
    return lazy.BACKEND


def test_a_third_party_lazy_namespace_runs_every_front_end(lazy_backend: Any) -> None:
    """A namespace the project has never seen, whose arrays refuse value reads, registered at run time."""
    assert library_name(lazy.wrap([1.0])) == "lazyxp" and backend_for(lazy.wrap([1.0])) is lazy_backend
    rng = np.random.default_rng(0)
    xv, zv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x, z = lazy.wrap(xv, lazy.lazyxp.float64), lazy.wrap(zv, lazy.lazyxp.float64)
    scheduler = sdeve.ScoreSdeVeScheduler()
    scheduler.set_timesteps(10)
    scheduler.set_sigmas(10)
    reference = sdeve.ScoreSdeVeScheduler()
    reference.set_timesteps(10)
    reference.set_sigmas(10)
    for t in (0.5, lazy.wrap(np.full(4, 0.5)), lazy.wrap(np.asarray(0.5))):
        out = scheduler.step_pred(-x, t, x, noise=z)
        want = reference.step_pred(-xv, 0.5, xv, noise=zv)
        np.testing.assert_allclose(lazy.value(out.prev_sample), want.prev_sample, rtol=1e-12)
    corrected = scheduler.step_correct(-x, x, noise=z).prev_sample
    np.testing.assert_allclose(lazy.value(corrected), reference.step_correct(-xv, xv, noise=zv).prev_sample, rtol=1e-12)
    noisy = scheduler.add_noise(x, z, lazy.wrap(np.array([0, 1, 2, 3])))
    np.testing.assert_allclose(lazy.value(noisy), reference.add_noise(xv, zv, np.array([0, 1, 2, 3])), rtol=1e-12)
    mixture = oracles.ring()
    kwargs = dict(num_inference_steps=20, generator=3, scheduler=sdeve.ScoreSdeVeScheduler(sigma_max=12.0),
                  dtype="float64")
    drawn = sdeve.sample(mixture, (64, 2), xp=lazy.lazyxp, **kwargs)
    assert isinstance(drawn, lazy.LazyArray) and np.all(np.isfinite(lazy.value(drawn)))


def test_a_third_party_adapter_is_found_through_its_entry_point(tmp_path: Path) -> None:
    """An installed distribution that declares ``[sdeve.backends] lazyxp = ...`` is found without registering."""
    info = tmp_path / "lazyxp_sdeve-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lazyxp-sdeve\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sdeve.backends]\nlazyxp = tests.lazy_namespace:BACKEND\n")
    code = textwrap.dedent("""
        import numpy as np, sdeve
        from tests import lazy_namespace as lazy
        x = lazy.wrap(np.ones((2, 3)), lazy.lazyxp.float32)
        assert sdeve.backend_for(x) is lazy.BACKEND, sdeve.backend_for(x)
        s = sdeve.ScoreSdeVeScheduler()
        out = s.step_correct(-x, x, generator=0).prev_sample
        print(type(out).__name__, np.isfinite(lazy.value(out)).all())
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["LazyArray", "True"]


def test_an_unknown_library_without_a_fallback_says_how_to_add_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdeve import backends

    monkeypatch.setattr(backends, "_entry_point", lambda name: None)
    monkeypatch.setattr(backends, "_loaded", {})
    monkeypatch.setattr(backends, "_by_type", {})
    with pytest.raises(LookupError, match="register_backend"):
        backend_for("array_api_strict")


# ---------------------------------------------------------------------------------------------- fast paths
def _ulps(a: np.ndarray, b: np.ndarray, scale: np.ndarray, dtype: Any) -> float:
    """``|a - b|`` in units of the last place of ``scale``, the magnitude of the terms summed (a fused
    multiply-add and a product then a sum differ by one rounding of a term, not of the result)."""
    spacing = np.spacing(np.maximum(scale, np.finfo(dtype).tiny).astype(dtype)).astype(np.float64)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)) / spacing))


FAST_PATHS = ["torch", "jax", "dask"]


@pytest.mark.parametrize("library", FAST_PATHS)
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("form", ["float", "0-d", "(B,)"])
def test_every_fast_path_equals_the_core_function(library: str, dtype_name: str, form: str) -> None:
    """An adapter's fused ``combine`` against :func:`sdeve.updates.combine` on the same inputs and noise."""
    pytest.importorskip(library)
    if library == "jax" and dtype_name == "float64":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX without x64 has no float64")
    xp = sdeve._xp.resolve_namespace(library)
    backend = backend_for(xp)
    rng = np.random.default_rng(5)
    x, s, z = (rng.standard_normal((6, 3, 4)) * scale for scale in (30.0, 0.03, 1.0))
    coefficients = {"float": (812.25, 28.5), "0-d": (np.asarray(812.25), np.asarray(28.5)),
                    "(B,)": (rng.uniform(1, 900, 6), rng.uniform(1, 30, 6))}[form]
    dtype = getattr(xp, dtype_name)

    def arrays() -> list[Any]:
        if library == "dask":
            import dask.array as da

            return [da.from_array(v.astype(dtype_name), chunks=(3, 3, 2)) for v in (x, s, z)]
        return [xp.asarray(np.array(v, dtype=dtype_name), dtype=dtype) for v in (x, s, z)]  # own memory: reuse writes

    a, b = (c if isinstance(c, float) else xp.asarray(c, dtype=xp.float64 if library != "jax" else dtype)
            for c in coefficients)
    fused = backend.combine(*_interleave(arrays(), a, b), reuse=True)
    if fused is None:
        pytest.skip(f"{library} has no fused path for {form} coefficients")
    core = updates.combine(*_interleave(arrays(), a, b), xp=xp)
    a_host, b_host = (np.reshape(np.asarray(c, dtype=np.float64), (-1,) + (1,) * (x.ndim - 1)) for c in coefficients)
    mean_terms = np.abs(x) + np.abs(a_host * s)
    for got, want, scale in zip(fused, core, (mean_terms + np.abs(b_host * z), mean_terms)):
        got, want = np.asarray(_host(got)), np.asarray(_host(want))
        assert got.dtype == want.dtype == np.dtype(dtype_name)
        assert _ulps(got, want, scale, np.dtype(dtype_name)) <= 1.0


def _interleave(arrays: list[Any], a: Any, b: Any) -> tuple[Any, ...]:
    x, s, z = arrays
    return x, a, s, b, z


def _host(x: Any) -> Any:
    if hasattr(x, "compute"):
        return x.compute()
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


# ---------------------------------------------------------------------------------------------- the index rule
def _level_rule(t32: np.float32, m: int) -> int:
    return int(np.floor(np.float32(t32) * np.float32(m - 1)))


@settings(max_examples=400, deadline=None)
@given(t=st.one_of(st.floats(0.0, 1.0), st.floats(0.0, 1.0, width=32), st.sampled_from([0.0, 1.0, 0.5, 1e-5])),
       m=st.one_of(st.integers(1, 2**24 + 2), st.sampled_from([2, 100, 1000, 2000, 2**24, 2**24 + 1])),
       dtype=st.sampled_from(["float32", "float64"]))
def test_the_host_index_is_numpys_product_in_the_timestep_dtype(t: float, m: int, dtype: str) -> None:
    """The host index (plain Python arithmetic where that is exact) equals ``floor(t * (M - 1))`` with NumPy's
    product in ``dtype``, clamped, for any time in [0, 1] and any number of timesteps."""
    from sdeve.schedule import host_index

    want = int(np.floor(np.asarray(t, dtype=dtype) * np.asarray(m - 1, dtype=dtype)))
    assert host_index(t, m, dtype) == min(max(want, 0), m - 1)


def test_the_host_index_of_times_outside_the_unit_interval_is_clamped() -> None:
    from sdeve.schedule import host_index

    assert [host_index(t, 100, d) for t in (math.nan, -0.5, 1.5, math.inf) for d in ("float32", "float64")] == \
        [0, 0, 0, 0, 99, 99, 99, 99]


def _front_ends() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("numpy", np)]
    for name in ("torch", "jax.numpy", "dask.array"):
        try:
            out.append((name, __import__(name, fromlist=["_"])))
        except ImportError:
            pass
    return out


@pytest.mark.parametrize("library", [name for name, _ in _front_ends()])
def test_the_index_is_taken_in_the_timestep_dtype_in_every_form(library: str) -> None:
    """A float32 timestep picks the level ``floor(t * (M - 1))`` computed in float32 (Song's and diffusers'
    rule), whether it comes as a 0-d array or as a ``(B,)`` array, on the generic scheduler and the drop-in."""
    m, batch = 2000, 4
    times = np.linspace(1, 1e-5, m, dtype=np.float32)
    module = dict(_front_ends())[library]
    schedulers = [sdeve.ScoreSdeVeScheduler()]
    if library == "torch":
        from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn

        schedulers.append(DropIn())
    for scheduler in schedulers:
        scheduler.set_timesteps(m)
        scheduler.set_sigmas(m)
        levels = np.asarray(scheduler.schedule.drift, dtype=np.float64)
        for i in (1, 2, 999, 1998):
            want = float(levels[_level_rule(times[i], m)])
            for form in ("0-d", "(B,)"):
                t = np.asarray(times[i]) if form == "0-d" else np.full(batch, times[i], dtype=np.float32)
                x = np.zeros((batch, 2), dtype=np.float32)
                args = [_as(module, v) for v in (np.ones_like(x), t, x, np.zeros_like(x))]
                out = scheduler.step_pred(args[0], args[1], args[2], noise=args[3]).prev_sample_mean
                got = float(np.asarray(_host(out), dtype=np.float64)[0, 0])
                assert got == pytest.approx(want, rel=1e-6), (type(scheduler).__name__, i, form)


def _as(module: Any, value: np.ndarray) -> Any:
    name = module.__name__
    if name == "torch":
        return module.asarray(value)
    if name == "jax.numpy":
        return module.asarray(value)
    if name == "dask.array":
        return module.from_array(value) if value.ndim else module.from_array(value)
    return value


def test_the_flax_front_end_takes_the_index_in_the_timestep_dtype() -> None:
    jnp = pytest.importorskip("jax.numpy")
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler

    m = 2000
    flax = FlaxScoreSdeVeScheduler()
    state = flax.set_sigmas(flax.set_timesteps(flax.create_state(), m), m)
    times = np.asarray(state.timesteps)
    levels = np.asarray(state.discrete_sigmas, dtype=np.float64)
    x = jnp.zeros((4, 2), dtype=jnp.float32)
    for i in (1, 2, 1998):
        j = _level_rule(np.float32(times[i]), m)
        g2 = levels[j] ** 2 - (levels[j - 1] ** 2 if j else 0.0)
        for t in (state.timesteps[i], jnp.full((4,), state.timesteps[i])):
            out = flax.step_pred(state, jnp.ones_like(x), t, x, key=0)
            assert float(out.prev_sample_mean[0, 0]) == pytest.approx(g2, rel=1e-4)


# ---------------------------------------------------------------------------------------------- the schedule value
def test_a_schedule_swap_is_atomic_while_another_thread_steps() -> None:
    """``set_sigmas`` in one thread while another steps: afterwards every step uses the new levels."""
    x = np.linspace(-1, 1, 8).reshape(2, 4)
    for trial in range(20):
        scheduler = sdeve.ScoreSdeVeScheduler()
        scheduler.set_timesteps(10)
        scheduler.set_sigmas(10)
        stop = threading.Event()

        def step() -> None:
            while not stop.is_set():
                scheduler.step_pred(-x, 0.5, x, noise=x)

        worker = threading.Thread(target=step)
        worker.start()
        scheduler.set_sigmas(10, sigma_max=50.0 + trial)
        stop.set()
        worker.join()
        fresh = sdeve.ScoreSdeVeScheduler(sigma_max=50.0 + trial)
        fresh.set_timesteps(10)
        fresh.set_sigmas(10)
        np.testing.assert_array_equal(scheduler.step_pred(-x, 0.5, x, noise=x).prev_sample,
                                      fresh.step_pred(-x, 0.5, x, noise=x).prev_sample)


def test_the_schedule_is_built_on_the_host_and_moved_once() -> None:
    torch = pytest.importorskip("torch")
    scheduler = sdeve.ScoreSdeVeScheduler()
    schedule = scheduler.schedule
    assert all(not getattr(schedule, name).flags.writeable for name in ("timesteps", "discrete_sigmas", "drift"))
    moved = schedule.arrays(sdeve._xp.resolve_namespace("torch"), torch.device("cpu"))
    assert moved is schedule.arrays(sdeve._xp.resolve_namespace("torch"), torch.device("cpu"))
    assert moved.discrete_sigmas.dtype == torch.float64


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_moved_schedule_arrays_are_copies_of_the_host_schedule(library: str) -> None:
    """The arrays a scheduler hands out own their memory (the host schedule is read-only and shared by every
    scheduler copy): writing into ``scheduler.discrete_sigmas`` leaves the host schedule as it was."""
    pytest.importorskip(library)
    scheduler = sdeve.ScoreSdeVeScheduler(xp=library)
    host = np.array(scheduler.schedule.discrete_sigmas)
    held = scheduler.discrete_sigmas
    held[0] = -1.0
    assert float(held[0]) == -1.0
    np.testing.assert_array_equal(scheduler.schedule.discrete_sigmas, host)
    assert copy.deepcopy(scheduler).schedule.level(0) == host[0]


@pytest.mark.parametrize("drop_in", [False, True])
def test_a_rebuilt_schedule_equals_a_fresh_one_whatever_it_reuses(drop_in: bool) -> None:
    """``set_sigmas`` takes from the schedule it replaces what was computed from the same settings (the levels;
    the sigmas when the timesteps are equal): the result equals a schedule built from scratch, call after call."""
    from sdeve.schedule import Schedule

    if drop_in:
        pytest.importorskip("torch")
        from sdeve_backends.torch import ScoreSdeVeScheduler as cls
    else:
        cls = sdeve.ScoreSdeVeScheduler
    scheduler = cls()
    calls = [("t", 2000, None), ("s", 2000, None), ("s", 2000, 0.02), ("t", 50, None), ("s", 50, None),
             ("s", 50, None), ("t", 100, None), ("s", 2000, 0.01), ("s", 100, 0.01)]
    for kind, n, sigma_min in calls:
        if kind == "t":
            scheduler.set_timesteps(n)
            continue
        before = scheduler.schedule
        scheduler.set_sigmas(n, sigma_min=sigma_min)
        low = scheduler.config.sigma_min if sigma_min is None else sigma_min
        fresh = Schedule.with_levels(np.array(before.timesteps), n, low, scheduler.config.sigma_max,
                                     rounding=type(scheduler)._rounding)
        for name in ("timesteps", "sigmas", "discrete_sigmas", "drift", "diffusion"):
            np.testing.assert_array_equal(getattr(scheduler.schedule, name), getattr(fresh, name), err_msg=name)
    same = scheduler.schedule
    scheduler.set_timesteps(100)
    scheduler.set_sigmas(100, sigma_min=0.01)
    assert scheduler.schedule.discrete_sigmas is same.discrete_sigmas and scheduler.schedule.sigmas is same.sigmas


def test_sampler_tables_are_moved_once_and_never_kept_from_a_trace() -> None:
    """A sampler's per-step tables are moved to the namespace once and reused by later calls (equal values, the
    same array), at most ``MOVED_TABLES`` of them; a table built inside ``jax.jit`` is not kept."""
    from sdeve.samplers import _loop

    xp = sdeve._xp.resolve_namespace("numpy")
    values = [0.5, 0.25, 0.125]
    first = _loop.Table.build(values, xp=xp, device=None, dtype=np.float32)
    again = _loop.Table.build(np.asarray(values), xp=xp, device=None, dtype=np.float32)
    assert again.values is first.values and first.values.dtype == np.float32
    assert _loop.Table.build(values, xp=xp, device=None, dtype=np.float64).values is not first.values
    for k in range(_loop.MOVED_TABLES + 1):
        _loop.Table.build([float(k)], xp=xp, device=None, dtype=np.float64)
    assert len(_loop._MOVED) == _loop.MOVED_TABLES
    jax = pytest.importorskip("jax")
    jxp = sdeve._xp.resolve_namespace("jax.numpy")
    kept = len(_loop._MOVED)
    out = jax.jit(lambda x: x * _loop.Table.build([3.0, 4.0], xp=jxp, device=None, dtype=jxp.float32).values)(
        jxp.ones(2, dtype=jxp.float32))
    assert np.asarray(out).tolist() == [3.0, 4.0] and len(_loop._MOVED) == kept
    assert not any(isinstance(v, jax.core.Tracer) for v in _loop._MOVED.values())


# ---------------------------------------------------------------------------------------------- torch transforms
def _torch_steps() -> list[Any]:
    from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn

    out = []
    for cls in (sdeve.ScoreSdeVeScheduler, DropIn):
        scheduler = cls()
        scheduler.set_timesteps(50)
        scheduler.set_sigmas(50)
        out.append(scheduler)
    return out


@pytest.mark.slow
def test_torch_compile_fullgraph_of_both_steps() -> None:
    torch = pytest.importorskip("torch")
    x, s, z = (torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(k)) for k in range(3))
    t = torch.tensor(0.5)
    for scheduler in _torch_steps():
        pred = torch.compile(lambda s_, t_, x_, z_: scheduler.step_pred(s_, t_, x_, noise=z_), fullgraph=True)  # noqa: B023
        corr = torch.compile(lambda s_, x_, z_: scheduler.step_correct(s_, x_, noise=z_), fullgraph=True)  # noqa: B023
        torch.testing.assert_close(pred(s, t, x, z).prev_sample, scheduler.step_pred(s, t, x, noise=z).prev_sample)
        torch.testing.assert_close(corr(s, x, z).prev_sample, scheduler.step_correct(s, x, noise=z).prev_sample)


def test_torch_func_vmap_of_step_correct() -> None:
    torch = pytest.importorskip("torch")
    x, s, z = (torch.randn(5, 3, 2, 4, generator=torch.Generator().manual_seed(k)) for k in range(3))
    for scheduler in _torch_steps():
        batched = torch.func.vmap(lambda s_, x_, z_: scheduler.step_correct(s_, x_, noise=z_).prev_sample)  # noqa: B023
        got = batched(s, x, z)
        for v in range(5):
            torch.testing.assert_close(got[v], scheduler.step_correct(s[v], x[v], noise=z[v]).prev_sample)


def test_torch_autograd_through_both_steps_equals_the_formula() -> None:
    """Gradients through the steps equal those of the formula written directly in torch (float64, gradcheck)."""
    torch = pytest.importorskip("torch")
    for scheduler in _torch_steps():
        snr = float(scheduler.config["snr"])
        z = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

        def corrected(s: Any, x: Any) -> Any:
            return scheduler.step_correct(s, x, noise=z).prev_sample  # noqa: B023

        def by_hand(s: Any, x: Any) -> Any:
            eps = 2 * (snr * z.flatten(1).norm(dim=1).mean() / s.flatten(1).norm(dim=1).mean()) ** 2  # noqa: B023
            return x + eps * s + torch.sqrt(2 * eps) * z  # noqa: B023

        s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
        x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(corrected, (s, x))
        mine = torch.autograd.grad(corrected(s, x).sum(), (s, x))
        theirs = torch.autograd.grad(by_hand(s, x).sum(), (s, x))
        for a, b in zip(mine, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
        assert torch.autograd.gradcheck(lambda s_, x_: scheduler.step_pred(s_, 0.5, x_, noise=z).prev_sample, (s, x))  # noqa: B023
    assert math.isfinite(snr)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3, 5), (4, 3, 32, 32), (2, 4, 128, 128)])
def test_every_fused_norm_agrees_with_the_core_to_the_reductions_rounding(dtype_name: str, shape: tuple) -> None:
    """An adapter's per-example norm sums in another order: within ``sqrt(n)`` ulps of the core's (``n`` values
    per example), and exact for one value."""
    torch = pytest.importorskip("torch")
    backend = backend_for(torch.zeros(1))
    x = torch.randn(*shape, dtype=getattr(torch, dtype_name), generator=torch.Generator().manual_seed(2))
    fused = backend.norms(x)
    assert fused is not None and fused.dtype == x.dtype and tuple(fused.shape) == (shape[0],)
    core = updates._example_norms(x, xp=sdeve._xp.resolve_namespace("torch"))
    n = math.prod(shape[1:])
    eps = torch.finfo(x.dtype).eps
    assert float(((fused - core).abs() / core).max()) <= math.sqrt(n) * eps
    assert backend.norms(x.requires_grad_(True)) is None  # autograd: the core's formula


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (1, 7), (4, 3, 32, 32), (2, 4, 128, 128)])
def test_the_host_batch_norms_agree_with_the_core_to_the_reductions_rounding(dtype_name: str, shape: tuple) -> None:
    """``Backend.host_norms`` (both batch-mean norms read in one call) against the core's norms and mean: within
    ``sqrt(n)`` ulps (``n`` values per example), and a corrector step through it within an ulp of the core's."""
    torch = pytest.importorskip("torch")
    backend = backend_for(torch.zeros(1))
    xp = sdeve._xp.resolve_namespace("torch")
    draw = torch.Generator().manual_seed(3)
    s, z, x = (torch.randn(*shape, dtype=getattr(torch, dtype_name), generator=draw) for _ in range(3))
    read = backend.host_norms(s, z)
    assert read is not None and all(isinstance(v, float) for v in read)
    eps = torch.finfo(s.dtype).eps
    bound = math.sqrt(math.prod(shape[1:])) * eps
    for fused, array in zip(read, (s, z)):
        core = float(xp.mean(updates._example_norms(array, xp=xp)))
        assert abs(fused - core) <= bound * core
    fast = updates.corrector_update(x, s, z, 0.16, xp=xp, host=True, host_norms=backend.host_norms)[0]
    core_step = updates.corrector_update(x, s, z, 0.16, xp=xp)[0]
    # The step size differs by the norms' rounding; where the terms cancel, that is absolute, not relative.
    torch.testing.assert_close(fast, core_step, rtol=4 * bound, atol=4 * bound * float((core_step - x).abs().max()))
    assert backend.host_norms(s.half(), z.half()) is None  # half precision: the core's, in float32


@pytest.mark.slow  # five programs to compile: about 20 s on 2 cores
def test_a_jax_step_that_draws_in_its_program_equals_the_core_with_that_noise() -> None:
    """The eager JAX steps draw inside their update's compiled program: the same noise as ``jax.random.normal``
    of the key (the generic scheduler's draw), the core's update to within an ulp of each term."""
    jax = pytest.importorskip("jax")
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=50.0)
    scheduler.set_timesteps(100)
    scheduler.set_sigmas(100)
    keys, shape = jax.random.split(jax.random.key(11), 4), (2, 3, 4, 4)
    x, s = (jax.random.normal(k, shape) for k in keys[:2])
    t = float(scheduler.timesteps[3])
    for key in keys[2:]:
        noise = jax.random.normal(key, shape)
        pairs = [(scheduler.step_pred(s, t, x, generator=key, return_dict=False)[0],
                  scheduler.step_pred(s, t, x, noise=noise, return_dict=False)[0]),
                 (scheduler.step_correct(s, x, generator=key, return_dict=False)[0],
                  scheduler.step_correct(s, x, noise=noise, return_dict=False)[0])]
        for drawn, given in pairs:
            scale = float(np.max(np.abs(np.asarray(given)))) + float(np.max(np.abs(np.asarray(x))))
            tolerance = 2 * scale * float(np.finfo(np.float32).eps)
            np.testing.assert_allclose(np.asarray(drawn), np.asarray(given), rtol=0, atol=tolerance)
