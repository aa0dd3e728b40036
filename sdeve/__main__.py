"""``python -m sdeve`` (or the ``sdeve`` command): sample a built-in 2-D Gaussian mixture with the VE SDE
predictor-corrector sampler on a chosen backend, compare the samples with the exact distribution, and draw
them.

The score is exact (:class:`sdeve.oracles.GaussianMixture`), so whatever differs between the samples and the
mixture is the sampler's doing (and sampling noise, which the "exact draws" column shows for the same n).
No network, no weights.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from typing import Any

from . import __version__
from .oracles import MixtureReport, _host_array, ring
from .sampling import sample
from .scheduler import ScoreSdeVeScheduler

BACKENDS = {
    "numpy": ("numpy", "numpy"),
    "torch": ("torch", "torch"),
    "jax": ("jax", "jax"),
    "dask": ("dask", "dask"),
    "array_api_strict": ("array_api_strict", "array_api_strict"),
}
DEFAULT_STEPS = 500
DASK_STEPS = 100  # Dask builds and runs a small graph per step: ~0.2 s a step on a laptop


def _whole_number(minimum: int) -> Any:
    """An argparse type: a whole number ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
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
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="numpy", help="array library (default: numpy)")
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help=f"timesteps N (default: {DEFAULT_STEPS}; {DASK_STEPS} with dask)")
    parser.add_argument("--snr", type=_positive_float, default=0.15,
                        help="corrector signal-to-noise ratio (default: 0.15)")
    parser.add_argument("--correct-steps", type=_non_negative_int, default=1,
                        help="Langevin corrector steps per timestep (default: 1)")
    parser.add_argument("--corrector-norm", choices=["batch", "example"], default="batch",
                        help="corrector step size from batch means (diffusers) or per example (default: batch)")
    parser.add_argument("--sigma-min", type=_positive_float, default=0.01, help="smallest noise level (default: 0.01)")
    parser.add_argument("--sigma-max", type=_positive_float, default=12.0,
                        help="largest noise level, about the data's diameter (default: 12)")
    parser.add_argument("--batch", type=_positive_int, default=2000, help="number of samples (default: 2000)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    parser.add_argument("--trajectories", type=_non_negative_int, default=8,
                        help="samples whose path through the noise levels is drawn (default: 8)")
    parser.add_argument("--out", default="sdeve-mixture.png", metavar="PATH.png",
                        help="where to write the picture (default: sdeve-mixture.png)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw (no matplotlib needed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="version", version=f"sdeve {__version__}")
    return parser


def _namespace(parser: argparse.ArgumentParser, backend: str) -> Any:
    module, extra = BACKENDS[backend]
    try:
        importlib.import_module(module)
    except ImportError:
        parser.error(f"backend {backend!r} needs {module!r}, which is not installed (pip install {extra})")
    return backend


def _figures(label: str, sampled: MixtureReport, exact: MixtureReport) -> list[str]:
    rows = [
        ("weight error, max |w - w*|", f"{sampled.weight_error:.4f}", f"{exact.weight_error:.4f}"),
        ("mean error, max RMS / std", f"{sampled.mean_error:.4f}", f"{exact.mean_error:.4f}"),
        ("std error, max |s / s* - 1|", f"{100 * sampled.std_error:.2f}%", f"{100 * exact.std_error:.2f}%"),
        ("log-likelihood, mean log p(x)", f"{sampled.log_likelihood:.4f}", f"{exact.log_likelihood:.4f}"),
    ]
    lines = [f"{label:<34}{'sampler':>10}{f'exact n={exact.n}':>14}"]
    lines += [f"  {name:<32}{a:>10}{b:>14}" for name, a, b in rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sdeve`` command; returns the exit status (2 for bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sigma_min >= args.sigma_max:
        parser.error(f"--sigma-min ({args.sigma_min}) must be smaller than --sigma-max ({args.sigma_max})")
    if not args.no_plot and not args.out.lower().endswith(".png"):
        parser.error(f"--out must name a .png file, got {args.out!r}")
    xp = _namespace(parser, args.backend)
    steps = args.steps if args.steps is not None else (DASK_STEPS if args.backend == "dask" else DEFAULT_STEPS)
    if not args.no_plot:
        try:
            import matplotlib
        except ImportError:
            parser.error("plotting needs matplotlib (pip install matplotlib, or sdeve[cli]); or pass --no-plot")
        matplotlib.use("Agg")
    progress = not args.no_progress and args.backend != "jax"
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            progress = False

    if args.backend == "torch" and args.batch * 2 < 10**6:
        from sdeve_backends.torch import use_one_thread

        use_one_thread()  # tensors this small: a thread pool only adds synchronisation (and contention)
    mixture = ring()
    scheduler = ScoreSdeVeScheduler(snr=args.snr, sigma_min=args.sigma_min, sigma_max=args.sigma_max,
                                    correct_steps=args.correct_steps)
    evaluations = steps * (args.correct_steps + 1)
    print(f"sdeve {__version__}: the VE SDE predictor-corrector sampler (Song et al. 2021) with an exact score")
    print(f"target   2-D mixture of {mixture.num_components} Gaussians on a ring (radius 4, std 0.35, weights 1:2:3)")
    print(f"sampler  {args.backend}, float32, {steps} steps x ({args.correct_steps} corrector + 1 predictor), "
          f"snr {args.snr:g}, sigma {args.sigma_min:g} to {args.sigma_max:g}, "
          f"corrector step per {args.corrector_norm}, batch {args.batch}, seed {args.seed}")
    if args.backend == "jax":
        print("         (JAX: the whole loop is compiled into one program; no progress bar)")
    sys.stdout.flush()

    paths: list[Any] = []
    levels: list[float] = []
    track = min(args.trajectories, args.batch) if not args.no_plot else 0

    snapshots: list[tuple[float, Any]] = []
    wanted = [args.sigma_max / 2, 2.0, 0.5] if not args.no_plot else []

    def record(info: dict[str, Any]) -> None:
        if track:
            paths.append(_host_array(info["sample_mean"][:track]))
            levels.append(info["sigma"])
        # the batch as it crosses a few noise levels (its level after this step is the next step's sigma)
        if wanted and info["sigma"] <= wanted[0]:
            snapshots.append((info["sigma"], _host_array(info["sample"])))
            wanted.pop(0)

    kwargs = dict(scheduler=scheduler, num_inference_steps=steps, xp=xp, dtype=_dtype(xp),
                  corrector_norm=args.corrector_norm)
    # JAX: time the compiled loop; the pictures' paths then come from a second, step-by-step run.
    inline = not args.no_plot and args.backend != "jax"
    start = time.perf_counter()
    out = sample(mixture, (args.batch, 2), generator=args.seed, progress=progress,
                 callback=record if inline else None, **kwargs)
    samples = _host_array(out)  # also waits for lazy / asynchronous backends
    elapsed = time.perf_counter() - start
    if not args.no_plot and not inline:
        sample(mixture, (args.batch, 2), generator=args.seed, callback=record, **kwargs)
    snapshots.append((0.0, samples))

    exact = mixture.sample(args.batch, generator=args.seed + 1, xp="numpy")
    sampled_report, exact_report = mixture.report(samples), mixture.report(exact)
    print()
    for line in _figures("quality vs the exact distribution", sampled_report, exact_report):
        print(line)
    print("  component weights, true         " + " ".join(f"{w:.3f}" for w in mixture.weights))
    print("  component weights, sampled      " + " ".join(f"{w:.3f}" for w in sampled_report.weights))
    compiled = " (JAX: compiling the loop included)" if args.backend == "jax" else ""
    print(f"time     {elapsed:.2f} s for {evaluations} model evaluations ({1000 * elapsed / evaluations:.2f} ms each, "
          f"batch {args.batch}){compiled}")
    if not args.no_plot:
        from ._plot import plot_mixture  # noqa: PLC0415 - matplotlib only when drawing

        plot_mixture(args.out, mixture, samples, paths, levels, snapshots, sampled_report,
                     title=f"sdeve · {args.backend} · {steps} steps · {args.correct_steps} corrector · "
                           f"snr {args.snr:g}")
        what = f"; {track} trajectories through the noise levels" if track else ""
        print(f"wrote    {args.out} (samples over the true density{what})")
    return 0


def _dtype(backend: str) -> Any:
    from ._xp import resolve_namespace  # noqa: PLC0415

    return resolve_namespace(backend).float32


if __name__ == "__main__":
    raise SystemExit(main())
