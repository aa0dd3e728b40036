"""``sdeve.ScoreSdeVeScheduler`` on every backend against the independent float64 reference in
``conformance/reference.py``, with the same noise passed in; namespaces, devices, the schedule cache, generators,
the corrector's batch rules, the NumPy-bound scheduler and Dask laziness."""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
import pytest

import sdeve
from conformance.backends import BACKENDS, LoadedBackend, load_backend
from conformance.tolerances import assert_close, rtol_for
from sdeve._xp import schedule_dtype
from conformance import reference as ref

N = 10  # inference steps: levels far apart, so that every index is easy to tell apart
SHAPES = {1: (4,), 2: (3, 5), 3: (2, 3, 4), 4: (2, 2, 3, 2), 5: (3, 1, 2, 2, 2)}
DTYPES = ("float16", "bfloat16", "float32", "float64")
TIMES = (1, 4, N - 1)  # schedule positions used as scalar timesteps


def _dtype(backend: LoadedBackend, name: str) -> Any:
    dtypes = backend.dtypes()
    if name not in dtypes:
        pytest.skip(f"{backend.name} has no {name}")
    return dtypes[name]


def _rtol(backend: LoadedBackend, dtype: Any) -> float:
    """The tolerance for a result that uses noise levels rebuilt in the backend's schedule dtype.

    A level is ``exp`` of a rounded argument, so it carries ``(1 + |log sigma|) * eps`` of the schedule
    dtype, and ``g^2`` twice that (measured on torch float64: up to 13 eps, near the plain 16 eps; a GPU's
    ``exp`` may round worse).
    """
    condition = 2 * (1 + math.log(ref.SIGMA_MAX))
    return rtol_for(dtype, schedule_dtype=schedule_dtype(backend.xp, backend.device), condition=condition)


def _scheduler(**kwargs: Any) -> sdeve.ScoreSdeVeScheduler:
    scheduler = sdeve.ScoreSdeVeScheduler(**kwargs)
    scheduler.set_timesteps(N)
    scheduler.set_sigmas(N)
    return scheduler


def _inputs(backend: LoadedBackend, shape: tuple[int, ...], dtype: Any, seed: int = 0, sigma: float = 30.0):
    """``(sample, score, noise)`` as backend arrays and as the float64 values the backend holds."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * sigma
    arrays = [backend.asarray(x, dtype), backend.asarray(-x / sigma**2 + rng.standard_normal(shape) / sigma, dtype),
              backend.asarray(rng.standard_normal(shape), dtype)]
    return arrays, [backend.to_numpy(a) for a in arrays]


def _assert_untouched(backend: LoadedBackend, arrays, values) -> None:
    for array, value in zip(arrays, values):
        np.testing.assert_array_equal(backend.to_numpy(array), value)


# ---------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("rank", sorted(SHAPES))
def test_step_pred_matches_reference(backend: LoadedBackend, dtype_name: str, rank: int) -> None:
    dtype = _dtype(backend, dtype_name)
    scheduler = _scheduler()
    (x, s, z), (xv, sv, zv) = _inputs(backend, SHAPES[rank], dtype)
    levels = ref.discrete_sigmas(N)
    for i in TIMES:
        t = float(scheduler.timesteps[i])
        out = scheduler.step_pred(s, t, x, noise=z)
        want, want_mean = ref.predictor(xv, sv, zv, t, N, levels)
        g2 = ref.predictor_g2(t, N, levels)
        scale = ref.term_scale(xv, g2 * sv, np.sqrt(g2) * zv)
        assert_close(out.prev_sample, want, like=x, scale=scale, rtol=_rtol(backend, dtype))
        assert_close(out.prev_sample_mean, want_mean, like=x, scale=scale, rtol=_rtol(backend, dtype))
    _assert_untouched(backend, (x, s, z), (xv, sv, zv))


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("form", ["scalar", "0d", "batch"])
def test_step_pred_timestep_forms(backend: LoadedBackend, dtype_name: str, form: str) -> None:
    dtype = _dtype(backend, dtype_name)
    scheduler = _scheduler()
    levels = ref.discrete_sigmas(N)
    times = np.array([0.0, float(scheduler.timesteps[3]), float(scheduler.timesteps[7]), 1.0])
    if form == "scalar":
        t, t_ref = float(times[1]), float(times[1])
    elif form == "0d":
        t = backend.asarray(np.asarray(times[2]))
        t_ref = float(backend.to_numpy(t))
    else:
        t = backend.asarray(times)
        t_ref = backend.to_numpy(t)
    # Each example at the magnitude of its own level (x ~ sigma, score ~ -x / sigma^2), as in sampling.
    sigma = np.broadcast_to(levels[ref.level_index(t_ref, N)], (4,)).reshape(4, 1, 1)
    rng = np.random.default_rng(1)
    xv0 = rng.standard_normal((4, 3, 2)) * sigma
    x, s, z = (backend.asarray(a, dtype) for a in (xv0, -xv0 / sigma**2 + rng.standard_normal((4, 3, 2)) / sigma,
                                                   rng.standard_normal((4, 3, 2))))
    xv, sv, zv = (backend.to_numpy(a) for a in (x, s, z))
    prev, prev_mean = scheduler.step_pred(s, t, x, return_dict=False, noise=z)
    want, want_mean = ref.predictor(xv, sv, zv, t_ref, N, levels)
    g2 = np.broadcast_to(ref.predictor_g2(t_ref, N, levels), (4,)).reshape(4, 1, 1)
    for got, expected in ((prev, want), (prev_mean, want_mean)):
        assert_close(got, expected, like=x, scale=ref.term_scale(xv, g2 * sv, np.sqrt(g2) * zv), rtol=_rtol(backend, dtype))
        values = backend.to_numpy(got)
        for b in range(4):  # and each example to the precision of its own magnitude
            scale = ref.term_scale(xv[b], g2[b] * sv[b], np.sqrt(g2[b]) * zv[b])
            assert_close(values[b], expected[b], scale=scale, rtol=_rtol(backend, dtype))
    if form == "batch":  # t = 0 is level 0, whose lower neighbour is 0: prev_mean = x + sigma_min^2 * s
        np.testing.assert_allclose(want_mean[0], xv[0] + levels[0] ** 2 * sv[0])


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("rank", sorted(SHAPES))
@pytest.mark.parametrize("norm", ["batch", "example"])
def test_step_correct_matches_reference(backend: LoadedBackend, dtype_name: str, rank: int, norm: str) -> None:
    dtype = _dtype(backend, dtype_name)
    scheduler = _scheduler(corrector_norm=norm)
    (x, s, z), (xv, sv, zv) = _inputs(backend, SHAPES[rank], dtype, seed=2)
    out = scheduler.step_correct(s, x, noise=z)
    want, _ = ref.corrector(xv, sv, zv, 0.15, norm)
    eps = ref.corrector_eps(sv, zv, 0.15, norm)
    eps = eps if norm == "batch" else eps.reshape((-1,) + (1,) * (rank - 1))
    assert_close(out.prev_sample, want, like=x, scale=ref.term_scale(xv, eps * sv, np.sqrt(2 * eps) * zv))
    (tupled,) = scheduler.step_correct(s, x, return_dict=False, noise=z)
    np.testing.assert_array_equal(backend.to_numpy(tupled), backend.to_numpy(out.prev_sample))
    _assert_untouched(backend, (x, s, z), (xv, sv, zv))


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("rank", sorted(SHAPES))
def test_add_noise_matches_reference(backend: LoadedBackend, dtype_name: str, rank: int) -> None:
    dtype = _dtype(backend, dtype_name)
    scheduler = _scheduler()
    (x, _, z), (xv, _, zv) = _inputs(backend, SHAPES[rank], dtype, seed=3, sigma=1.0)
    levels = ref.discrete_sigmas(N)
    batch = SHAPES[rank][0]
    idx = np.arange(batch) * 3 % N
    for index, index_ref in ((7, 7), (backend.asarray(np.asarray(idx[1])), idx[1]), (backend.asarray(idx), idx)):
        out = scheduler.add_noise(x, z, index)
        scale = ref.term_scale(xv, levels[np.asarray(index_ref)].max() * zv)
        assert_close(out, ref.noised(xv, zv, index_ref, levels), like=x, scale=scale, rtol=_rtol(backend, dtype))
    _assert_untouched(backend, (x, z), (xv, zv))


def test_schedule_and_adjacent_sigma(backend: LoadedBackend) -> None:
    scheduler = _scheduler(xp=backend.xp, device=backend.device)
    for name, want in (("timesteps", ref.timesteps(N)), ("sigmas", ref.continuous_sigmas(ref.timesteps(N))),
                       ("discrete_sigmas", ref.discrete_sigmas(N))):
        got = getattr(scheduler, name)
        assert_close(got, want, like=backend.asarray(np.zeros(N), got.dtype))
    idx = backend.asarray(np.array([0, 1, 5, N - 1]))
    levels = ref.discrete_sigmas(N)
    got = scheduler.get_adjacent_sigma(idx, None)
    assert_close(got, np.array([0.0, levels[0], levels[4], levels[N - 2]]))


# ---------------------------------------------------------------------------------------------- xp= and device=
_XP_SPECS = [
    ("numpy", "numpy", "numpy"), ("numpy", "numpy", "module"),
    ("torch", "torch", "name"), ("torch", "torch", "module"),
    ("jax", "jax", "name"), ("jax.numpy", "jax", "name"), ("jax", "jax", "module"), ("jax.numpy", "jax", "module"),
    ("dask", "dask", "name"), ("dask.array", "dask", "name"), ("dask", "dask", "module"),
    ("dask.array", "dask", "module"),
    ("array_api_strict", "array_api_strict", "name"), ("array_api_strict", "array_api_strict", "module"),
]


def _is_strict(x: Any) -> bool:
    import array_api_compat as compat

    return compat.is_array_api_obj(x) and compat.is_array_api_strict_namespace(compat.array_namespace(x))


def _is_array_of(kind: str, x: Any) -> bool:
    import array_api_compat as compat

    return {"numpy": compat.is_numpy_array, "torch": compat.is_torch_array, "jax": compat.is_jax_array,
            "dask": compat.is_dask_array, "array_api_strict": _is_strict}[kind](x)


@pytest.mark.parametrize(("spec", "kind", "how"), _XP_SPECS, ids=[f"{s}-{h}" for s, _, h in _XP_SPECS])
def test_xp_by_module_or_name(spec: str, kind: str, how: str) -> None:
    pytest.importorskip(spec.split(".")[0])
    xp = spec if how != "module" else importlib.import_module(spec)
    scheduler = _scheduler(xp=xp)
    for name in ("timesteps", "sigmas", "discrete_sigmas"):
        assert _is_array_of(kind, getattr(scheduler, name)), (name, type(getattr(scheduler, name)))
    np.testing.assert_allclose(np.asarray(scheduler.timesteps), ref.timesteps(N), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(scheduler.discrete_sigmas), ref.discrete_sigmas(N), rtol=1e-6)
    # set_timesteps(xp=) moves the whole schedule; a NumPy sample still gets a NumPy result.
    other = sdeve.ScoreSdeVeScheduler()
    other.set_timesteps(N, xp=xp)
    assert _is_array_of(kind, other.timesteps) and _is_array_of(kind, other.discrete_sigmas)
    sample = np.ones((2, 3))
    out = scheduler.step_pred(-sample, 0.5, sample, generator=0)
    assert type(out.prev_sample) is np.ndarray


def test_unknown_namespace_name() -> None:
    with pytest.raises(ValueError, match="unknown array namespace 'tensorflow'"):
        sdeve.ScoreSdeVeScheduler(xp="tensorflow")
    with pytest.raises(TypeError, match="expected an array namespace"):
        sdeve.ScoreSdeVeScheduler(xp=3)


def _devices_for(backend: LoadedBackend) -> list[Any]:
    """Devices to place the schedule on: the backend's, and a non-default one where the library has one."""
    if backend.name == "array_api_strict":
        import array_api_strict as strict

        return [strict.Device("CPU_DEVICE"), strict.Device("device1")]
    if backend.name in ("numpy", "numpy_readonly", "dask"):
        return ["cpu"]
    return [backend.device]


def test_device_at_construction_and_in_set_timesteps(backend: LoadedBackend) -> None:
    import array_api_compat as compat

    for device in _devices_for(backend):
        built = sdeve.ScoreSdeVeScheduler(xp=backend.xp, device=device)
        moved = sdeve.ScoreSdeVeScheduler(xp=backend.xp)
        moved.set_timesteps(N, device=device)
        moved.set_sigmas(N)
        for scheduler in (built, moved):
            for name in ("timesteps", "sigmas", "discrete_sigmas"):
                got = compat.device(getattr(scheduler, name))
                if backend.name == "dask":
                    continue
                assert str(got) == str(device), (name, got, device)
        assert scheduler.device == device


def test_non_default_device_follows_the_sample() -> None:
    strict = pytest.importorskip("array_api_strict")
    dev = strict.Device("device1")
    x = strict.asarray(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), device=dev)
    scheduler = _scheduler()  # NumPy schedule; every result must land on the sample's device
    outs = [scheduler.step_pred(-x, 0.5, x, generator=0).prev_sample,
            scheduler.step_pred(-x, strict.asarray([0.5, 0.2], device=dev), x, generator=0).prev_sample,
            scheduler.step_correct(-x, x, generator=0).prev_sample,
            scheduler.add_noise(x, x, strict.asarray([1, 2], device=dev))]
    assert all(o.device == dev for o in outs)
    # A device without float64 gets a float32 schedule and float32 results.
    low = strict.Device("no_float64")
    y = strict.asarray(np.ones((2, 3), dtype=np.float32), device=low)
    out = scheduler.step_pred(-y, 0.5, y, generator=0).prev_sample
    assert out.device == low and out.dtype == strict.float32


# ---------------------------------------------------------------------------------------------- schedule cache
def test_torch_sample_with_numpy_schedule_is_never_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    scheduler = _scheduler()
    x = torch.linspace(-3, 3, 12, dtype=torch.float64).reshape(3, 4).requires_grad_(True)
    score, noise = -x / 9.0, torch.ones(3, 4, dtype=torch.float64)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sample was converted to NumPy")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    monkeypatch.setattr(torch.Tensor, "numpy", refuse)
    t = float(scheduler.timesteps[2])
    out = scheduler.step_pred(score, t, x, noise=noise)
    assert isinstance(out.prev_sample, torch.Tensor) and out.prev_sample.dtype == torch.float64
    # Still differentiable: d prev / d x = 1 + g^2 * d score / d x = 1 - g^2 / 9.
    out.prev_sample.sum().backward()
    g2 = float(ref.predictor_g2(t, N, ref.discrete_sigmas(N)))
    np.testing.assert_allclose(x.grad.detach().cpu().double().tolist(), np.full((3, 4), 1 - g2 / 9.0), rtol=1e-12)
    monkeypatch.undo()
    # The held schedule stays NumPy. A host timestep reads its levels from the held schedule as Python
    # floats, so no torch copy is needed; a torch timestep array gets one, built once and reused.
    assert isinstance(scheduler.timesteps, np.ndarray) and isinstance(scheduler.discrete_sigmas, np.ndarray)
    assert not any(k[0] == "torch" for k in scheduler.schedule._moved)
    batch_t = torch.full((3,), t, dtype=torch.float64)
    scheduler.step_pred(score.detach(), batch_t, x.detach(), noise=noise)
    cached = [v for k, v in scheduler.schedule._moved.items() if k[0] == "torch"]
    assert len(cached) == 1 and isinstance(cached[0].discrete_sigmas, torch.Tensor)
    scheduler.step_pred(score.detach(), batch_t, x.detach(), noise=noise)
    assert next(v for k, v in scheduler.schedule._moved.items() if k[0] == "torch") is cached[0]
    # A new schedule is a new value, with nothing moved yet.
    scheduler.set_sigmas(N, sigma_max=100.0)
    assert not any(k[0] == "torch" for k in scheduler.schedule._moved)
    out = scheduler.step_pred(score.detach(), 1.0, x.detach(), noise=noise)
    levels = ref.discrete_sigmas(N, sigma_max=100.0)
    want, _ = ref.predictor(x.detach().numpy(), score.detach().numpy(), noise.numpy(), 1.0, N, levels)
    np.testing.assert_allclose(out.prev_sample.numpy(), want, rtol=1e-12)


def test_set_sigmas_follows_the_timesteps_already_set() -> None:
    scheduler = sdeve.ScoreSdeVeScheduler()
    assert scheduler.timesteps.shape == scheduler.sigmas.shape == scheduler.discrete_sigmas.shape == (2000,)
    scheduler.set_sigmas(3)
    # The timesteps were already set (2000 of them) by the constructor: sigmas follows them, not the 3.
    assert scheduler.timesteps.shape == (2000,) and scheduler.sigmas.shape == (2000,)
    np.testing.assert_allclose(scheduler.discrete_sigmas, ref.discrete_sigmas(3), rtol=1e-13)
    np.testing.assert_allclose(scheduler.sigmas, ref.continuous_sigmas(ref.timesteps(2000)), rtol=1e-12)
    scheduler.set_timesteps(3)
    assert scheduler.timesteps.shape == (3,) and scheduler.sigmas.shape == (2000,)  # left as they were
    scheduler.set_sigmas(3)
    np.testing.assert_allclose(scheduler.sigmas, ref.continuous_sigmas(ref.timesteps(3)), rtol=1e-13)
    # sampling_eps of set_timesteps reaches the timesteps.
    scheduler.set_timesteps(4, sampling_eps=0.25)
    np.testing.assert_allclose(scheduler.timesteps, [1.0, 0.75, 0.5, 0.25])


# ---------------------------------------------------------------------------------------------- generators
def _own_generator(backend: LoadedBackend, seed: int) -> Any:
    """The framework's own generator type for ``seed``."""
    module = backend.backend.module
    if module == "torch":
        import torch

        return torch.Generator(device=backend.device).manual_seed(seed)
    if module == "jax.numpy":
        import jax

        return jax.random.key(seed)
    if module == "dask.array":
        import dask.array as da

        return da.random.default_rng(seed)
    if module == "cupy":
        import cupy

        return cupy.random.default_rng(seed)
    return np.random.default_rng(seed)  # numpy, and the NumPy fallback of array_api_strict


def _own_draw(backend: LoadedBackend, seed: int, like: Any) -> Any:
    """What the framework's own generator draws for ``seed``, shaped and typed like ``like``."""
    module, shape = backend.backend.module, tuple(like.shape)
    if module == "torch":
        import torch

        return torch.randn(shape, generator=torch.Generator(device=backend.device).manual_seed(seed),
                           device=backend.device, dtype=like.dtype)
    if module == "jax.numpy":
        import jax

        return jax.random.normal(jax.random.key(seed), shape, dtype=like.dtype)
    if module == "dask.array":
        import dask.array as da

        return da.random.default_rng(seed).standard_normal(size=shape, chunks=like.chunks, dtype=like.dtype)
    if module == "cupy":
        import cupy

        return cupy.random.default_rng(seed).standard_normal(shape, dtype=like.dtype)
    if module == "array_api_strict":
        host = np.float64 if like.dtype == backend.xp.float64 else np.float32
        return backend.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=host), like.dtype)
    return backend.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=like.dtype))


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_generator_semantics(backend: LoadedBackend, dtype_name: str) -> None:
    dtype = _dtype(backend, dtype_name)
    scheduler = _scheduler()
    (x, s, _), _ = _inputs(backend, (3, 2, 3), dtype, seed=4)
    t = float(scheduler.timesteps[2])

    def pred(generator: Any = None, noise: Any = None) -> np.ndarray:
        return backend.to_numpy(scheduler.step_pred(s, t, x, generator=generator, noise=noise).prev_sample)

    def corr(generator: Any = None, noise: Any = None) -> np.ndarray:
        return backend.to_numpy(scheduler.step_correct(s, x, generator=generator, noise=noise).prev_sample)

    for step in (pred, corr):
        same = step(_own_generator(backend, 7))
        np.testing.assert_array_equal(step(_own_generator(backend, 7)), same)
        assert not np.allclose(step(_own_generator(backend, 8)), same)
        # The draw is the framework's own draw for that generator. On JAX the generic scheduler draws inside
        # the compiled update (one dispatch), where XLA may fuse the normal transform differently from a
        # separate draw: the same numbers to a few ulps, not always to the bit.
        if backend.backend.module == "jax.numpy":
            eps = float(np.finfo(np.float16 if dtype_name == "float16" else np.dtype(dtype_name)).eps) if dtype_name != "bfloat16" else 2.0**-7
            np.testing.assert_allclose(step(noise=_own_draw(backend, 7, x)), same, rtol=0, atol=8 * eps * np.max(np.abs(same)))
        else:
            np.testing.assert_array_equal(step(noise=_own_draw(backend, 7, x)), same)
        # An int seed works on every adapter; None draws fresh noise each call.
        np.testing.assert_array_equal(step(11), step(11))
        assert not np.allclose(step(None), step(None))


def test_numpy_generator_kinds() -> None:
    scheduler = _scheduler()
    x = np.linspace(-2, 2, 8).reshape(2, 4)
    base = scheduler.step_pred(-x, 0.5, x, generator=np.random.default_rng(3)).prev_sample
    for generator in (3, np.int64(3), np.random.SeedSequence(3), np.random.PCG64(3)):
        np.testing.assert_array_equal(scheduler.step_pred(-x, 0.5, x, generator=generator).prev_sample, base)
    legacy = scheduler.step_pred(-x, 0.5, x, generator=np.random.RandomState(3)).prev_sample
    assert np.all(np.isfinite(legacy)) and not np.allclose(legacy, base)
    with pytest.raises(TypeError, match="expected a numpy.random.Generator"):
        scheduler.step_pred(-x, 0.5, x, generator="seed")


def test_jax_raw_and_typed_keys_agree() -> None:
    jax = pytest.importorskip("jax")
    scheduler = _scheduler()
    x = jax.numpy.linspace(-2, 2, 8).reshape(2, 4)
    typed = scheduler.step_pred(-x, 0.5, x, generator=jax.random.key(5)).prev_sample
    raw = scheduler.step_pred(-x, 0.5, x, generator=jax.random.PRNGKey(5)).prev_sample
    seeded = scheduler.step_pred(-x, 0.5, x, generator=5).prev_sample
    np.testing.assert_array_equal(np.asarray(typed), np.asarray(raw))
    np.testing.assert_array_equal(np.asarray(typed), np.asarray(seeded))


def test_torch_list_of_generators_draws_per_example() -> None:
    torch = pytest.importorskip("torch")
    scheduler = _scheduler()
    x = torch.linspace(-2, 2, 12).reshape(3, 4)
    gens = [torch.Generator().manual_seed(k) for k in (1, 2, 3)]
    out = scheduler.step_pred(-x, 0.5, x, generator=gens).prev_sample
    noise = torch.cat([torch.randn((1, 4), generator=torch.Generator().manual_seed(k)) for k in (1, 2, 3)])
    torch.testing.assert_close(out, scheduler.step_pred(-x, 0.5, x, noise=noise).prev_sample, rtol=0, atol=0)
    with pytest.raises(ValueError, match="got 2 generators for a batch of 3"):
        scheduler.step_pred(-x, 0.5, x, generator=gens[:2])


# ---------------------------------------------------------------------------------------------- corrector rules
def test_example_norm_makes_results_independent_of_batch_mates(backend: LoadedBackend) -> None:
    dtype = _dtype(backend, "float32")
    rng = np.random.default_rng(5)
    first = [rng.standard_normal((1, 3, 4)) for _ in range(3)]  # sample, score, noise of example 0
    mates = [[rng.standard_normal((2, 3, 4)) * k for _ in range(3)] for k in (1.0, 40.0)]

    def first_result(norm: str, mate: list[np.ndarray]) -> np.ndarray:
        x, s, z = (backend.asarray(np.concatenate([a, b]), dtype) for a, b in zip(first, mate))
        return backend.to_numpy(_scheduler(corrector_norm=norm).step_correct(s, x, noise=z).prev_sample)[0]

    np.testing.assert_array_equal(first_result("example", mates[0]), first_result("example", mates[1]))
    want, _ = ref.corrector(*(a.astype(np.float32) for a in first), 0.15, "example")
    np.testing.assert_allclose(first_result("example", mates[0]), want[0], rtol=1e-5)
    # The diffusers rule ("batch") couples them: the same example changes with its batch-mates.
    assert not np.allclose(first_result("batch", mates[0]), first_result("batch", mates[1]), rtol=1e-3)


@pytest.mark.parametrize("norm", ["batch", "example"])
def test_zero_score_leaves_the_sample_unchanged(backend: LoadedBackend, norm: str) -> None:
    scheduler = _scheduler(corrector_norm=norm)
    for dtype in backend.dtypes().values():
        (x, _, z), (xv, _, _) = _inputs(backend, (3, 2, 2), dtype, seed=6)
        zero = backend.asarray(np.zeros((3, 2, 2)), dtype)
        for noise in (z, None):
            out = scheduler.step_correct(zero, x, generator=0, noise=noise).prev_sample
            assert_close(out, xv, like=x, rtol=0.0)
    # With per-example norms only the example whose score is zero is left as it is.
    dtype = _dtype(backend, "float32")
    (x, _, z), (xv, sv, _) = _inputs(backend, (3, 2, 2), dtype, seed=7)
    sv[1] = 0.0
    out = backend.to_numpy(_scheduler(corrector_norm="example").step_correct(backend.asarray(sv, dtype), x, noise=z).prev_sample)
    np.testing.assert_array_equal(out[1], xv[1])
    assert np.all(np.isfinite(out)) and not np.allclose(out[0], xv[0])


# ---------------------------------------------------------------------------------------------- bound scheduler
def test_numpy_bound_scheduler() -> None:
    from sdeve_backends.numpy import ScoreSdeVeScheduler as NumpyScheduler

    scheduler = NumpyScheduler(xp="numpy")
    assert isinstance(scheduler.timesteps, np.ndarray) and scheduler.timesteps.dtype == np.float64
    assert isinstance(NumpyScheduler(xp=np).discrete_sigmas, np.ndarray)
    pytest.importorskip("torch")
    import torch

    with pytest.raises(ValueError, match="bound to numpy"):
        NumpyScheduler(xp=torch)
    with pytest.raises(ValueError, match="bound to numpy"):
        NumpyScheduler(xp="torch")
    with pytest.raises(ValueError, match="bound to numpy"):
        scheduler.set_timesteps(5, xp="torch")
    assert isinstance(scheduler.timesteps, np.ndarray)


# ---------------------------------------------------------------------------------------------- dask
def _refuse_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a Dask graph was computed inside the scheduler")


def test_dask_results_stay_lazy_and_follow_chunks() -> None:
    da = pytest.importorskip("dask.array")
    import dask

    from sdeve_backends import noise_like

    backend = load_backend(next(b for b in BACKENDS if b.name == "dask"))
    scheduler = _scheduler()
    rng = np.random.default_rng(8)
    xv = rng.standard_normal((5, 4, 6)) * 20
    x = da.from_array(xv, chunks=(2, 3, 4))
    s = -x / 400.0
    t_batch = da.from_array(np.array([1.0, 0.5, 0.25, 0.1, 0.0]), chunks=2)
    idx = da.from_array(np.array([0, 2, 4, 6, 9]), chunks=2)
    with dask.config.set(scheduler=_refuse_compute):
        noise = noise_like(da.random.default_rng(1), x)
        assert noise.chunks == x.chunks
        results = {
            "pred": scheduler.step_pred(s, 0.5, x, generator=da.random.default_rng(1)),
            "pred_0d": scheduler.step_pred(s, da.from_array(np.float64(0.5)), x, noise=noise),
            "pred_batch": scheduler.step_pred(s, t_batch, x, noise=noise),
            "correct": scheduler.step_correct(s, x, generator=2),
            "add_noise": scheduler.add_noise(x, noise, idx),
        }
        for name, out in results.items():
            arrays = [out] if name == "add_noise" else [out.prev_sample]
            for arr in arrays:
                assert isinstance(arr, da.Array), name
                assert arr.chunks == x.chunks, (name, arr.chunks)
    levels = ref.discrete_sigmas(N)
    zv = backend.to_numpy(noise)
    want, _ = ref.predictor(xv, -xv / 400.0, zv, np.array([1.0, 0.5, 0.25, 0.1, 0.0]), N, levels)
    assert_close(results["pred_batch"].prev_sample, want, like=x)
    assert_close(results["add_noise"], ref.noised(xv, zv, np.array([0, 2, 4, 6, 9]), levels), like=x)
