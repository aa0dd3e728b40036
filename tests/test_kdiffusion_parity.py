"""Given the same noise, each torch sampler equals k-diffusion's sampler of the same name to float rounding.

Needs the ``bench`` extra (k-diffusion installed with ``--no-deps`` plus what its ``sampling.py`` imports);
skipped without it.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest

from sdeve.oracles import GaussianMixture
from sdeve.samplers import sigma_space

torch = pytest.importorskip("torch")

try:
    from benchmarks import _kdiffusion

    KD = _kdiffusion.load()
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"k-diffusion is not installed: {exc}", allow_module_level=True)

MIX = GaussianMixture([0.4, 0.25, 0.2, 0.15], [[-3.0, -2.0], [3.0, -2.5], [-2.0, 3.5], [3.5, 2.5]],
                      [0.4, 0.6, 0.75, 0.9])

CASES: list[tuple[str, dict[str, Any]]] = [
    ("euler", {}),
    ("euler", {"s_churn": 3.0, "s_tmin": 0.05, "s_tmax": 10.0, "s_noise": 1.003}),
    ("heun", {}),
    ("heun", {"s_churn": 1.5, "s_noise": 0.99}),
    ("euler_ancestral", {}),
    ("euler_ancestral", {"eta": 0.6, "s_noise": 0.9}),
    ("dpmpp_2m", {}),
    ("dpmpp_2m_sde", {}),
    ("dpmpp_2m_sde", {"solver_type": "heun", "eta": 0.7}),
    ("dpmpp_2m_sde", {"eta": 0.0}),
    ("dpmpp_3m_sde", {}),
    ("dpmpp_3m_sde", {"eta": 0.0}),
]
# float32: k-diffusion computes its coefficients in float32 from float32 levels, sdeve in float64 on the host
# and rounds once; over 12 steps from sigma = 20 the two orders of rounding differ by a few float32 ulps of 20.
TOLERANCE = {"float64": 1e-12, "float32": 2e-5}


def _denoiser(x: Any, sigma: Any) -> Any:
    return x + (sigma * sigma)[:, None] * MIX.score(x, sigma)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{'-'.join(o) or 'default'}" for n, o in CASES])
def test_same_noise_same_samples(name: str, options: dict[str, Any], dtype_name: str) -> None:
    dtype = getattr(torch, dtype_name)
    sigmas = sigma_space.build_sigmas(12, sigma_min=0.01, sigma_max=20.0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=generator, dtype=dtype) * sigmas[0]
    noises = [torch.randn(64, 2, generator=generator, dtype=dtype) for _ in range(len(sigmas))]
    draws = iter(noises)
    ours = getattr(sigma_space, f"sample_{name}")(MIX.score, x, sigmas, noise=lambda like: next(draws), **options)

    kd_sampler = getattr(KD, f"sample_{name}")
    kwargs = dict(options)
    if "noise_sampler" in inspect.signature(kd_sampler).parameters:
        replay = iter(noises)
        kwargs["noise_sampler"] = lambda sigma, sigma_next: next(replay)
        theirs = kd_sampler(_denoiser, x, torch.tensor(sigmas, dtype=dtype), disable=True, **kwargs)
    else:  # euler and heun draw torch.randn_like(x) every step from the global generator
        replay = iter(noises)
        original = torch.randn_like
        torch.randn_like = lambda like, *a, **k: next(replay)  # type: ignore[assignment]
        try:
            theirs = kd_sampler(_denoiser, x, torch.tensor(sigmas, dtype=dtype), disable=True, **kwargs)
        finally:
            torch.randn_like = original  # type: ignore[assignment]
    assert ours.dtype == theirs.dtype == dtype
    error = float((ours - theirs).abs().max())
    assert error <= TOLERANCE[dtype_name] * max(1.0, float(theirs.abs().max()))


@pytest.mark.parametrize("rho", [7.0, 3.0])
def test_karras_levels_match(rho: float) -> None:
    ours = sigma_space.build_sigmas(10, sigma_min=0.01, sigma_max=20.0, rho=rho)
    theirs = KD.get_sigmas_karras(10, 0.01, 20.0, rho=rho).double().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)  # k-diffusion builds them in float32


def test_exponential_levels_match() -> None:
    ours = sigma_space.build_sigmas(10, schedule="exponential", sigma_min=0.01, sigma_max=20.0, rho=2.0)
    theirs = KD.get_sigmas_polyexponential(10, 0.01, 20.0, rho=2.0).double().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    geometric = sigma_space.build_sigmas(10, schedule="geometric", sigma_min=0.01, sigma_max=20.0)
    np.testing.assert_allclose(geometric, KD.get_sigmas_exponential(10, 0.01, 20.0).double().numpy(), rtol=1e-5)
    assert math.isclose(geometric[0], 20.0)


def test_quality_benchmark_runs(tmp_path: Any, capsys: Any) -> None:
    """``python -m benchmarks --quality`` in miniature: a table with both sides, the targets, a plot."""
    pytest.importorskip("matplotlib")
    from benchmarks import quality

    settings = quality.QualitySettings(n=300, seeds=(0,), dims=(2,), budgets=(10,), kd_schedules=((0.01, 20.0),),
                                       floor_backends=())
    payload = quality.main(settings, plot_path=str(tmp_path / "quality.png"))
    sides = {row["side"] for row in payload["rows"]}
    assert {"sdeve", "k-diffusion", "exact"} <= sides
    assert (tmp_path / "quality.png").stat().st_size > 0
    assert "at least as good" in capsys.readouterr().out
