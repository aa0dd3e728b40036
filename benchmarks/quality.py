"""Sample quality against model evaluations (NFE): sdeve's samplers and k-diffusion's, side by side.

The model is the exact score of a Gaussian mixture (:class:`sdeve.oracles.GaussianMixture`): 4 components,
weights 0.4/0.25/0.2/0.15, stds 0.4-0.9, in 2-D and embedded in 16-D (zeros in the extra coordinates).
Quality is measured against exact samples of the mixture:

- SW2 / floor: the sliced 2-Wasserstein distance to ``n`` exact samples (256 fixed random directions),
  divided by the same distance between two independent sets of ``n`` exact samples (the noise floor);
- weight error: ``max_k |fraction assigned to k - w_k|``, each sample assigned to its most likely component.

Each figure is the median over seeds. ``python -m benchmarks --quality`` runs the table and writes the plot.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdeve.oracles import GaussianMixture

WEIGHTS = (0.4, 0.25, 0.2, 0.15)
MEANS_2D = ((-3.0, -2.0), (3.0, -2.5), (-2.0, 3.5), (3.5, 2.5))
STDS = (0.4, 0.6, 0.75, 0.9)
SIGMA_MIN = 0.01
SIGMA_MAX = 20.0
BUDGETS = (10, 25, 50, 100)


def mixture(dim: int) -> GaussianMixture:
    """The benchmark mixture in ``dim >= 2`` dimensions: the 2-D means padded with zeros."""
    means = [list(m) + [0.0] * (dim - 2) for m in MEANS_2D]
    return GaussianMixture(WEIGHTS, means, STDS)


def directions(dim: int, count: int = 256, seed: int = 0) -> np.ndarray:
    """``(count, dim)`` unit vectors, fixed by ``seed``."""
    v = np.random.default_rng(seed).standard_normal((count, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class SlicedReference:
    """The 1-D optimal couplings of ``n`` samples with a reference set ``k`` times larger, along fixed
    directions: with both projections sorted, sample ``i`` is matched with the ``i``-th block of ``k``
    consecutive reference values, so ``W2^2 = mean_i (x_(i) - block mean_i)^2 + mean within-block variance``
    (exact for the empirical measures). The large reference makes the exact-vs-reference distance mostly
    the noise of the ``n`` samples themselves, so a sampler at the floor scores about 1."""

    def __init__(self, reference: np.ndarray, dirs: np.ndarray, n: int, chunk: int = 32) -> None:
        m = reference.shape[0]
        if m % n:
            raise ValueError(f"the reference size {m} must be a multiple of n = {n}")
        means, spread = [], 0.0
        for lo in range(0, dirs.shape[0], chunk):
            projected = np.sort(reference @ dirs[lo:lo + chunk].T, axis=0).reshape(n, m // n, -1)
            block = projected.mean(axis=1)
            means.append(block)
            spread += float(((projected - block[:, None, :]) ** 2).sum())
        self.dirs = dirs
        self.block_means = np.concatenate(means, axis=1)  # (n, directions)
        self.spread = spread / (m * dirs.shape[0])

    def distance(self, x: np.ndarray) -> float:
        """Sliced W2 between ``x`` ``(n, D)`` and the reference."""
        projected = np.sort(x @ self.dirs.T, axis=0)
        return float(np.sqrt(np.mean((projected - self.block_means) ** 2) + self.spread))


def exact(mix: GaussianMixture, n: int, seed: int) -> np.ndarray:
    """``n`` exact samples (float64 NumPy), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, mix.dim))
    picks = rng.standard_normal(n)
    return np.asarray(mix.sample_from_normals(picks, noise))


def host(x: Any) -> np.ndarray:
    """Any library's array as float64 NumPy."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


@dataclasses.dataclass
class Reference:
    """The reference set for one dimension, and the noise floor: medians over ``floor_sets`` independent
    sets of ``n`` exact samples of their distance to the reference and of their weight error."""

    mix: GaussianMixture
    sliced: SlicedReference
    floor_sw2: float
    floor_weight: float

    @classmethod
    def build(cls, dim: int, n: int, *, scale: int = 10, floor_sets: int = 9) -> Reference:
        mix = mixture(dim)
        sliced = SlicedReference(exact(mix, n * scale, 1), directions(dim), n)
        sets = [exact(mix, n, 100 + s) for s in range(floor_sets)]
        floor = statistics.median(sliced.distance(x) for x in sets)
        weight = statistics.median(mix.report(x).weight_error for x in sets)
        return cls(mix, sliced, floor, weight)


@dataclasses.dataclass
class Measured:
    """One configuration's medians over seeds."""

    nfe: float
    sw2_ratio: float
    weight_error: float
    seconds: float


class Counting:
    """A model that counts its calls (eager runs only)."""

    def __init__(self, model: Callable[..., Any]) -> None:
        self.model = model
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.model(*args)


Runner = Callable[[GaussianMixture, int, int], tuple[Any, float]]  # (mix, n, seed) -> (samples, nfe)


def measure(run: Runner, ref: Reference, n: int, seeds: Sequence[int] = (0, 1, 2)) -> Measured:
    """Run ``run`` once per seed and take medians."""
    nfes, ratios, weights, seconds = [], [], [], []
    for seed in seeds:
        t0 = time.perf_counter()
        out, nfe = run(ref.mix, n, seed)
        x = host(out)
        seconds.append(time.perf_counter() - t0)
        nfes.append(nfe)
        finite = bool(np.all(np.isfinite(x)))
        ratios.append(ref.sliced.distance(x) / ref.floor_sw2 if finite else math.inf)
        weights.append(ref.mix.report(x).weight_error)
    return Measured(statistics.median(nfes), statistics.median(ratios), statistics.median(weights),
                    statistics.median(seconds))


# ---------------------------------------------------------------------- runners
def sigmas_for(steps: int, schedule: str, sigma_max: float, rho: float | None,
               sigma_min: float = SIGMA_MIN) -> tuple[float, ...]:
    from sdeve.samplers.sigma_space import build_sigmas  # noqa: PLC0415

    return build_sigmas(steps, schedule=schedule, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)


def sdeve_numpy(name: str, steps: int, *, schedule: str = "karras", sigma_max: float = SIGMA_MAX,
                rho: float | None = None, sigma_min: float = SIGMA_MIN, **options: Any) -> Runner:
    """sdeve's sampler ``name`` on NumPy float32 (noise from a seeded ``numpy.random.Generator``)."""
    from sdeve.samplers import sigma_space  # noqa: PLC0415

    fn = getattr(sigma_space, f"sample_{name}")

    def run(mix: GaussianMixture, n: int, seed: int) -> tuple[Any, float]:
        rng = np.random.default_rng(seed)
        sig = sigmas_for(steps, schedule, sigma_max, rho, sigma_min)
        x = (rng.standard_normal((n, mix.dim)) * sig[0]).astype(np.float32)
        model = Counting(mix.score)
        out = fn(model, x, sig, noise=lambda like: rng.standard_normal(like.shape).astype(like.dtype), **options)
        return out, model.calls

    return run


def kdiffusion(name: str, steps: int, *, schedule: str = "karras", sigma_max: float = SIGMA_MAX,
               rho: float | None = None, sigma_min: float = SIGMA_MIN, **options: Any) -> Runner:
    """k-diffusion's ``sample_<name>`` on torch float32, its denoiser ``x + sigma^2 score``; SDE samplers get
    fresh normals per step (the distribution of their default Brownian-tree increments, much faster)."""
    import torch  # noqa: PLC0415

    from . import _kdiffusion  # noqa: PLC0415

    kd = _kdiffusion.load()
    fn = getattr(kd, f"sample_{name}")

    def run(mix: GaussianMixture, n: int, seed: int) -> tuple[Any, float]:
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        model = Counting(lambda x, s: x + (s * s)[:, None] * mix.score(x, s))
        # The start noise is the same as sdeve's runners' for the same seed: deterministic samplers then see
        # the same draw, and their differences are not sampling luck.
        x0 = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, mix.dim))).to(torch.float32)
        kwargs = dict(options)
        if name == "dpm_adaptive":
            out, info = fn(model, x0 * sigma_max, sigma_min, sigma_max, disable=True, return_info=True, **kwargs)
            return out, model.calls
        if name == "dpm_fast":
            return fn(model, x0 * sigma_max, sigma_min, sigma_max, steps, disable=True, **kwargs), model.calls
        sig = torch.tensor(sigmas_for(steps, schedule, sigma_max, rho, sigma_min), dtype=torch.float32)
        if "noise_sampler" in inspect.signature(fn).parameters:
            kwargs["noise_sampler"] = lambda s, s_next: torch.randn_like(x0)
        out = fn(model, x0 * sig[0], sig, disable=True, **kwargs)
        return out, model.calls

    return run


def sdeve_pc(steps: int, *, sigma_max: float = SIGMA_MAX, snr: float = 0.15) -> Runner:
    """sdeve's predictor-corrector sampler (one corrector step per predictor step), NumPy float32."""
    import sdeve  # noqa: PLC0415

    def run(mix: GaussianMixture, n: int, seed: int) -> tuple[Any, float]:
        scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=SIGMA_MIN, sigma_max=sigma_max, snr=snr)
        model = Counting(mix.score)
        out = sdeve.sample(model, (n, mix.dim), scheduler=scheduler, num_inference_steps=steps, generator=seed,
                           xp="numpy", dtype="float32")
        return out, model.calls

    return run
