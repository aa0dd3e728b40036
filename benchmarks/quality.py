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
# sdeve's schedule for every sdeve row (chosen once, not per budget): geometric levels from sigma_max = 20 down to
# 0.3, a start at 1e4 with one step down to 20 (the prior mismatch of N(0, 20^2 I) gone for one evaluation), and
# the trapezoidal step from 0.3 to 0 (second order for a smooth density; the exact score is valid everywhere).
SDEVE_SCHEDULE: dict[str, Any] = {"schedule": "geometric", "sigma_min": 0.3, "sigma_max": SIGMA_MAX,
                                  "sigma_start": 1e4, "final_step": "trapezoid"}
# k-diffusion's schedule choices (its own get_sigmas_karras, rho = 7): the (0.01, 20) and the best of
# a wider grid measured beforehand; each k-diffusion row reports the best of these for its budget.
KD_SCHEDULES: tuple[tuple[float, float], ...] = ((0.01, 20.0), (0.15, 20.0), (0.01, 80.0), (0.15, 80.0))


def start_noise(n: int, dim: int, seed: int) -> np.ndarray:
    """The standard normals ``sdeve.sample(..., xp="numpy", dtype="float32", generator=seed)`` starts from, so
    that k-diffusion's rows start from the same draw (deterministic samplers then differ by method, not luck)."""
    from sdeve.backends import backend_for  # noqa: PLC0415
    from sdeve.protocols import NoiseSource  # noqa: PLC0415

    backend = backend_for("numpy")
    return np.asarray(NoiseSource(backend, backend.make_generator(seed)).draw((n, dim), dtype=np.float32))


def sdeve_runner(name: str, steps: int, *, xp: str = "numpy", evaluations: int | None = None,
                 **options: Any) -> Runner:
    """``sdeve.sample(mixture, (n, D), sampler=name, num_inference_steps=steps, ...)`` in float32. The model's
    calls are counted, except on JAX, where the run is one compiled program (it is traced, not called, per
    step) and ``evaluations`` is reported."""
    import sdeve  # noqa: PLC0415

    def run(mix: GaussianMixture, n: int, seed: int) -> tuple[Any, float]:
        scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
        model = Counting(mix.score)
        out = sdeve.sample(model, (n, mix.dim), sampler=name, scheduler=scheduler, num_inference_steps=steps,
                           generator=seed, xp=xp, dtype="float32", **options)
        if xp == "jax":
            out.block_until_ready()
            return out, float("nan") if evaluations is None else evaluations
        return out, model.calls

    return run


def kdiffusion(name: str, steps: int, *, sigma_min: float, sigma_max: float, **options: Any) -> Runner:
    """k-diffusion's ``sample_<name>`` on torch float32 with its denoiser ``x + sigma^2 score`` and Karras
    levels (rho 7). SDE samplers get fresh normals per step: the distribution of their default Brownian-tree
    increments, many times faster."""
    import torch  # noqa: PLC0415

    from . import _kdiffusion  # noqa: PLC0415

    kd = _kdiffusion.load()
    fn = getattr(kd, f"sample_{name}")

    def run(mix: GaussianMixture, n: int, seed: int) -> tuple[Any, float]:
        torch.manual_seed(seed)
        model = Counting(lambda x, s: x + (s * s)[:, None] * mix.score(x, s))
        x0 = torch.from_numpy(start_noise(n, mix.dim, seed))
        if name == "dpm_adaptive":
            return fn(model, x0 * sigma_max, sigma_min, sigma_max, disable=True, **options), model.calls
        if name == "dpm_fast":
            return fn(model, x0 * sigma_max, sigma_min, sigma_max, steps, disable=True, **options), model.calls
        sig = kd.get_sigmas_karras(steps, sigma_min, sigma_max, rho=7.0)
        kwargs = dict(options)
        if "noise_sampler" in inspect.signature(fn).parameters:
            kwargs["noise_sampler"] = lambda sigma, sigma_next: torch.randn_like(x0)
        return fn(model, x0 * sig[0], sig, disable=True, **kwargs), model.calls

    return run


def exact_runner() -> Runner:
    """Exact samples (the floor's own spread for the same seeds)."""
    return lambda mix, n, seed: (exact(mix, n, 30_000 + seed), 0.0)


# ---------------------------------------------------------------------- the grid
def _one(b: int) -> int:
    return b


def _two(b: int) -> int:
    return (b + 1) // 2  # 2N - 1 evaluations


def _evaluations(f: Callable[[int], int], b: int) -> int:
    return f(b) if f is _one else 2 * f(b) - 1


@dataclasses.dataclass(frozen=True)
class Entry:
    """A table row: ``candidates(budget)`` gives the configurations it may use at that budget (the row
    reports the best); adaptive entries give all their tolerances at every budget, each counted at its NFE."""

    side: str
    sampler: str
    candidates: Callable[[int, str], list[tuple[str, Runner]]]
    adaptive: bool = False


def sdeve_entries() -> list[Entry]:
    """Every sdeve sampler on :data:`SDEVE_SCHEDULE`, the 3M solver also as an ODE (``eta=0``), and PC."""
    # Heun's trapezoidal rule in sigma cannot cross from 1e4 to 20 in one step (its correction multiplies the
    # slope at 20 by the whole step): Heun starts at sigma_max = 80 instead, k-diffusion's best for it.
    no_start = {**SDEVE_SCHEDULE, "sigma_start": None, "sigma_max": 80.0}
    fixed: list[tuple[str, Callable[[int], int], dict[str, Any]]] = [
        ("euler", _one, {}), ("heun", _two, no_start), ("euler_ancestral", _one, {}), ("dpmpp_2m", _one, {}),
        ("dpmpp_2m_sde", _one, {}), ("dpmpp_3m_sde", _one, {}), ("dpmpp_3m_sde", _one, {"eta": 0.0})]
    out = [Entry("sdeve", name + ("(eta=0)" if "eta" in o else ""), lambda b, xp, name=name, f=f, o=o: [
        ("recipe", sdeve_runner(name, f(b), xp=xp, evaluations=_evaluations(f, b), **{**SDEVE_SCHEDULE, **o}))])
        for name, f, o in fixed]
    out.append(Entry("sdeve", "adaptive_sde(batch)", lambda b, xp: [
        (f"rtol {r}", sdeve_runner("adaptive_sde", 2, xp=xp, rtol=r, error_norm="batch", sigma_min=0.3,
                                   final_step="trapezoid")) for r in (0.5, 0.3, 0.2, 0.1, 0.05)], adaptive=True))
    out.append(Entry("sdeve", "pc", lambda b, xp: [("song", sdeve_runner("pc", b // 2, xp=xp, evaluations=b))]))
    return out


KD_FIXED: tuple[tuple[str, Callable[[int], int], dict[str, Any]], ...] = (
    ("euler", _one, {}), ("heun", _two, {}), ("euler_ancestral", _one, {}), ("dpm_2", _two, {}),
    ("dpm_2_ancestral", _two, {}), ("lms", _one, {}), ("dpmpp_2s_ancestral", _two, {}), ("dpmpp_sde", _two, {}),
    ("dpmpp_2m", _one, {}), ("dpmpp_2m_sde", _one, {}), ("dpmpp_3m_sde", _one, {}),
    ("dpmpp_3m_sde", _one, {"eta": 0.0}), ("dpm_fast", _one, {}))


def kd_entries(schedules: Sequence[tuple[float, float]] = KD_SCHEDULES) -> list[Entry]:
    """Every k-diffusion sampler, each at its best of ``schedules`` (``(sigma_min, sigma_max)``, Karras)."""
    out = [Entry("k-diffusion", name + ("(eta=0)" if o else ""), lambda b, xp, name=name, f=f, o=o: [
        (f"karras {lo:g}-{hi:g}", kdiffusion(name, f(b), sigma_min=lo, sigma_max=hi, **o)) for lo, hi in schedules])
        for name, f, o in KD_FIXED]
    out.append(Entry("k-diffusion", "dpm_adaptive", lambda b, xp: [
        (f"{lo:g}-{hi:g} rtol {r}", kdiffusion("dpm_adaptive", 0, sigma_min=lo, sigma_max=hi, rtol=r))
        for lo, hi in schedules for r in (0.3, 0.1, 0.05, 0.02)], adaptive=True))
    return out


@dataclasses.dataclass(frozen=True)
class Row:
    """One sampler at one budget in one dimension: the best of its candidates (``config``)."""

    side: str
    sampler: str
    backend: str
    dim: int
    budget: int
    config: str
    nfe: float
    sw2_ratio: float
    weight_error: float
    seconds: float


def _best(side: str, sampler: str, backend: str, dim: int, budget: int,
          results: Sequence[tuple[str, Measured]]) -> Row | None:
    fitting = [(c, m) for c, m in results if not m.nfe > budget]  # NaN (unknown) counts as fitting
    if not fitting:
        return None
    config, m = min(fitting, key=lambda item: (item[1].sw2_ratio, item[1].weight_error))
    return Row(side, sampler, backend, dim, budget, config, m.nfe, m.sw2_ratio, m.weight_error, m.seconds)


def evaluate(entries: Sequence[tuple[Entry, str]], *, dims: Sequence[int], budgets: Sequence[int], n: int,
             seeds: Sequence[int], log: Callable[[str], None] = print) -> tuple[list[Row], dict[int, Reference]]:
    """Every ``(entry, backend)`` at every budget in every dimension; returns the rows and the references."""
    rows: list[Row] = []
    refs: dict[int, Reference] = {}
    for dim in dims:
        refs[dim] = ref = Reference.build(dim, n)
        log(f"dim {dim}: floor SW2 {ref.floor_sw2:.4f}, weight error {ref.floor_weight:.4f}")
        for entry, backend in entries:
            started = time.perf_counter()
            if entry.adaptive:
                results = [(c, measure(run, ref, n, seeds)) for c, run in entry.candidates(0, backend)]
                found = [_best(entry.side, entry.sampler, backend, dim, b, results) for b in budgets]
            else:
                found = [_best(entry.side, entry.sampler, backend, dim, b,
                               [(c, measure(run, ref, n, seeds)) for c, run in entry.candidates(b, backend)])
                         for b in budgets]
            rows.extend(r for r in found if r is not None)
            log(f"  {entry.side} {entry.sampler} [{backend}]: {time.perf_counter() - started:.1f} s")
    return rows, refs


# ---------------------------------------------------------------------- report
def _cell(r: Row | None) -> str:
    if r is None:
        return "-"
    nfe = "?" if math.isnan(r.nfe) else f"{r.nfe:.0f}"
    return f"{r.sw2_ratio:.2f}x, {r.weight_error:.4f} ({nfe} NFE, {r.seconds:.2f} s)"


def table(rows: Sequence[Row], refs: dict[int, Reference], budgets: Sequence[int]) -> str:
    """Markdown: per dimension and backend, sampler x budget cells ``SW2/floor, weight error (NFE, s)``."""
    out: list[str] = []
    for dim, ref in refs.items():
        out.append(f"\n**{dim}-D** (floor: SW2 {ref.floor_sw2:.4f}, weight error {ref.floor_weight:.4f}; target "
                   f"SW2 <= 1.2x and weight error <= {ref.floor_weight + 0.002:.4f})\n")
        out.append("| side | sampler | backend | " + " | ".join(f"budget {b}" for b in budgets) + " |")
        out.append("|---|---|---|" + "---|" * len(budgets))
        keys = dict.fromkeys((r.side, r.sampler, r.backend) for r in rows if r.dim == dim)
        for side, sampler, backend in keys:
            cells = [_cell(next((r for r in rows if (r.side, r.sampler, r.backend, r.dim, r.budget)
                                 == (side, sampler, backend, dim, b)), None)) for b in budgets]
            out.append(f"| {side} | {sampler} | {backend} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def at_floor(r: Row, ref: Reference) -> bool:
    """The issue's floor target: SW2 <= 1.2x floor and weight error <= floor + 0.002."""
    return r.sw2_ratio <= 1.2 and r.weight_error <= ref.floor_weight + 0.002


def targets(rows: Sequence[Row], refs: dict[int, Reference], budgets: Sequence[int]) -> str:
    """The issue's two measured targets, met or not, with the numbers."""
    out = ["\n**Targets**\n"]
    for backend in dict.fromkeys(r.backend for r in rows if r.side == "sdeve"):
        parts = []
        for dim, ref in refs.items():
            ok = sorted((r for r in rows if r.side == "sdeve" and r.backend == backend and r.dim == dim
                         and r.budget <= 50 and at_floor(r, ref)), key=lambda r: (r.budget, r.sw2_ratio))
            parts.append(f"{dim}-D: " + (f"yes, {ok[0].sampler} at {ok[0].budget} NFE ({ok[0].sw2_ratio:.2f}x, "
                                          f"{ok[0].weight_error:.4f})" if ok else "no"))
        out.append(f"- floor within 50 NFE on {backend}: " + "; ".join(parts))
    for dim in refs:
        for b in budgets:
            best = {}
            for side in ("sdeve", "k-diffusion"):
                pool = [r for r in rows if r.side == side and r.dim == dim and r.budget == b
                        and r.backend in ("numpy", "torch")]
                best[side] = min(pool, key=lambda r: (r.sw2_ratio, r.weight_error), default=None)
            ours, theirs = best["sdeve"], best["k-diffusion"]
            if ours is None or theirs is None:
                continue
            ref = refs[dim]
            if ours.sw2_ratio <= theirs.sw2_ratio:
                verdict = "yes"
            elif at_floor(ours, ref) and at_floor(theirs, ref):
                verdict = "tie: both at the floor, where this n cannot order them"
            else:
                verdict = "NO"
            out.append(f"- {dim}-D, {b} NFE: sdeve best {ours.sampler} [{ours.backend}] {ours.sw2_ratio:.2f}x/"
                       f"{ours.weight_error:.4f}"
                       f" vs k-diffusion best {theirs.sampler} [{theirs.config}] {theirs.sw2_ratio:.2f}x/"
                       f"{theirs.weight_error:.4f}: at least as good: {verdict}")
    return "\n".join(out)


def plot(rows: Sequence[Row], refs: dict[int, Reference], path: str) -> None:
    """Quality against NFE (log axes), one line per sampler (sdeve solid, k-diffusion dashed), floor drawn."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    dims = list(refs)
    fig, axes = plt.subplots(2, len(dims), figsize=(6.5 * len(dims), 8.5), squeeze=False)
    colors = plt.get_cmap("tab10")
    for col, dim in enumerate(dims):
        shown = [r for r in rows if r.dim == dim and (r.side, r.backend) in (("sdeve", "numpy"), ("k-diffusion", "torch"))]
        series = dict.fromkeys((r.side, r.sampler) for r in shown)
        first_kd = next((key for key in series if key[0] != "sdeve"), None)
        for k, (side, sampler) in enumerate(series):
            pts = sorted((r.nfe, r.sw2_ratio, r.weight_error) for r in shown if (r.side, r.sampler) == (side, sampler))
            style = {"linestyle": "-", "linewidth": 2.0, "color": colors(k % 10), "marker": "o"} if side == "sdeve" \
                else {"linestyle": "--", "linewidth": 1.0, "color": "0.55", "marker": "x", "alpha": 0.8}
            label = f"sdeve {sampler}" if side == "sdeve" else (
                "k-diffusion (each sampler, best schedule)" if (side, sampler) == first_kd else None)
            axes[0][col].plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
            axes[1][col].plot([p[0] for p in pts], [p[2] for p in pts], **style)
        ref = refs[dim]
        axes[0][col].axhline(1.0, color="k", linewidth=1.2, label="noise floor")
        axes[0][col].axhline(1.2, color="k", linewidth=0.8, linestyle=":", label="target (1.2x floor)")
        axes[1][col].axhline(ref.floor_weight, color="k", linewidth=1.2)
        axes[1][col].axhline(ref.floor_weight + 0.002, color="k", linewidth=0.8, linestyle=":")
        for row, name in ((0, "sliced W2 / noise floor"), (1, "max component-weight error")):
            ax = axes[row][col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("model evaluations (NFE)")
            ax.set_ylabel(name)
            ax.set_title(f"{dim}-D mixture, exact score: {name}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][col].set_ylim(0.3, 50)
        axes[1][col].set_ylim(1e-3, 0.3)
        axes[0][col].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------- python -m benchmarks --quality
@dataclasses.dataclass(frozen=True)
class QualitySettings:
    """What one run measures (the full run: the issue's n = 20000, 3 seeds, both dimensions)."""

    n: int = 20_000
    seeds: tuple[int, ...] = (0, 1, 2)
    dims: tuple[int, ...] = (2, 16)
    budgets: tuple[int, ...] = BUDGETS
    kd_schedules: tuple[tuple[float, float], ...] = KD_SCHEDULES
    floor_backends: tuple[str, ...] = ("torch", "jax")

    @classmethod
    def quick(cls) -> QualitySettings:
        """A smoke run (under a minute): small n, one seed, 2-D, two budgets, the issue's k-diffusion schedule."""
        return cls(n=2000, seeds=(0,), dims=(2,), budgets=(10, 25), kd_schedules=((0.01, 20.0),),
                   floor_backends=())


def grid(settings: QualitySettings) -> list[tuple[Entry, str]]:
    """The rows: every sdeve sampler on NumPy (the fast ones also on torch and JAX), every k-diffusion sampler
    on torch, and exact samples."""
    ours = sdeve_entries()
    entries = [(e, "numpy") for e in ours]
    entries += [(e, xp) for xp in settings.floor_backends for e in ours if e.sampler in FLOOR_SAMPLERS]
    entries += [(e, "torch") for e in kd_entries(settings.kd_schedules)]
    entries.append((Entry("exact", "exact samples", lambda b, xp: [("", exact_runner())]), "numpy"))
    return entries


FLOOR_SAMPLERS = ("dpmpp_2m", "dpmpp_3m_sde(eta=0)")


def main(settings: QualitySettings | None = None, plot_path: str | None = "docs/quality.png",
         json_path: str | None = None) -> dict[str, Any]:
    """Run the grid, print the table and the targets, write the plot (and JSON)."""
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415

    import torch  # noqa: PLC0415

    from . import _kdiffusion  # noqa: PLC0415

    settings = QualitySettings() if settings is None else settings
    torch.set_num_threads(1)  # a 2-core machine shared with others: one thread times both sides alike
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    rows, refs = evaluate(grid(settings), dims=settings.dims, budgets=settings.budgets, n=settings.n,
                          seeds=settings.seeds, log=log)
    header = (f"n = {settings.n}, medians over seeds {list(settings.seeds)}; k-diffusion {_kdiffusion.version()}; "
              f"sdeve schedule {SDEVE_SCHEDULE}; k-diffusion: Karras rho 7, best of (sigma_min, sigma_max) in "
              f"{list(settings.kd_schedules)}; {time.perf_counter() - started:.0f} s")
    text = header + "\n" + table(rows, refs, settings.budgets) + "\n" + targets(rows, refs, settings.budgets)
    print(text)
    if plot_path:
        plot(rows, refs, plot_path)
    payload = {"settings": dataclasses.asdict(settings), "rows": [dataclasses.asdict(r) for r in rows],
               "floor": {d: {"sw2": r.floor_sw2, "weight_error": r.floor_weight} for d, r in refs.items()}}
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
    return payload


# ---------------------------------------------------------------------- what each part of sdeve's schedule buys
def kdiffusion_on_levels(name: str, levels: Sequence[float], **options: Any) -> Runner:
    """k-diffusion's ``sample_<name>`` on the given levels (sdeve's, for the ablation)."""
    import torch  # noqa: PLC0415

    from . import _kdiffusion  # noqa: PLC0415

    fn = getattr(_kdiffusion.load(), f"sample_{name}")

    def run(mix: GaussianMixture, n: int, seed: int) -> tuple[Any, float]:
        torch.manual_seed(seed)
        model = Counting(lambda x, s: x + (s * s)[:, None] * mix.score(x, s))
        sig = torch.tensor(list(levels), dtype=torch.float32)
        x0 = torch.from_numpy(start_noise(n, mix.dim, seed)) * sig[0]
        return fn(model, x0, sig, disable=True, **options), model.calls

    return run


def ablation(budgets: Sequence[int] = (10, 25), n: int = 20_000, seeds: Sequence[int] = (0, 1, 2)) -> str:
    """DPM-Solver++(3M) ODE with sdeve's schedule, one part of it changed at a time; and k-diffusion's solvers
    given sdeve's levels (its last step is always the denoiser's). Markdown."""
    from sdeve.samplers.sigma_levels import build_sigmas  # noqa: PLC0415

    variants: list[tuple[str, dict[str, Any]]] = [
        ("sdeve's schedule", {}), ("no sigma_start", {"sigma_start": None}),
        ("final step: denoise", {"final_step": "denoise"}), ("Karras rho 7 levels", {"schedule": "karras"}),
        ("sigma_min 0.01 (and no sigma_start)", {"sigma_min": 0.01, "sigma_start": None}),
        ("the issue's: Karras 0.01-20, denoise", {"schedule": "karras", "sigma_min": 0.01, "sigma_start": None,
                                                   "final_step": "denoise"})]
    lines = ["| variant | " + " | ".join(f"{d}-D, {b} NFE" for d in (2, 16) for b in budgets) + " |",
             "|---|" + "---|" * (2 * len(budgets))]
    refs = {d: Reference.build(d, n) for d in (2, 16)}

    def row(label: str, make: Callable[[int], Runner]) -> str:
        cells = []
        for d in (2, 16):
            for b in budgets:
                m = measure(make(b), refs[d], n, seeds)
                cells.append(f"{m.sw2_ratio:.2f}x, {m.weight_error:.4f}")
        return f"| {label} | " + " | ".join(cells) + " |"

    for label, change in variants:
        options = {**SDEVE_SCHEDULE, "eta": 0.0, **change}
        lines.append(row(f"sdeve dpmpp_3m_sde(eta=0), {label}",
                         lambda b, o=options: sdeve_runner("dpmpp_3m_sde", b, **o)))
    levels = {b: build_sigmas(b, schedule="geometric", sigma_min=0.3, sigma_max=SIGMA_MAX, sigma_start=1e4)
              for b in budgets}
    for name, options in (("dpmpp_3m_sde", {"eta": 0.0}), ("lms", {}), ("dpmpp_2m", {})):
        lines.append(row(f"k-diffusion {name}{'(eta=0)' if options else ''} on sdeve's levels",
                         lambda b, name=name, o=options: kdiffusion_on_levels(name, levels[b], **o)))
    return "\n".join(lines)


if __name__ == "__main__":
    print(ablation())
