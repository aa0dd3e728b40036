"""``python -m sdeve`` (or the ``sdeve`` command): sample a built-in 2-D Gaussian mixture with the VE SDE
predictor-corrector sampler on a chosen backend, compare the samples with the exact distribution, and draw
them.

The score is exact (:class:`sdeve.oracles.GaussianMixture`), so whatever differs between the samples and the
mixture is the sampler's doing (and sampling noise, which the "exact draws" column shows for the same n).
No network, no weights.

Bad arguments print a message and exit with status 2 before anything runs: values the parser accepts are
also checked against the config's ranges (:mod:`sdeve.config`), against float32 (the dtype of the run), and
against the memory the run needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import math
import os
import sys
import time
from typing import Any

from . import __version__, validation
from ._plot import plot_mixture
from ._xp import resolve_namespace
from .backends import backend_for
from .config import MAX_CORRECT_STEPS, MAX_TIMESTEPS, ConfigError, SdeVeConfig
from .likelihood import log_likelihood
from .oracles import GaussianMixture, MixtureReport, _host_array, ring
from .samplers import SAMPLERS
from .sampling import sample
from .schedule import sigma_of_t
from .scheduler import ScoreSdeVeScheduler

# backend -> (module that must import, pip extra)
BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "numpy"),
    "torch": ("torch", "torch"),
    "jax": ("jax", "jax"),
    "dask": ("dask", "dask"),
    "array_api_strict": ("array_api_strict", "array_api_strict"),
}
SMALL_BATCH = 5 * 10**5  # below this, the backend is told its arrays are small (Backend.small_arrays)
DEFAULT_STEPS = 500
DASK_STEPS = 100  # Dask builds and runs a small graph per step: ~0.2 s a step on a laptop
# Every backend's generator takes a seed in [0, 2**63 - 1] (a JAX key takes a signed 64-bit int).
MAX_SEED = validation.MAX_SEED
# Peak memory of a run per sampled point and per timestep, bounds over the backends (numpy, torch, jax, dask,
# array_api_strict; plotting included): the score's (batch, components) temporaries and the host copies the
# report and the picture take dominate the first, the recorded paths the second.
BYTES_PER_POINT = 640
BYTES_PER_STEP = 2048
# The run is in float32: the mixture's score squares distances of up to ~10 sigma_max, and the model is handed
# the levels themselves, so sigma_max**2 needs this much headroom below float32's largest value, and sigma_min
# must be a normal float32.
FLOAT32_HEADROOM = 100.0
FLAGS = {"snr": "--snr", "sigma_min": "--sigma-min", "sigma_max": "--sigma-max", "correct_steps": "--correct-steps",
         "num_train_timesteps": "--steps"}


def _whole_number(minimum: int, maximum: int) -> Any:
    """An argparse type: a whole number in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        try:
            value = int(text)
        except ValueError:  # not a number, or more digits than Python converts
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {shown!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {shown}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected a whole number <= {maximum}, got {shown}")
        return value

    return parse


def _positive_float(text: str) -> float:
    shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {shown!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {shown}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(
        prog="sdeve",
        description="Sample a 2-D mixture of 8 Gaussians with the VE SDE predictor-corrector sampler (Song et al. "
        "2021) on the chosen backend, using the mixture's exact score; print how close the samples are to the "
        "exact distribution and the time taken, and plot them.",
        epilog="Example: sdeve --backend torch --steps 1000 --out ring.png",
    )
    add = parser.add_argument
    add("--backend", choices=sorted(BACKENDS), default="numpy", help="array library (default: numpy)")
    add("--sampler", choices=SAMPLERS, default="pc",
        help="sampler (default: pc, Song et al.'s predictor-corrector; ode: the probability-flow ODE)")
    add("--method", choices=["rk45", "heun", "euler"], default="rk45",
        help="with --sampler ode: the ODE solver (default: rk45, adaptive)")
    add("--rtol", type=_positive_float, default=1e-5, help="with --sampler ode --method rk45 (default: 1e-5)")
    add("--atol", type=_positive_float, default=1e-5, help="with --sampler ode --method rk45 (default: 1e-5)")
    add("--steps", type=_whole_number(1, MAX_TIMESTEPS), default=None,
        help=f"timesteps N (default: {DEFAULT_STEPS}; {DASK_STEPS} with dask; at most {MAX_TIMESTEPS})")
    add("--snr", type=_positive_float, default=0.15, help="corrector signal-to-noise ratio, at most 1 (default: 0.15)")
    add("--correct-steps", type=_whole_number(0, MAX_CORRECT_STEPS), default=1,
        help="Langevin corrector steps per timestep (default: 1)")
    add("--corrector-norm", choices=["batch", "example"], default="batch",
        help="corrector step size from batch means (diffusers) or per example (default: batch)")
    add("--sigma-min", type=_positive_float, default=0.01, help="smallest noise level (default: 0.01)")
    add("--sigma-max", type=_positive_float, default=12.0,
        help="largest noise level, about the data's diameter (default: 12)")
    add("--batch", type=_whole_number(1, sys.maxsize), default=2000,
        help="number of samples (default: 2000; refused when the run would not fit in memory)")
    add("--seed", type=_whole_number(0, MAX_SEED), default=0, help="random seed (default: 0)")
    add("--trajectories", type=_whole_number(0, sys.maxsize), default=8,
        help="samples whose path through the noise levels is drawn (default: 8)")
    add("--out", default="sdeve-mixture.png", metavar="PATH.png",
        help="where to write the picture (default: sdeve-mixture.png)")
    add("--no-plot", action="store_true", help="do not draw (no matplotlib needed)")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--version", action="version", version=f"sdeve {__version__}")
    return parser


# ---------------------------------------------------------------------- checks before the run (exit 2)
@dataclasses.dataclass
class _Settings:
    """A checked command line: everything the run needs."""

    args: argparse.Namespace
    steps: int
    scheduler: ScoreSdeVeScheduler
    plot: bool
    progress: bool
    track: int
    evaluations: int | None = None


def _check_backend(parser: argparse.ArgumentParser, backend: str) -> None:
    module, extra = BACKENDS[backend]
    try:
        importlib.import_module(module)
    except ImportError:
        parser.error(f"backend {backend!r} needs {module!r}, which is not installed (pip install {extra})")


def _scheduler(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ScoreSdeVeScheduler:
    """The scheduler of the run; the config's ranges and float32's, as errors naming the option."""
    if args.sigma_min >= args.sigma_max:
        parser.error(f"--sigma-min ({args.sigma_min}) must be smaller than --sigma-max ({args.sigma_max})")
    try:
        config = SdeVeConfig(snr=args.snr, sigma_min=args.sigma_min, sigma_max=args.sigma_max,
                             correct_steps=args.correct_steps)
    except ConfigError as exc:
        parser.error(f"argument {FLAGS.get(exc.setting or '', 'value')}: {exc}")
    finfo = resolve_namespace("numpy").finfo("float32")
    largest = math.sqrt(float(finfo.max)) / FLOAT32_HEADROOM
    if args.sigma_max > largest:
        parser.error(f"argument --sigma-max: at most {largest:.3g} for a float32 run (the score squares distances of "
                     f"about 10 sigma_max), got {args.sigma_max:g}")
    if args.sigma_min < float(finfo.smallest_normal):
        parser.error(f"argument --sigma-min: at least {float(finfo.smallest_normal):.3g} (the smallest normal "
                     f"float32: the model is given the levels in float32), got {args.sigma_min:g}")
    return ScoreSdeVeScheduler(**config.to_dict())


def _check_out(parser: argparse.ArgumentParser, out: str) -> None:
    """``--out`` must name a .png file that can be written (its folders are created when drawing)."""
    if not out.lower().endswith(".png"):
        parser.error(f"--out must name a .png file, got {out!r}")
    if os.path.isdir(out):
        parser.error(f"--out {out!r} is a directory; name a .png file")
    folder = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        parser.error(f"--out {out!r}: {folder!r} is not a directory")
    if os.path.dirname(os.path.abspath(out)) != folder:  # folders to create: ask the system, create nothing yet
        if not os.access(folder, os.W_OK | os.X_OK):
            parser.error(f"--out {out!r}: cannot create folders in {folder!r}")
        return
    existed = os.path.exists(out)
    try:
        with open(out, "ab"):
            pass
    except (OSError, ValueError) as exc:
        parser.error(f"--out {out!r} cannot be written: {getattr(exc, 'strerror', None) or exc}")
    if not existed:
        os.remove(out)


def _available_memory() -> int | None:
    """Bytes of memory available to a new run (Linux: MemAvailable; else the physical memory), or ``None``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _check_memory(parser: argparse.ArgumentParser, batch: int, steps: int, track: int) -> None:
    needed = batch * BYTES_PER_POINT + steps * (BYTES_PER_STEP + 32 * track)
    available = _available_memory()
    if available is not None and needed > available:
        parser.error(f"--batch {batch} with --steps {steps} needs about {_bytes(needed)} of memory "
                     f"({BYTES_PER_POINT} bytes a point); {_bytes(available)} is available")


def _bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.3g} PB"  # pragma: no cover - the loop returns


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Settings:
    """Check everything that can be checked before the run; ``parser.error`` (exit 2) on the first problem."""
    plot = not args.no_plot
    if plot:
        _check_out(parser, args.out)
    _check_backend(parser, args.backend)
    scheduler = _scheduler(parser, args)
    steps = args.steps if args.steps is not None else (DASK_STEPS if args.backend == "dask" else DEFAULT_STEPS)
    track = min(args.trajectories, args.batch) if plot else 0
    _check_memory(parser, args.batch, steps, track)
    if plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("plotting needs matplotlib (pip install matplotlib, or sdeve[cli]); or pass --no-plot")
    progress = (not args.no_progress and args.backend != "jax" and importlib.util.find_spec("tqdm") is not None)
    return _Settings(args, steps, scheduler, plot, progress, track)


# ---------------------------------------------------------------------- the run
class _Recorder:
    """The callback of the drawn run: the tracked samples' paths, and the batch at a few noise levels."""

    def __init__(self, track: int, wanted: list[float]) -> None:
        self.track = track
        self.wanted = wanted
        self.paths: list[Any] = []
        self.levels: list[float] = []
        self.snapshots: list[tuple[float, Any]] = []

    def __call__(self, info: dict[str, Any]) -> None:
        if self.track:
            self.paths.append(_host_array(info["sample_mean"][: self.track]))
            self.levels.append(info["sigma"])
        # the batch as it crosses a few noise levels (its level after this step is the next step's sigma)
        if self.wanted and info["sigma"] <= self.wanted[0]:
            self.snapshots.append((info["sigma"], _host_array(info["sample"])))
            self.wanted.pop(0)


def _sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of the chosen sampler, from the command line."""
    if args.sampler == "ode":
        return {"method": args.method, "rtol": args.rtol, "atol": args.atol}
    return {}


def _describe(args: argparse.Namespace, steps: int) -> str:
    if args.sampler == "pc":
        return (f"pc, {steps} steps x ({args.correct_steps} corrector + 1 predictor), snr {args.snr:g}, "
                f"corrector step per {args.corrector_norm}")
    if args.sampler == "ode":
        grid = f"rtol {args.rtol:g}, atol {args.atol:g}" if args.method == "rk45" else f"{steps} levels"
        return f"probability-flow ODE, {args.method}, {grid}"
    return f"{args.sampler}, {steps} steps"


def _print_header(run: _Settings, mixture: GaussianMixture) -> None:
    args = run.args
    print(f"sdeve {__version__}: the VE SDE samplers of Song et al. (2021) and after, with an exact score")
    print(f"target   2-D mixture of {mixture.num_components} Gaussians on a ring (radius 4, std 0.35, weights 1:2:3)")
    print(f"sampler  {args.backend}, float32, {_describe(args, run.steps)}, sigma {args.sigma_min:g} to "
          f"{args.sigma_max:g}, batch {args.batch}, seed {args.seed}")
    if args.backend == "jax":
        print("         (JAX: the whole loop is compiled into one program; no progress bar)")
    sys.stdout.flush()


def _prepare_backend(backend: str, batch: int) -> None:
    if batch < SMALL_BATCH:
        backend_for(backend).small_arrays()


def _sample(run: _Settings, mixture: GaussianMixture, recorder: _Recorder) -> tuple[Any, float]:
    """``(samples on the host, seconds)``. JAX: the compiled loop is timed; the paths come from a second,
    step-by-step run."""
    args = run.args
    xp = args.backend
    kwargs = dict(scheduler=run.scheduler, num_inference_steps=run.steps, xp=xp, sampler=args.sampler,
                  dtype=resolve_namespace(xp).float32, corrector_norm=args.corrector_norm, **_sampler_options(args))
    inline = run.plot and args.backend != "jax"
    counted = _Counted(mixture)
    start = time.perf_counter()
    out = sample(counted, (args.batch, 2), generator=args.seed, progress=run.progress,
                 callback=recorder if inline else None, **kwargs)
    samples = _host_array(out)  # also waits for lazy / asynchronous backends
    elapsed = time.perf_counter() - start
    run.evaluations = counted.calls if args.backend != "jax" else None
    if run.plot and not inline:
        sample(mixture, (args.batch, 2), generator=args.seed, callback=recorder, **kwargs)
    recorder.snapshots.append((0.0, samples))
    return samples, elapsed


class _Counted:
    """The model, counting its evaluations (a compiled JAX program calls it only while tracing)."""

    def __init__(self, model: Any) -> None:
        self.model, self.calls = model, 0

    def __call__(self, x: Any, sigma: Any) -> Any:
        self.calls += 1
        return self.model(x, sigma)


def _all_finite(samples: Any) -> bool:
    host = resolve_namespace("numpy")
    return bool(host.all(host.isfinite(samples)))


def _cell(value: float, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    """A table cell: ``n/a`` where the report has no figure (a component without samples), and exponent
    notation for values too wide for the column."""
    if not math.isfinite(value):
        return "n/a"
    value *= scale
    return f"{value:{spec if abs(value) < 1e5 else '.3e'}}{suffix}"


def _figures(label: str, sampled: MixtureReport, exact: MixtureReport) -> list[str]:
    def row(name: str, figure: str, spec: str, scale: float = 1.0, suffix: str = "") -> str:
        mine, theirs = (_cell(getattr(r, figure), spec, scale, suffix) for r in (sampled, exact))
        return f"  {name:<32}{mine:>10}{theirs:>14}"

    lines = [
        f"{label:<34}{'sampler':>10}{f'exact n={exact.n}':>14}",
        row("weight error, max |w - w*|", "weight_error", ".4f"),
        row("mean error, max RMS / std", "mean_error", ".4f"),
        row("std error, max |s / s* - 1|", "std_error", ".2f", 100.0, "%"),
        row("log-likelihood, mean log p(x)", "log_likelihood", ".4f"),
    ]
    if any("n/a" in line for line in lines):
        lines.append("  (n/a: a component received no samples; a larger --batch fills every one)")
    return lines


def _print_report(run: _Settings, mixture: GaussianMixture, samples: Any, elapsed: float
                  ) -> tuple[MixtureReport, MixtureReport]:
    args = run.args
    exact = mixture.sample(args.batch, generator=(args.seed + 1) % (MAX_SEED + 1), xp="numpy")
    sampled_report, exact_report = mixture.report(samples), mixture.report(exact)
    print()
    for line in _figures("quality vs the exact distribution", sampled_report, exact_report):
        print(line)
    print("  component weights, true         " + " ".join(f"{w:.3f}" for w in mixture.weights))
    print("  component weights, sampled      " + " ".join(f"{w:.3f}" for w in sampled_report.weights))
    _print_likelihood(run, mixture, exact)
    compiled = " (JAX: compiling the loop included)" if args.backend == "jax" else ""
    evaluations = run.evaluations if run.evaluations is not None else _fixed_evaluations(args, run.steps)
    if evaluations:
        each = f"{1000 * elapsed / evaluations:.2f} ms each, "
        print(f"time     {elapsed:.2f} s for {evaluations} model evaluations ({each}batch {args.batch}){compiled}")
    else:
        print(f"time     {elapsed:.2f} s (batch {args.batch}){compiled}")
    return sampled_report, exact_report


def _fixed_evaluations(args: argparse.Namespace, steps: int) -> int | None:
    """Model evaluations of a fixed-step run (a compiled JAX run cannot count them); ``None`` if adaptive."""
    if args.sampler == "pc":
        return steps * (int(args.correct_steps) + 1)
    if args.sampler == "ode" and args.method != "rk45":
        return steps if args.method == "euler" else 2 * steps - 1
    return None


# Exact draws whose likelihood is computed (the augmented ODE, exact divergence): enough for the mean to 0.1 nat.
LIKELIHOOD_POINTS = 200


def _print_likelihood(run: _Settings, mixture: GaussianMixture, exact: Any) -> None:
    """The probability-flow ODE's log-likelihood of exact draws next to their exact log-density at sigma(eps)."""
    points = exact[:LIKELIHOOD_POINTS].astype("float64")
    config = run.scheduler.config
    result = log_likelihood(mixture, points, scheduler=run.scheduler, divergence=mixture.divergence)
    level = sigma_of_t(config.sampling_eps, config.sigma_min, config.sigma_max)
    truth = float(mixture.log_prob(points, level, xp=resolve_namespace("numpy")).mean())
    print(f"  likelihood of {points.shape[0]} exact draws (probability-flow ODE, exact trace): "
          f"{float(result.nats.mean()):.4f} nats, exact {truth:.4f}; {float(result.bits_per_dim.mean()):.4f} "
          f"bits/dim, {result.nfe} evaluations")


def _draw(run: _Settings, mixture: GaussianMixture, samples: Any, recorder: _Recorder,
          reports: tuple[MixtureReport, MixtureReport]) -> int:
    args = run.args
    title = f"sdeve · {args.backend} · {_describe(args, run.steps)}"
    try:
        plot_mixture(args.out, mixture, samples, recorder.paths, recorder.levels, recorder.snapshots, reports[0],
                     title=title, exact=reports[1])
    except OSError as exc:
        print(f"sdeve: cannot write {args.out!r}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    what = f"; {run.track} trajectories through the noise levels" if run.track else ""
    print(f"wrote    {args.out} (samples over the true density{what})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sdeve`` command; returns the exit status: 0, 2 for bad arguments (``SystemExit``),
    1 when a checked run still fails (non-finite samples, a picture that cannot be written)."""
    parser = build_parser()
    run = _settings(parser, parser.parse_args(argv))
    _prepare_backend(run.args.backend, run.args.batch)
    mixture = ring()
    _print_header(run, mixture)
    recorder = _Recorder(run.track, [run.args.sigma_max / 2, 2.0, 0.5] if run.plot else [])
    samples, elapsed = _sample(run, mixture, recorder)
    if not _all_finite(samples):
        print(f"sdeve: the {run.args.backend} run gave non-finite samples; no report", file=sys.stderr)
        return 1
    reports = _print_report(run, mixture, samples, elapsed)
    return _draw(run, mixture, samples, recorder, reports) if run.plot else 0


if __name__ == "__main__":
    raise SystemExit(main())
