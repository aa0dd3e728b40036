"""The Gaussian-mixture oracle: exact score (finite differences, autodiff), exact samples, the quality report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.backends import LoadedBackend
from sdeve.oracles import GaussianMixture, MixtureReport, ring


def image_mixture() -> GaussianMixture:
    """Three image-shaped components (C, H, W) = (2, 4, 4): flat dark, flat bright, a checkerboard."""
    checker = np.tile(np.array([[-1.0, 1.0], [1.0, -1.0]]), (2, 2, 2))
    means = np.stack([np.full((2, 4, 4), -1.0), np.full((2, 4, 4), 1.0), checker])
    return GaussianMixture([0.5, 0.3, 0.2], means, [0.3, 0.4, 0.25])


MIXTURES = {"2d": ring, "image": image_mixture}


def _points(gm: GaussianMixture, n: int, seed: int, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = gm.means()
    picks = rng.integers(0, gm.num_components, n)
    return means[picks] + spread * rng.standard_normal((n, *gm.data_shape))


@pytest.mark.parametrize("kind", sorted(MIXTURES))
@pytest.mark.parametrize("sigma", [0.0, 0.05, 1.0, 30.0, "batch"])
def test_score_is_the_gradient_of_log_prob(kind: str, sigma: object) -> None:
    gm = MIXTURES[kind]()
    x = _points(gm, 6, seed=1)
    s = np.linspace(0.05, 20.0, x.shape[0]) if sigma == "batch" else sigma
    score = gm.score(x, s)
    assert score.shape == x.shape and score.dtype == np.float64
    h = 1e-5 * max(1.0, float(np.max(s)) if sigma == "batch" else max(1.0, float(s)))  # type: ignore[arg-type]
    numeric = np.zeros_like(x)
    flat = numeric.reshape(x.shape[0], -1)
    for d in range(flat.shape[1]):
        e = np.zeros(flat.shape[1])
        e[d] = h
        e = e.reshape(gm.data_shape)
        flat[:, d] = (gm.log_prob(x + e, s) - gm.log_prob(x - e, s)) / (2 * h)
    scale = np.max(np.abs(numeric)) + 1e-12
    np.testing.assert_allclose(score, numeric, rtol=0, atol=1e-6 * scale + 1e-9)


def test_score_matches_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    gm = image_mixture()
    x = torch.tensor(_points(gm, 5, seed=2), dtype=torch.float64, requires_grad=True)
    sigma = torch.linspace(0.1, 5.0, 5, dtype=torch.float64)
    (grad,) = torch.autograd.grad(gm.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(gm.score(x.detach(), sigma), grad, rtol=1e-10, atol=1e-12)


def test_score_matches_jax_grad() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    gm = ring()
    x = jnp.asarray(_points(gm, 7, seed=3), dtype=jnp.float32)
    sigma = jnp.linspace(0.02, 3.0, 7, dtype=jnp.float32)
    grad = jax.grad(lambda v: jnp.sum(gm.log_prob(v, sigma)))(x)
    np.testing.assert_allclose(np.asarray(gm.score(x, sigma)), np.asarray(grad), rtol=1e-4, atol=1e-4)
    # and the score traces under jit
    np.testing.assert_allclose(np.asarray(jax.jit(gm.score)(x, sigma)), np.asarray(grad), rtol=1e-4, atol=1e-4)


def test_log_prob_integrates_to_one_and_widens_with_sigma() -> None:
    gm = ring(num_components=4, radius=2.0, std=0.4)
    grid = np.linspace(-9, 9, 361)
    xx, yy = np.meshgrid(grid, grid)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    cell = (grid[1] - grid[0]) ** 2
    for sigma in (0.0, 0.5, 1.5):
        total = float(np.sum(np.exp(gm.log_prob(pts, sigma))) * cell)
        assert total == pytest.approx(1.0, abs=2e-3)


def test_single_component_score_is_linear() -> None:
    gm = GaussianMixture([1.0], [[1.0, -2.0, 0.5]], [0.5])
    x = np.array([[0.0, 0.0, 0.0], [3.0, 1.0, -1.0]])
    np.testing.assert_allclose(gm.score(x, 2.0), (gm.means() - x) / (0.25 + 4.0), rtol=1e-12)


def test_score_in_every_backend_agrees_with_numpy(backend: LoadedBackend) -> None:
    gm = image_mixture()
    x = _points(gm, 4, seed=4)
    sigma = np.array([0.01, 0.3, 2.0, 40.0])
    expected = gm.score(x, sigma)
    for name, dtype in backend.dtypes().items():
        if name in ("float16", "bfloat16"):
            continue
        xs = backend.asarray(x, dtype)
        out = gm.score(xs, backend.asarray(sigma, dtype))
        assert type(out) is type(xs) and out.dtype == xs.dtype and tuple(out.shape) == x.shape
        tol = 1e-10 if name == "float64" else 2e-4
        np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=tol, atol=tol * np.abs(expected).max())


def test_exact_samples_match_the_mixture() -> None:
    gm = ring()
    x = gm.sample(8000, generator=0, xp="numpy", dtype=np.float64)
    report = gm.report(x)
    assert isinstance(report, MixtureReport)
    assert report.weight_error < 0.02
    assert report.mean_error < 0.1
    assert report.std_error < 0.05
    assert sum(report.counts) == 8000


def test_sample_from_normals_picks_components_by_weight() -> None:
    gm = GaussianMixture([0.2, 0.5, 0.3], [[-10.0], [0.0], [10.0]], [0.1, 0.1, 0.1])
    rng = np.random.default_rng(5)
    z = rng.standard_normal(20000)
    x = gm.sample_from_normals(z, np.zeros((20000, 1)))
    assert set(np.unique(x).tolist()) == {-10.0, 0.0, 10.0}
    freq = [float(np.mean(x == v)) for v in (-10.0, 0.0, 10.0)]
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=0.015)
    assert np.all(gm.assign(x) == np.round(x[:, 0] / 10 + 1))
    u = rng.random(20000)
    y = gm.sample_from_uniforms(u, np.zeros((20000, 1)))
    np.testing.assert_array_equal(y[:, 0], np.select([u < 0.2, u < 0.7], [-10.0, 0.0], 10.0))


@pytest.mark.parametrize("xp_name", ["torch", "jax", "array_api_strict"])
def test_exact_samples_in_other_namespaces(xp_name: str) -> None:
    pytest.importorskip(xp_name)
    gm = image_mixture()
    x = gm.sample(600, generator=1, xp=xp_name)
    assert tuple(x.shape) == (600, 2, 4, 4)
    report = gm.report(x)
    assert report.weight_error < 0.07 and report.mean_error < 0.2 and report.std_error < 0.05


def test_report_flags_wrong_samples() -> None:
    gm = ring()
    x = gm.sample(4000, generator=2, dtype=np.float64)
    good = gm.report(x)
    assert gm.report(x * 1.0 + 0.5).mean_error > 5 * good.mean_error
    wide = gm.report(gm.means()[gm.assign(x)] + 1.5 * (x - gm.means()[gm.assign(x)]))
    assert wide.std_error > 0.4
    one_mode = gm.report(np.repeat(x[:1], 100, axis=0))
    assert one_mode.weight_error >= 0.75 and math.isinf(one_mode.mean_error)
    assert math.isinf(gm.report(np.full((3, 2), np.nan)).weight_error)
    assert "weight error" in str(good)


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([1.0, -1.0], [[0.0], [1.0]], 1.0)
    with pytest.raises(ValueError, match="means"):
        GaussianMixture([1.0, 1.0], [[0.0]], 1.0)
    with pytest.raises(ValueError, match="stds"):
        GaussianMixture([1.0], [[0.0]], [0.0])
    gm = ring()
    with pytest.raises(ValueError, match="shape"):
        gm.score(np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gm.score(np.zeros((3, 2)), np.ones(4))
