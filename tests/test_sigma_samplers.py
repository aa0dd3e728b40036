"""The sigma-space samplers and Gotta Go Fast on every backend, against float64 NumPy references written here
from the papers' formulas (not from the samplers' coefficient tables), with the same injected noise; through
:func:`sdeve.sample` on JAX, one compiled program equal to the step-by-step run."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from conformance.reference_sigma import (
    ref_adaptive,
    ref_dpmpp_2m,
    ref_dpmpp_2m_sde,
    ref_dpmpp_3m_sde,
    ref_euler_ancestral,
    ref_karras,
)
from sdeve.oracles import GaussianMixture
from sdeve.samplers import adaptive, sigma_levels, sigma_space

MIX = GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.5], [2.5, -1.0], [0.5, 3.0]], [0.5, 0.7, 0.4])
BATCH = 6


def score64(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(MIX.score(x, np.full(x.shape[0], sigma)))


def den(x: np.ndarray, sigma: float) -> np.ndarray:
    """``D(x, sigma) = x + sigma^2 score`` (Karras et al. 2022, eq. (3), for a score model)."""
    return x + sigma * sigma * score64(x, sigma)


CASES: dict[str, tuple[Callable[..., Any], Callable[..., np.ndarray], dict[str, Any]]] = {
    "euler": (sigma_space.sample_euler, lambda *a, **o: ref_karras(*a, heun=False, **o), {}),
    "euler_churn": (sigma_space.sample_euler, lambda *a, **o: ref_karras(*a, heun=False, **o),
                    {"s_churn": 2.0, "s_tmin": 0.1, "s_tmax": 5.0, "s_noise": 1.01}),
    "heun": (sigma_space.sample_heun, lambda *a, **o: ref_karras(*a, heun=True, **o), {}),
    "heun_churn_trapezoid": (sigma_space.sample_heun, lambda *a, **o: ref_karras(*a, heun=True, **o),
                             {"s_churn": 1.0, "final_step": "trapezoid"}),
    "euler_ancestral": (sigma_space.sample_euler_ancestral, ref_euler_ancestral, {"eta": 0.8, "s_noise": 0.95}),
    "dpmpp_2m": (sigma_space.sample_dpmpp_2m, ref_dpmpp_2m, {}),
    "dpmpp_2m_sde": (sigma_space.sample_dpmpp_2m_sde, ref_dpmpp_2m_sde, {}),
    "dpmpp_2m_sde_heun": (sigma_space.sample_dpmpp_2m_sde, ref_dpmpp_2m_sde, {"solver_type": "heun", "eta": 0.5}),
    "dpmpp_3m_sde": (sigma_space.sample_dpmpp_3m_sde, ref_dpmpp_3m_sde, {}),
    "dpmpp_3m_ode": (sigma_space.sample_dpmpp_3m_sde, ref_dpmpp_3m_sde, {"eta": 0.0}),
}


def _noises(count: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((BATCH, 2)) for _ in range(count)]


def _start(sig: list[float]) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((BATCH, 2)) * sig[0]


def _tolerance(dtype_name: str) -> float:
    return 1e-10 if dtype_name == "float64" else 2e-4


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_sampler_matches_float64_reference(backend: Any, case: str, dtype_name: str) -> None:
    dtype = backend.dtypes().get(dtype_name)
    if dtype is None:
        pytest.skip(f"{backend.name} has no {dtype_name}")
    fn, ref, options = CASES[case]
    sig = list(sigma_levels.build_sigmas(7, sigma_min=0.05, sigma_max=10.0, sigma_start=40.0))
    noises = _noises(20)
    expected = ref(den, _start(sig), sig, iter(noises), **options)
    draws = iter(noises)
    x = backend.asarray(_start(sig), dtype)
    out = fn(MIX.score, x, sig, noise=lambda like: backend.asarray(next(draws), like.dtype), **options)
    assert type(out) is type(x) and out.dtype == x.dtype and tuple(out.shape) == (BATCH, 2)
    got = backend.to_numpy(out)
    assert np.max(np.abs(got - expected)) <= _tolerance(dtype_name) * max(1.0, float(np.max(np.abs(expected))))


@pytest.mark.parametrize("error_norm", ["example", "batch"])
def test_adaptive_matches_float64_reference(backend: Any, error_norm: str) -> None:
    dtype = backend.dtypes().get("float64")
    if dtype is None:  # accept/reject decisions would differ from a float64 reference by rounding
        pytest.skip(f"{backend.name} has no float64")
    sig = [10.0, 0.05, 0.0]
    noises = _noises(400)
    expected = ref_adaptive(lambda x, s: np.asarray(MIX.score(x, s)), _start(sig), sig, iter(noises), rtol=0.1,
                            error_norm=error_norm)
    draws = iter(noises)
    out, info = adaptive.sample_adaptive_sde(MIX.score, backend.asarray(_start(sig), dtype), sig, rtol=0.1,
                                             error_norm=error_norm, return_info=True,
                                             noise=lambda like: backend.asarray(next(draws), like.dtype))
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-9, atol=1e-9)
    assert bool(info["done"]) and int(info["nfe"]) == 2 * int(info["steps"]) + 1


def test_adaptive_float32_runs(backend: Any) -> None:
    rng = np.random.default_rng(3)
    sig = [10.0, 0.05, 0.0]
    x = backend.asarray(_start(sig), backend.dtypes()["float32"])
    out = adaptive.sample_adaptive_sde(MIX.score, x, sig, rtol=0.2,
                                       noise=lambda like: backend.asarray(rng.standard_normal((BATCH, 2)), like.dtype))
    assert out.dtype == x.dtype and np.all(np.isfinite(backend.to_numpy(out)))


# ---------------------------------------------------------------------- schedules
def test_schedules() -> None:
    karras = sigma_levels.build_sigmas(5, sigma_min=0.01, sigma_max=20.0)
    ramp = np.linspace(0, 1, 5)
    expected = (20.0 ** (1 / 7) + ramp * (0.01 ** (1 / 7) - 20.0 ** (1 / 7))) ** 7
    np.testing.assert_allclose(karras[:-1], expected, rtol=1e-12)
    assert karras[-1] == 0.0
    geometric = sigma_levels.build_sigmas(5, schedule="geometric", sigma_min=0.01, sigma_max=20.0)
    np.testing.assert_allclose(geometric[:-1], np.geomspace(20.0, 0.01, 5), rtol=1e-12)
    exponential = sigma_levels.build_sigmas(5, schedule="exponential", sigma_min=0.01, sigma_max=20.0)
    np.testing.assert_allclose(exponential, geometric, rtol=1e-12)
    started = sigma_levels.build_sigmas(5, sigma_min=0.01, sigma_max=20.0, sigma_start=1e4)
    assert started[0] == 1e4 and len(started) == 6
    np.testing.assert_allclose(started[1:], sigma_levels.build_sigmas(4, sigma_min=0.01, sigma_max=20.0))


BAD_SAMPLER_OPTIONS = [
    ("euler", {"s_churn": -1.0}, ValueError),
    ("heun", {"s_tmin": 2.0, "s_tmax": 1.0}, ValueError),
    ("heun", {"s_noise": "1"}, TypeError),
    ("heun", {"s_churn": True}, TypeError),
    ("euler", {"s_churn": math.nan}, ValueError),
    ("euler", {"final_step": "exact"}, ValueError),
    ("euler_ancestral", {"eta": -0.5}, ValueError),
    ("dpmpp_2m_sde", {"solver_type": "rk4"}, ValueError),
    ("dpmpp_3m_sde", {"s_noise": math.inf}, ValueError),
    ("dpmpp_2m", {"eta": 1.0}, TypeError),
    ("adaptive_sde", {"rtol": 0.0}, ValueError),
    ("adaptive_sde", {"max_steps": 0}, TypeError),
    ("adaptive_sde", {"error_norm": "max"}, ValueError),
    ("adaptive_sde", {"h_init": 2.0}, ValueError),
]


def _function(name: str) -> Callable[..., Any]:
    return adaptive.sample_adaptive_sde if name == "adaptive_sde" else getattr(sigma_space, f"sample_{name}")


@pytest.mark.parametrize(("name", "options", "error"), BAD_SAMPLER_OPTIONS,
                         ids=[f"{n}-{next(iter(o))}" for n, o, _ in BAD_SAMPLER_OPTIONS])
def test_bad_options_raise(name: str, options: dict[str, Any], error: type[Exception]) -> None:
    sig = [10.0, 1.0, 0.0]
    with pytest.raises(error):
        _function(name)(MIX.score, _start(sig), sig, noise=lambda like: np.zeros_like(like), **options)


@pytest.mark.parametrize("sigmas", [[1.0], [1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [1.0, -0.5], [math.inf, 1.0, 0.0],
                                    "abc", None])
def test_bad_sigmas_raise(sigmas: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        sigma_space.sample_euler(MIX.score, _start([1.0]), sigmas)


@pytest.mark.parametrize("kwargs", [{"schedule": "cosine"}, {"rho": 0.0}, {"sigma_min": 2.0, "sigma_max": 1.0},
                                    {"sigma_min": 0.0}, {"schedule": "geometric", "rho": 3.0},
                                    {"sigma_start": 5.0}, {"num_steps": 0}, {"num_steps": 2.5}])
def test_bad_schedules_raise(kwargs: dict[str, Any]) -> None:
    args = {"num_steps": 5, "sigma_min": 0.01, "sigma_max": 10.0, **kwargs}
    with pytest.raises((ValueError, TypeError)):
        sigma_levels.build_sigmas(args.pop("num_steps"), **args)


def test_noise_is_required_only_when_drawn() -> None:
    sig = [10.0, 1.0, 0.0]
    sigma_space.sample_heun(MIX.score, _start(sig), sig)  # deterministic: no noise needed
    with pytest.raises(TypeError, match="noise"):
        sigma_space.sample_dpmpp_2m_sde(MIX.score, _start(sig), sig)


def test_model_with_a_wrong_shape_raises() -> None:
    sig = [10.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        sigma_space.sample_euler(lambda x, s: x[:, :1], _start(sig), sig)


# ---------------------------------------------------------------------- through sdeve.sample
SIGMA_SAMPLERS = ("euler", "heun", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "adaptive_sde")


def test_registered() -> None:
    import sdeve

    assert set(SIGMA_SAMPLERS) <= set(sdeve.SAMPLERS)


def _scheduler() -> Any:
    import sdeve

    return sdeve.ScoreSdeVeScheduler(sigma_min=0.05, sigma_max=10.0)


@pytest.mark.parametrize("name", SIGMA_SAMPLERS)
def test_jax_compiled_equals_step_by_step(name: str) -> None:
    """Without a callback the run is one compiled program (``fori_loop``/``while_loop`` under ``jax.jit``);
    with one, Python steps. Same key, same draws: the same samples."""
    pytest.importorskip("jax")
    import sdeve

    options: dict[str, Any] = {"s_churn": 1.0} if name in ("euler", "heun") else {}
    kwargs = {"sampler": name, "scheduler": _scheduler(), "num_inference_steps": 6, "generator": 0, "xp": "jax",
              **options}
    compiled = sdeve.sample(MIX.score, (BATCH, 2), **kwargs)
    steps: list[int] = []
    stepped = sdeve.sample(MIX.score, (BATCH, 2), callback=lambda info: steps.append(info["i"]), **kwargs)
    assert steps  # the callback ran, so the second run was step by step
    np.testing.assert_allclose(np.asarray(compiled), np.asarray(stepped), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", SIGMA_SAMPLERS[:-1])
def test_jax_traces_the_model_a_fixed_number_of_times(name: str) -> None:
    """One program whatever ``N``: the model is traced for the first step, the loop body and the last step."""
    pytest.importorskip("jax")
    import sdeve

    traces = []
    for steps in (5, 9):
        calls = [0]
        mixture = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.5, 0.5])

        def model(x: Any, sigma: Any, calls: list[int] = calls, mixture: GaussianMixture = mixture) -> Any:
            calls[0] += 1
            return mixture.score(x, sigma)

        sdeve.sample(model, (BATCH, 2), sampler=name, scheduler=_scheduler(), num_inference_steps=steps,
                     generator=0, xp="jax")
        traces.append(calls[0])
    assert traces[0] == traces[1] <= 6


@pytest.mark.parametrize("name", SIGMA_SAMPLERS[:-1])
def test_sdedit_and_inpainting(name: str) -> None:
    import sdeve

    init = np.tile(np.array([[2.5, -1.0]]), (BATCH, 1))
    mask = np.array([[1.0, 0.0]])
    out = sdeve.sample(MIX.score, (BATCH, 2), sampler=name, scheduler=_scheduler(), num_inference_steps=8,
                       generator=0, init=init, strength=0.5, mask=mask)
    np.testing.assert_allclose(out[:, 0], init[:, 0], atol=1e-12)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(("options", "error"), [({"schedule": "cosine"}, ValueError), ({"rho": -1.0}, ValueError),
                                                ({"sigma_start": 1.0}, ValueError), ({"snr": 0.1}, TypeError),
                                                ({"eta": -1.0}, ValueError), ({"final_step": 1}, ValueError)])
def test_bad_options_through_sample(options: dict[str, Any], error: type[Exception]) -> None:
    import sdeve

    with pytest.raises(error):
        sdeve.sample(MIX.score, (BATCH, 2), sampler="dpmpp_2m_sde", scheduler=_scheduler(), num_inference_steps=4,
                     generator=0, **options)


def test_mask_is_refused_by_the_adaptive_sampler() -> None:
    import sdeve

    with pytest.raises(ValueError):
        sdeve.sample(MIX.score, (BATCH, 2), sampler="adaptive_sde", scheduler=_scheduler(), num_inference_steps=4,
                     generator=0, init=np.zeros((BATCH, 2)), mask=np.ones((1, 2)))


@pytest.mark.gpu
@pytest.mark.parametrize("name", SIGMA_SAMPLERS[:-1])
def test_torch_cuda_never_synchronises(name: str) -> None:
    """Fixed-step samplers read nothing from the device between steps."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import sdeve

    generator = torch.Generator("cuda").manual_seed(0)
    sdeve.sample(MIX.score, (BATCH, 2), sampler=name, scheduler=_scheduler(), num_inference_steps=3,
                 generator=generator, device="cuda")  # warm-up: caches, lazy imports
    torch.cuda.set_sync_debug_mode("error")
    try:
        sdeve.sample(MIX.score, (BATCH, 2), sampler=name, scheduler=_scheduler(), num_inference_steps=6,
                     generator=generator, device="cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
