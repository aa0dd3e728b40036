"""The probability-flow ODE (sdeve.samplers.ode): adaptive RK45 against ``scipy.integrate.solve_ivp(RK45)`` at
the same tolerances on every backend, fixed-step Euler and Heun, the denoising step, the exact map of Gaussian
data (Hypothesis), encode/decode, and bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sdeve
from conformance.backends import LoadedBackend
from sdeve.oracles import GaussianMixture, ring
from sdeve.samplers import ode

SIGMA_MIN, SIGMA_MAX, EPS = 0.01, 1348.0, 1e-5
SIGMA_EPS = SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** EPS  # sigma(sampling_eps), where Song's ODE stops


def backend_of(loaded: LoadedBackend) -> Any:
    """The adapter the core is handed for this backend."""
    return sdeve.backend_for(loaded.xp)


def _wide(loaded: LoadedBackend) -> Any:
    dtypes = loaded.dtypes()
    return dtypes.get("float64", dtypes["float32"])


def scipy_flow(model: Any, x0: np.ndarray, sigma_from: float, sigma_to: float, rtol: float = 1e-5,
               atol: float = 1e-5) -> tuple[np.ndarray, int]:
    """Song's reference: ``solve_ivp(method="RK45")`` on the flattened batch, in his time
    ``t = ln(sigma / sigma_lo) / ln(sigma_hi / sigma_lo)``; returns ``(x at sigma_to, nfev)``."""
    from scipy.integrate import solve_ivp

    lo, hi = min(sigma_from, sigma_to), max(sigma_from, sigma_to)
    log_ratio = math.log(hi / lo)
    shape = x0.shape

    def f(t: float, y: np.ndarray) -> np.ndarray:
        sigma = lo * math.exp(t * log_ratio)
        score = model(y.reshape(shape), np.full(shape[0], sigma))
        return (-log_ratio * sigma * sigma * score).ravel()

    t0, t1 = math.log(sigma_from / lo) / log_ratio, math.log(sigma_to / lo) / log_ratio
    out = solve_ivp(f, (t0, t1), x0.ravel(), method="RK45", rtol=rtol, atol=atol)
    assert out.status == 0, out.message
    return out.y[:, -1].reshape(shape), int(out.nfev)


def _start(n: int, seed: int, dim: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)) * SIGMA_MAX


def test_rk45_matches_scipy(backend: LoadedBackend) -> None:
    """Same steps as scipy: float64 results agree to rounding and the NFE is equal; float32 (JAX without x64)
    to the tolerance, with an NFE within 25%."""
    if backend.name == "dask":
        pytest.skip("dask: see test_rk45_on_dask (slow)")
    gm = ring()
    x0 = _start(4, seed=0)
    ref, ref_nfe = scipy_flow(gm, x0, SIGMA_MAX, SIGMA_EPS)
    x = backend.asarray(x0, dtype=_wide(backend))
    with backend.context():
        _, solution = ode.solve_flow(gm, x, SIGMA_MAX, SIGMA_EPS, backend=backend_of(backend))
    out = backend.to_numpy(solution.y[0])
    nfe = int(solution.nfe)
    if backend.dtypes().get("float64") is not None:
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)
        assert nfe == ref_nfe
    else:
        np.testing.assert_allclose(out, ref, rtol=0, atol=20 * (1e-5 + 1e-5 * np.max(np.abs(ref))))
        assert abs(nfe - ref_nfe) <= 0.25 * ref_nfe
    assert bool(solution.success)


@pytest.mark.slow
def test_rk45_on_dask() -> None:
    """Dask: each attempted step is persisted (the backend's ``settle``) and one 0-d value computed."""
    da = pytest.importorskip("dask.array")
    gm = ring()
    x0 = _start(4, seed=0)
    ref, ref_nfe = scipy_flow(gm, x0, SIGMA_MAX, SIGMA_EPS, rtol=1e-2, atol=1e-2)
    _, solution = ode.solve_flow(gm, da.from_array(x0, chunks=(2, 2)), SIGMA_MAX, SIGMA_EPS, rtol=1e-2, atol=1e-2,
                                 backend=sdeve.backend_for(da))
    np.testing.assert_allclose(np.asarray(solution.y[0]), ref, rtol=0, atol=1e-9)
    assert int(solution.nfe) == ref_nfe


def test_rk45_compiles_as_one_program_on_jax() -> None:
    """Under ``jax.jit`` the solve is one ``lax.while_loop``: no value is read on the host."""
    jax = pytest.importorskip("jax")
    gm = GaussianMixture([1.0], [[0.5, -1.0]], [0.7])
    x0 = _start(3, seed=1)
    ref, ref_nfe = scipy_flow(gm, x0, SIGMA_MAX, SIGMA_EPS)
    with jax.enable_x64(True):
        x = jax.numpy.asarray(x0)
        backend = sdeve.backend_for(x)
        solve = jax.jit(lambda a: ode.integrate(gm, a, SIGMA_MAX, SIGMA_EPS, backend=backend))
        solution = solve(x)
        np.testing.assert_allclose(np.asarray(solution.y[0]), ref, rtol=0, atol=1e-9)
        assert int(solution.nfe) == ref_nfe


def _gaussian_map(x: np.ndarray, s: float, sigma_from: float, sigma_to: float) -> np.ndarray:
    """The exact flow of N(0, s^2 I) data: x scales by sqrt((sigma_to^2 + s^2) / (sigma_from^2 + s^2))."""
    return x * math.sqrt((sigma_to**2 + s**2) / (sigma_from**2 + s**2))


@given(
    s=st.floats(0.05, 20.0),
    sigma_max=st.floats(5.0, 2000.0),
    dim=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_ode_maps_gaussian_prior_onto_gaussian_data(s: float, sigma_max: float, dim: int, seed: int) -> None:
    """With the exact score of N(0, s^2 I), the ODE carries N(0, (sigma_max^2 + s^2) I) onto
    N(0, (sigma_min^2 + s^2) I) pointwise, to a few tolerances (the global error of RK45 at rtol = atol = 1e-5)."""
    gm = GaussianMixture([1.0], [[0.0] * dim], [s])
    x0 = np.random.default_rng(seed).standard_normal((5, dim)) * math.sqrt(sigma_max**2 + s**2)
    out = ode.integrate(gm, x0, sigma_max, SIGMA_MIN).y[0]
    exact = _gaussian_map(x0, s, sigma_max, SIGMA_MIN)
    # the global error measured over 150 random cases peaked at 1.4 tolerances
    np.testing.assert_allclose(out, exact, rtol=0, atol=5 * (1e-5 + 1e-5 * np.max(np.abs(exact))))


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_fixed_steps_converge_at_their_order(method: str) -> None:
    """On Gaussian data the error of Euler falls as 1/N and Heun's as 1/N^2 (geometric levels)."""
    s = 0.5
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [s])
    x0 = _start(8, seed=2)
    exact = _gaussian_map(x0, s, SIGMA_MAX, SIGMA_MIN)
    errors = []
    for n in (50, 100):
        sigmas = list(SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** np.linspace(1, 0, n)) + [0.0]
        out = ode.sample_ode(gm, x0, sigmas, method=method, denoise=False)
        errors.append(np.max(np.abs(out - exact)))
    order = math.log2(errors[0] / errors[1])
    assert order == pytest.approx(1.0 if method == "euler" else 2.0, abs=0.25), errors


def test_fixed_steps_count_model_evaluations() -> None:
    calls = []
    gm = ring()

    def model(x: Any, sigma: Any) -> Any:
        calls.append(float(sigma[0]))
        return gm(x, sigma)

    sigmas = [SIGMA_MAX, 10.0, 1.0, SIGMA_MIN, 0.0]
    ode.sample_ode(model, _start(3, 0), sigmas, method="euler")
    assert calls == sigmas[:-1]
    calls.clear()
    ode.sample_ode(model, _start(3, 0), sigmas, method="heun")
    assert len(calls) == 2 * (len(sigmas) - 1) - 1  # Karras et al.: 2N - 1, the last step to 0 is Euler's


def test_denoising_step_is_tweedie() -> None:
    """``denoise=True`` ends with ``x + sigma^2 s(x, sigma)`` at the last positive level (Song's noise removal)."""
    gm = ring()
    x0 = _start(6, seed=3)
    sigmas = [SIGMA_MAX, SIGMA_EPS, 0.0]
    raw = ode.sample_ode(gm, x0, sigmas, denoise=False)
    done = ode.sample_ode(gm, x0, sigmas, denoise=True)
    np.testing.assert_allclose(done, raw + SIGMA_EPS**2 * gm.score(raw, SIGMA_EPS), rtol=1e-12, atol=1e-12)


def test_ode_samples_reproduce_the_mixture() -> None:
    gm = ring()
    x0 = np.random.default_rng(4).standard_normal((2000, 2)) * SIGMA_MAX
    out = ode.sample_ode(gm, x0, [SIGMA_MAX, SIGMA_EPS, 0.0])
    report = gm.report(out)
    assert report.weight_error < 0.05 and report.mean_error < 0.35 and report.std_error < 0.15, report


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "rk4"}, ValueError, "method must be one of"),
        ({"rtol": 0.0}, ValueError, "rtol must be finite and > 0"),
        ({"atol": -1e-5}, ValueError, "atol must be finite and > 0"),
        ({"rtol": "1e-5"}, TypeError, "rtol must be a real number"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ode.sample_ode(ring(), _start(2, 0), [SIGMA_MAX, SIGMA_MIN, 0.0], **kwargs)


@pytest.mark.parametrize(
    ("sigmas", "match"),
    [([1.0], "at least two"), ([1.0, 2.0, 0.0], "strictly decreasing"), ([1.0, 0.0, 0.0], "strictly decreasing"),
     ([math.nan, 0.0], "finite")],
)
def test_bad_sigmas(sigmas: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ode.sample_ode(ring(), _start(2, 0), sigmas)


def test_model_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="must return the score with x's shape"):
        ode.sample_ode(lambda x, s: x[:, :1], _start(2, 0), [SIGMA_MAX, SIGMA_MIN, 0.0])


def test_failure_is_an_error_not_a_partial_result() -> None:
    """A model that returns NaN stops the solve, which says so."""
    with pytest.raises(RuntimeError, match="the ODE solve stopped"):
        ode.sample_ode(lambda x, s: x * math.nan, _start(2, 0), [SIGMA_MAX, SIGMA_MIN, 0.0])


def test_constraints_need_fixed_steps() -> None:
    with pytest.raises(ValueError, match="need fixed steps"):
        ode.sample_ode(ring(), _start(2, 0), [SIGMA_MAX, SIGMA_MIN, 0.0], constraint=object())


# ---------------------------------------------------------------------------------------------- sdeve.sample
SMALL = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)


def _front_end_start(loaded: LoadedBackend, shape: tuple[int, ...], seed: int, dtype: Any) -> np.ndarray:
    """The standard normals ``sdeve.sample`` starts from (its first draw from the seed), as NumPy."""
    backend = backend_of(loaded)
    noise = sdeve.NoiseSource(backend, backend.make_generator(seed, loaded.device))
    return loaded.to_numpy(noise.draw(shape, dtype=dtype, device=loaded.device))


def _song_levels(n: int, config: Any) -> list[float]:
    t = np.linspace(1.0, config.sampling_eps, n)
    return list(config.sigma_min * np.exp(t * math.log(config.sigma_max / config.sigma_min))) + [0.0]


@pytest.mark.parametrize("method", ["rk45", "heun"])
def test_sample_ode_on_every_backend(backend: LoadedBackend, method: str) -> None:
    """``sdeve.sample(sampler="ode")`` in each namespace gives the NumPy float64 solution from the same start, in
    the namespace, device and dtype asked for (JAX: one compiled program)."""
    if backend.name == "dask" and method == "rk45":
        pytest.skip("dask: the adaptive solve is test_rk45_on_dask (slow)")
    if backend.name == "jax" and method == "rk45":
        pytest.skip("jax: the compiled adaptive solve is test_rk45_matches_scipy[jax] (a compile costs seconds)")
    gm, shape, n = ring(), (16, 2), 12
    wide = "float64" if "float64" in backend.dtypes() else "float32"
    with backend.context():
        out = sdeve.sample(gm, shape, sampler="ode", method=method, scheduler=SMALL, num_inference_steps=n,
                           generator=3, xp=backend.xp, device=backend.device, dtype=backend.dtypes()[wide])
        z0 = _front_end_start(backend, shape, 3, backend.dtypes()[wide])
    assert out.dtype == backend.dtypes()[wide] and tuple(out.shape) == shape
    levels = _song_levels(n, SMALL.config)
    expected = ode.sample_ode(gm, z0 * levels[0], levels, method=method)
    atol = 1e-9 if wide == "float64" else 20 * (1e-5 + 1e-5 * float(np.max(np.abs(expected))))
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("method", ["euler", "heun", "rk45"])
def test_sample_ode_reproduces_the_mixture(method: str) -> None:
    gm = ring()
    out = sdeve.sample(gm, (2000, 2), sampler="ode", method=method, scheduler=SMALL, num_inference_steps=100,
                       generator=0)
    report = gm.report(out)
    assert report.weight_error < 0.05 and report.mean_error < 0.35 and report.std_error < 0.15, report


def test_sample_ode_inpaints_with_fixed_steps() -> None:
    """Inpainting is the constraint after every step: the known part ends exactly as given; rk45 refuses it."""
    gm = ring()
    init = gm.sample(64, generator=1, dtype=np.float64)
    mask = np.array([1.0, 0.0])
    out = sdeve.sample(gm, init.shape, sampler="ode", method="heun", scheduler=SMALL, num_inference_steps=30,
                       generator=2, init=init, mask=mask)
    np.testing.assert_array_equal(out[:, 0], init[:, 0])
    with pytest.raises(ValueError, match="needs fixed steps"):
        sdeve.sample(gm, init.shape, sampler="ode", scheduler=SMALL, num_inference_steps=30, init=init, mask=mask)


def test_sample_ode_sdedit_starts_lower() -> None:
    """SDEdit: with ``strength`` the solve starts at a lower level, from ``init`` noised to it."""
    gm = ring()
    init = gm.sample(8, generator=1, dtype=np.float64)
    calls: list[float] = []

    def model(x: Any, sigma: Any) -> Any:
        calls.append(float(sigma[0]))
        return gm(x, sigma)

    sdeve.sample(model, init.shape, sampler="ode", method="euler", scheduler=SMALL, num_inference_steps=10,
                 init=init, strength=0.5, generator=0)
    assert len(calls) == 5 and calls[0] == pytest.approx(_song_levels(10, SMALL.config)[5])


def test_sample_ode_bad_options() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        sdeve.sample(ring(), (2, 2), sampler="ode", method="dopri8", num_inference_steps=3)
    with pytest.raises(ValueError, match="rtol must be finite and > 0"):
        sdeve.sample(ring(), (2, 2), sampler="ode", rtol=0.0, num_inference_steps=3)
    with pytest.raises(TypeError, match="unexpected options"):
        sdeve.sample(ring(), (2, 2), sampler="ode", predictor="ancestral", num_inference_steps=3)
    assert "ode" in sdeve.SAMPLERS
