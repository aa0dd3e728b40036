"""Controllable generation (sdeve.controllable): the decoupled colour space, the inpainting and colorization
constraints, and guidance, checked where the exact answer is known (Gaussian-mixture oracle)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import sdeve
from sdeve.controllable import DECOUPLING, Colorization, Guided, Inpainting, couple, decouple
from sdeve.oracles import GaussianMixture, ring
from sdeve.samplers import ode
from sdeve.samplers.pc import sample_pc, schedule_levels
from sdeve.schedule import Schedule

# Song et al.'s float32 matrix M (controllable_generation.py); decouple(x)[:, j] = sum_i x[:, i] M[i, j].
SONG_M = np.array([[5.7735014e-01, -8.1649649e-01, 4.7008697e-08],
                   [5.7735026e-01, 4.0824834e-01, 7.0710671e-01],
                   [5.7735026e-01, 4.0824822e-01, -7.0710683e-01]])


class FixedNoise:
    """A noise source that hands out the given arrays in turn, for formula checks."""

    def __init__(self, *draws: np.ndarray) -> None:
        self.draws = list(draws)

    def __call__(self, like: Any) -> np.ndarray:
        z = self.draws.pop(0)
        assert z.shape == tuple(like.shape)
        return z


def test_decoupling_is_song_matrix_and_orthogonal() -> None:
    q = np.array(DECOUPLING)
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(q[0], np.full(3, 1 / math.sqrt(3)), atol=1e-15)
    np.testing.assert_allclose(q.T, SONG_M, atol=2e-7)
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 5))
    np.testing.assert_allclose(decouple(x), np.einsum("bihw,ij->bjhw", x, SONG_M), atol=1e-6)
    np.testing.assert_allclose(couple(decouple(x)), x, atol=1e-14)


def test_decouple_on_torch_keeps_dtype() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 4, dtype=torch.float32)
    y = decouple(x)
    assert y.dtype == torch.float32 and tuple(y.shape) == (2, 3, 4)
    torch.testing.assert_close(couple(y), x, atol=1e-6, rtol=1e-6)


def test_inpainting_constraint() -> None:
    rng = np.random.default_rng(1)
    known, x, x_mean, z = (rng.standard_normal((2, 3, 4)) for _ in range(4))
    mask = (rng.random((1, 3, 4)) > 0.5).astype(np.float64)
    out, out_mean = Inpainting(known, mask)(x, x_mean, 0.7, FixedNoise(z))
    np.testing.assert_allclose(out, np.where(mask == 1, known + 0.7 * z, x))
    np.testing.assert_allclose(out_mean, np.where(mask == 1, known, x_mean))


def test_colorization_constraint_keeps_the_colour_and_sets_the_grey() -> None:
    rng = np.random.default_rng(2)
    grey_value = rng.standard_normal((2, 1, 4))
    grey = np.repeat(grey_value, 3, axis=1)  # R = G = B
    x, x_mean = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    z = rng.standard_normal((2, 3, 4))  # one draw like the sample; its first channel noises the grey coordinate
    sigma = np.array([0.5, 2.0])  # per example
    out, out_mean = Colorization(grey)(x, x_mean, sigma, FixedNoise(z))
    z = z[:, :1]
    y, y_mean = decouple(out), decouple(out_mean)
    np.testing.assert_allclose(y[:, :1], math.sqrt(3) * grey_value + sigma[:, None, None] * z, atol=1e-12)
    np.testing.assert_allclose(y_mean[:, :1], math.sqrt(3) * grey_value, atol=1e-12)
    np.testing.assert_allclose(y[:, 1:], decouple(x)[:, 1:], atol=1e-12)
    np.testing.assert_allclose(y_mean[:, 1:], decouple(x_mean)[:, 1:], atol=1e-12)


def _isotropic_images(n: int, seed: int) -> tuple[GaussianMixture, np.ndarray, np.ndarray, np.ndarray, float]:
    """N(mu, s^2 I) on (3, 2, 2) images, grey targets, and starts drawn from the exact marginal at sigma = 40."""
    shape = (3, 2, 2)
    mu = np.random.default_rng(3).standard_normal(shape)
    s, sigma_max = 0.4, 40.0
    rng = np.random.default_rng(seed)
    target = np.repeat(rng.standard_normal((n, 1, 2, 2)), 3, axis=1)  # grey images to colour
    x0 = mu + rng.standard_normal((n, *shape)) * math.sqrt(sigma_max**2 + s**2)
    return GaussianMixture([1.0], mu[None], [s]), mu, target, x0, s


def _check_colours(out: np.ndarray, target: np.ndarray, mu: np.ndarray, s: float, std_tolerance: float) -> None:
    """The grey coordinate is the target's exactly; the colour ones are N((Q mu)_colour, s^2)."""
    y = decouple(out)
    np.testing.assert_allclose(y[:, :1], decouple(target)[:, :1], atol=1e-12)
    colour = y[:, 1:]
    mean_error = np.max(np.abs(colour.mean(axis=0) - decouple(mu[None])[0, 1:])) / (s / math.sqrt(len(out)))
    std_error = abs(np.std(colour - colour.mean(axis=0)) / s - 1)
    assert mean_error < 4.0, mean_error  # the largest of 8 coordinates, in standard errors
    assert std_error < std_tolerance, std_error


def test_colorization_is_exact_for_isotropic_gaussian_images_with_the_ode() -> None:
    """For N(mu, s^2 I) the decoupled coordinates are independent, so conditioning on the grey one leaves the
    colour ones N((Q mu)_colour, s^2): Heun's ODE with the constraint must give exactly that, with the grey kept."""
    gm, mu, target, x0, s = _isotropic_images(3000, seed=4)
    sigmas = list(0.01 * (40.0 / 0.01) ** np.linspace(1, 0, 60)) + [0.0]
    noise = sdeve.NoiseSource(sdeve.backend_for(np), np.random.default_rng(5))
    out = ode.sample_ode(gm, x0, sigmas, method="heun", constraint=Colorization(target), noise=noise)
    _check_colours(out, target, mu, s, std_tolerance=0.03)


def test_colorization_with_the_pc_stepper() -> None:
    """The same constraint in the predictor-corrector loop (its discretisation error on top: 2% at N = 100)."""
    gm, mu, target, x0, s = _isotropic_images(3000, seed=6)
    levels, model_sigmas = schedule_levels(Schedule.build(100, 100, 0.01, 40.0, 1e-5))
    out = sample_pc(gm, x0, levels, model_sigmas=model_sigmas, constraint=Colorization(target),
                    noise=sdeve.NoiseSource(sdeve.backend_for(np), np.random.default_rng(7)))
    _check_colours(np.asarray(out), target, mu, s, std_tolerance=0.05)


# ---------------------------------------------------------------------------------------------- guidance
def _component_quality(gm: GaussianMixture, label: int, samples: Any) -> tuple[float, Any]:
    """(fraction the mixture assigns to ``label``, the one-component report)."""
    x = np.asarray(samples, dtype=np.float64) if not hasattr(samples, "detach") else samples.detach().numpy()
    fraction = float(np.mean(gm.assign(x) == label))
    return fraction, gm.component(label).report(x)


def test_exact_guidance_gives_the_component_with_the_ode() -> None:
    """With ``guidance = grad log p(y | x, sigma)`` exact and scale 1 the guided score is the component's own
    score at every level, so the (deterministic) ODE samples that component."""
    gm = ring()
    label = 2
    model = Guided(gm, lambda x, sigma: gm.class_score(x, sigma, label))
    x0 = np.random.default_rng(5).standard_normal((2000, 2)) * 1348.0
    out = ode.sample_ode(model, x0, [1348.0, 0.0100118, 0.0])
    fraction, report = _component_quality(gm, label, out)
    assert fraction == 1.0
    assert report.mean_error < 0.1 and report.std_error < 0.05, report


def test_exact_guidance_gives_the_component_with_pc() -> None:
    """The same with the predictor-corrector sampler (its own discretisation error on top)."""
    gm = ring()
    label = 5
    model = Guided(gm, lambda x, sigma: gm.class_score(x, sigma, label))
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)
    out = sdeve.sample(model, (2000, 2), scheduler=scheduler, num_inference_steps=200, generator=0)
    fraction, report = _component_quality(gm, label, out)
    assert fraction > 0.995
    assert report.mean_error < 0.15 and report.std_error < 0.1, report


def test_guidance_scale_multiplies() -> None:
    gm = ring()
    x = np.random.default_rng(6).standard_normal((3, 2))
    sigma = np.full(3, 0.5)
    guided = Guided(gm, lambda a, s: gm.class_score(a, s, 0), scale=3.0)
    np.testing.assert_allclose(guided(x, sigma), gm(x, sigma) + 3.0 * gm.class_score(x, sigma, 0))


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_input() -> None:
    gm = ring()
    with pytest.raises(TypeError, match="must be callable"):
        Guided(gm, "class 2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scale must be a finite real number"):
        Guided(gm, gm.score, scale=math.inf)
    with pytest.raises(ValueError, match="guidance\\(x, sigma\\) must return x's shape"):
        Guided(gm, lambda x, s: x[:, :1])(np.zeros((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="expected colour images of shape \\(B, 3, ...\\)"):
        Colorization(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="does not broadcast"):
        Inpainting(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="but the known data has shape"):
        Inpainting(np.zeros((2, 3)), np.ones(3))(np.zeros((1, 3)), np.zeros((1, 3)), 1.0, FixedNoise())
    with pytest.raises(ValueError, match="label must lie in"):
        gm.class_score(np.zeros((1, 2)), 1.0, 8)
