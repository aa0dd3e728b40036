"""Likelihood through the probability-flow ODE (sdeve.likelihood), checked against the mixture's exact density.

The ODE is exact in exact arithmetic only when the prior N(0, sigma_max^2 I) is the true marginal at sigma_max;
each test computes that mismatch (the oracle's log p_sigma_max at the latent minus the prior there) and requires
it to be a small fraction of the tolerance, so what is measured is the solver and the trace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import numpy as np
import pytest

import sdeve
import sdeve.likelihood as likelihood
from sdeve.likelihood import log_likelihood
from conformance.backends import LoadedBackend
from sdeve.config import SdeVeConfig
from sdeve.oracles import GaussianMixture, ring

CONFIG = SdeVeConfig()
SIGMA_EPS = CONFIG.sigma_min * (CONFIG.sigma_max / CONFIG.sigma_min) ** CONFIG.sampling_eps
TOLERANCE = 2e-3  # nats per dimension (the figure)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """Tiny problems: torch's thread pool only adds contention on a shared 2-core machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mixture(dim: int) -> GaussianMixture:
    """The 2-D ring, or three components in 16-D with different spreads."""
    if dim == 2:
        return ring()
    rng = np.random.default_rng(5)
    return GaussianMixture([1.0, 2.0, 1.0], rng.standard_normal((3, dim)) * 2.0, [0.5, 0.8, 1.0])


def config_for(gm: GaussianMixture) -> SdeVeConfig:
    """Diffusers' defaults, but a larger sigma_max for the 16-D mixture, whose means (|mu| ~ 8) would otherwise
    make the prior's mismatch (about |mu| / sigma_max nats) a fifth of the tolerance."""
    return CONFIG if gm.dim <= 2 else dataclasses.replace(CONFIG, sigma_max=5000.0)


def prior_mismatch(gm: GaussianMixture, latent: np.ndarray, config: SdeVeConfig) -> np.ndarray:
    """``log p_sigma_max(z) - log N(z; 0, sigma_max^2 I)`` per example: what the prior gets wrong."""
    s = config.sigma_max
    prior = -0.5 * gm.dim * math.log(2 * math.pi * s**2) - np.sum(latent.reshape(len(latent), -1) ** 2, 1) / (2 * s**2)
    return gm.log_prob(latent, s) - prior


def _torch_or_jax(name: str) -> Any:
    if name == "torch":
        torch = pytest.importorskip("torch")
        import array_api_compat.torch as xp

        return xp, lambda a: torch.as_tensor(a, dtype=torch.float64), lambda a: a.detach().double().numpy()
    jax = pytest.importorskip("jax")
    return jax.numpy, lambda a: jax.numpy.asarray(a), lambda a: np.asarray(a, dtype=np.float64)


def _float64(where: str) -> Any:
    """JAX's 64-bit mode for the float64 cases (a context: the rest of the process keeps JAX's default)."""
    if where != "jax":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


@pytest.mark.parametrize("dim", [2, 16])
@pytest.mark.parametrize("where", ["numpy", "torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_exact_trace_gives_the_exact_density(where: str, dim: int) -> None:
    """NumPy with the oracle's exact divergence passed in; torch (float64) and JAX (as configured: float32 without
    x64, compiled with ``jax.jit``) with the exact trace from autodiff."""
    gm = mixture(dim)
    config = config_for(gm)
    points = gm.sample(8, generator=dim, dtype=np.float64)
    if where == "numpy":
        result = log_likelihood(gm, points, divergence=gm.divergence, scheduler=config)
        to_numpy = np.asarray
    else:
        xp, make, to_numpy = _torch_or_jax(where)
        result = log_likelihood(gm, make(points), trace="exact", scheduler=config)
    nats, latent = to_numpy(result.nats), to_numpy(result.latent)
    assert np.max(np.abs(prior_mismatch(gm, latent, config))) / dim < TOLERANCE / 5
    sigma_eps = config.sigma_min * (config.sigma_max / config.sigma_min) ** config.sampling_eps
    error = np.max(np.abs(nats - gm.log_prob(points, sigma_eps))) / dim
    assert error < TOLERANCE, error
    np.testing.assert_allclose(to_numpy(result.bits_per_dim), -nats / (dim * math.log(2)), rtol=1e-6)
    assert isinstance(result.nfe, int) and result.nfe > 2


@pytest.mark.parametrize(
    ("where", "probe"),
    [("torch", "rademacher"), ("torch", "gaussian"), pytest.param("jax", "rademacher", marks=pytest.mark.slow)],
)
def test_hutchinson_is_unbiased(where: str, probe: str) -> None:
    """One point, 200 independent probes (one per copy): their mean is within 3 standard errors of the exact
    trace's value."""
    gm = mixture(2)
    point = gm.sample(1, generator=3, dtype=np.float64)
    copies = np.repeat(point, 200, axis=0)
    exact = float(log_likelihood(gm, point, divergence=gm.divergence).nats[0])
    xp, make, to_numpy = _torch_or_jax(where)
    with _float64(where):
        estimates = to_numpy(log_likelihood(gm, make(copies), noise=probe, generator=7).nats)
    standard_error = float(np.std(estimates, ddof=1)) / math.sqrt(len(estimates))
    assert standard_error > 0
    assert abs(float(np.mean(estimates)) - exact) < 3 * standard_error, (np.mean(estimates), exact, standard_error)


def test_divergence_given_on_every_backend(backend: LoadedBackend) -> None:
    """With ``divergence=`` every namespace computes the likelihood (no autodiff needed), as NumPy does."""
    if backend.name == "dask":
        pytest.skip("dask: every attempted step is a persisted graph; the ODE itself is checked on it (slow)")
    if backend.name == "jax":
        pytest.skip("jax: compiled likelihoods are checked by the exact-trace and Hutchinson tests")
    gm = mixture(2)
    points = gm.sample(4, generator=0, dtype=np.float64)
    expected = log_likelihood(gm, points, divergence=gm.divergence).nats
    wide = "float64" if "float64" in backend.dtypes() else "float32"
    dtype = backend.dtypes()[wide]
    with backend.context():
        result = log_likelihood(gm, backend.asarray(points, dtype=dtype), divergence=gm.divergence)
    assert result.nats.dtype == dtype and tuple(result.nats.shape) == (4,)
    atol = 1e-9 if wide == "float64" else 1e-4
    np.testing.assert_allclose(backend.to_numpy(result.nats), expected, rtol=0, atol=atol)


def test_divergence_takes_precedence_over_the_trace_option() -> None:
    gm = mixture(2)
    points = gm.sample(4, generator=0, dtype=np.float64)
    a = log_likelihood(gm, points, divergence=gm.divergence)
    b = log_likelihood(gm, points, divergence=gm.divergence, trace="exact", noise="gaussian")
    np.testing.assert_array_equal(a.nats, b.nats)


def test_latent_is_the_encoding_and_matches_scipy() -> None:
    """The latent of the likelihood solve is x carried up to sigma_max (the x-part of the augmented solve)."""
    from tests.test_ode import scipy_flow

    gm = mixture(2)
    points = gm.sample(4, generator=1, dtype=np.float64)
    result = log_likelihood(gm, points, divergence=gm.divergence)
    code, _ = scipy_flow(gm, points, SIGMA_EPS, CONFIG.sigma_max)
    np.testing.assert_allclose(result.latent, code, rtol=0, atol=50 * (1e-5 + 1e-5 * np.max(np.abs(code))))


# ---------------------------------------------------------------------------------------------- dequantization
def test_dequantization_noise_is_uniform_within_the_bin() -> None:
    """``(255 x + u) / 256`` with ``u = 1 - exp(-(z1^2 + z2^2) / 2)``: uniform on [0, 1) (Kolmogorov-Smirnov)."""
    stats = pytest.importorskip("scipy.stats")
    backend = sdeve.backend_for(np)
    x = np.zeros((50_000, 1))
    out, _ = likelihood._dequantized(backend, backend.make_generator(0), x)
    u = out.ravel() * 256
    assert np.all((u >= 0) & (u < 1))
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_dequantized_likelihood_adds_song_offset() -> None:
    """8-bit data in [0, 1]: nats = log p(dequantized) + D ln 256, and bits/dim = -nats / (D ln 2)."""
    gm = GaussianMixture([1.0, 1.0], [[0.3, 0.6], [0.7, 0.2]], [0.08, 0.1])
    data = np.clip(np.round(gm.sample(6, generator=2, dtype=np.float64) * 255), 0, 255) / 255
    backend = sdeve.backend_for(np)
    dequantized, _ = likelihood._dequantized(backend, backend.make_generator(11), data)
    result = log_likelihood(gm, data, divergence=gm.divergence, dequantize=True, generator=11)
    expected = gm.log_prob(dequantized, SIGMA_EPS) + 2 * math.log(256)
    assert np.max(np.abs(result.nats - expected)) / 2 < TOLERANCE
    np.testing.assert_allclose(result.bits_per_dim, -result.nats / (2 * math.log(2)))


def test_dequantize_needs_data_in_the_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"scaled to \[0, 1\]"):
        log_likelihood(ring(), np.full((2, 2), 3.0), divergence=ring().divergence, dequantize=True)


# ---------------------------------------------------------------------------------------------- bad input
def _points() -> np.ndarray:
    return ring().sample(2, generator=0, dtype=np.float64)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"trace": "approximate"}, ValueError, "trace must be one of"),
        ({"noise": "uniform"}, ValueError, "noise must be one of"),
        ({"rtol": 0.0}, ValueError, "rtol must be finite and > 0"),
        ({"atol": -1.0}, ValueError, "atol must be finite and > 0"),
        ({"divergence": 3.0}, TypeError, "divergence must be callable"),
        ({"scheduler": "default"}, TypeError, "scheduler must be an sdeve.ScoreSdeVeScheduler or SdeVeConfig"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        likelihood.log_likelihood(ring(), _points(), **kwargs)


def test_bad_data_and_model() -> None:
    with pytest.raises(TypeError, match="x must be an array"):
        likelihood.log_likelihood(ring(), [[0.0, 1.0]])
    with pytest.raises(TypeError, match="real floating dtype"):
        likelihood.log_likelihood(ring(), np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"shape \(B, ...\)"):
        likelihood.log_likelihood(ring(), np.zeros(()))
    with pytest.raises(TypeError, match="model must be callable"):
        likelihood.log_likelihood("ring", _points())


def test_divergence_of_the_wrong_shape() -> None:
    gm = ring()
    with pytest.raises(ValueError, match=r"divergence\(x, sigma\) must return shape \(B,\)"):
        log_likelihood(gm, _points(), divergence=lambda x, s: gm.divergence(x, s)[:, None])


def test_no_autodiff_and_no_divergence_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no automatic differentiation"):
        log_likelihood(ring(), _points())


# ---------------------------------------------------------------------------------------------- encode, decode
@pytest.mark.parametrize("where", ["numpy", "torch", "jax"])
def test_decode_inverts_encode(where: str) -> None:
    """``decode(encode(x)) == x`` to the tolerance, and ``encode`` is the likelihood's latent."""
    gm = mixture(2)
    points = gm.sample(6, generator=4, dtype=np.float64)
    if where == "numpy":
        make, to_numpy = np.asarray, np.asarray
    else:
        _, make, to_numpy = _torch_or_jax(where)
    with _float64(where):
        x = make(points)
        code = likelihood.encode(gm, x)
        back = to_numpy(likelihood.decode(gm, code))
        assert tuple(code.shape) == points.shape
        latent = to_numpy(log_likelihood(gm, x, divergence=gm.divergence).latent)
    np.testing.assert_allclose(back, points, rtol=0, atol=20 * 1e-5 * (1 + np.max(np.abs(points))))
    np.testing.assert_allclose(to_numpy(code), latent, rtol=0, atol=20 * 1e-5 * (1 + np.max(np.abs(latent))))


def test_encode_decode_bad_input() -> None:
    with pytest.raises(ValueError, match="rtol must be finite and > 0"):
        likelihood.encode(ring(), _points(), rtol=-1.0)
    with pytest.raises(TypeError, match="z must be an array"):
        likelihood.decode(ring(), [[1.0, 2.0]])
