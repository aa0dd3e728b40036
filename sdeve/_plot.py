"""The picture ``python -m sdeve`` writes: samples over the true density, the batch at a few noise levels, and
paths through the noise levels, with a caption that says what each figure measures.

Drawing needs matplotlib (``pip install sdeve[cli]``), imported on the first drawing so that the command runs
without it (``--no-plot``). Host arrays come from the NumPy namespace through
:func:`sdeve._xp.resolve_namespace`, as everywhere in the package.
"""

from __future__ import annotations

import math
import os
from typing import Any

from ._xp import resolve_namespace
from .oracles import GaussianMixture, MixtureReport

__all__ = ["plot_mixture"]

LIMIT = 7.0  # half-width of the plane shown in every 2-D panel (the ring has radius 4, std 0.35)
EXACT_SEED = 1  # the exact draws `python -m sdeve` compares with at its default seed (seed + 1)
SAMPLE_COLOUR = "#d62728"

CAPTION = (
    ("weight error", "the largest |fraction of the samples in a component - its true weight|; each sample counts "
                     "for its most likely component"),
    ("mean error", "the largest distance between a component's sample mean and its true mean (RMS per axis), in "
                   "units of the component's std"),
    ("std error", "the largest |sample std / true std - 1| of a component"),
    ("log-lik", "the mean log-density of the samples under the exact mixture (higher is better)"),
    ("exact", "the same figures for as many exact draws from the mixture: the noise floor at this sample size; "
              "the sampler matches the mixture where its figures are near these"),
    ("blue", "the exact density: p_sigma at the batch's noise level (left, middle), the first coordinate's "
             "marginal (right); each panel and column shaded relative to its own peak"),
)


def plot_mixture(
    path: str,
    mixture: GaussianMixture,
    samples: Any,
    paths: list[Any],
    levels: list[float],
    snapshots: list[tuple[float, Any]],
    report: MixtureReport,
    *,
    title: str = "",
    exact: MixtureReport | None = None,
) -> None:
    """Write the picture to ``path`` (PNG).

    Parameters
    ----------
    path
        Where to write it; folders are created.
    mixture
        The target, whose exact density is drawn under the samples.
    samples
        ``(n, 2)`` host array: the sampler's result.
    paths
        Per timestep, the ``(T, 2)`` denoised means of ``T`` tracked samples; ``levels`` holds the noise level
        of each timestep.
    levels
        The noise level of each entry of ``paths``.
    snapshots
        Up to four ``(sigma, (n, 2) samples at that level)`` pairs (``sigma = 0``: the end), drawn over
        ``p_sigma`` on the same axes as the samples.
    report
        The samples' figures (:meth:`GaussianMixture.report`).
    title
        The figure's title.
    exact
        The same figures for as many exact draws (the noise floor); default: drawn here with seed
        ``EXACT_SEED``, which is what ``python -m sdeve`` compares with at its default seed.
    """
    np = resolve_namespace("numpy")
    if exact is None:
        exact = mixture.report(mixture.sample(int(samples.shape[0]), generator=EXACT_SEED, xp="numpy"))
    plt = _pyplot()
    fig = plt.figure(figsize=(18, 7.6), layout="constrained")
    rows: Any = fig.subfigures(2, 1, height_ratios=[6.0, 1.0])  # an array of subfigures
    top, bottom = rows[0], rows[1]
    top.suptitle(title or "sdeve", fontsize=13)
    panels = top.subfigures(1, 3, width_ratios=[1.0, 1.05, 1.25])
    _samples_panel(panels[0], mixture, samples, report, exact, np)
    _snapshots_panel(panels[1], mixture, snapshots, np)
    _paths_panel(panels[2], mixture, paths, levels, np)
    caption = "\n".join(f"{term:<13}{what}" for term, what in CAPTION)
    bottom.text(0.01, 0.97, caption, fontsize=8.8, family="monospace", va="top", ha="left",
                transform=bottom.transSubfigure)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib  # noqa: PLC0415 - optional dependency, only for drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _density(mixture: GaussianMixture, sigma: float, points: int, np: Any) -> Any:
    """``p_sigma`` on a ``points x points`` grid over the plane shown."""
    grid = np.linspace(-LIMIT, LIMIT, points)
    xx, yy = np.meshgrid(grid, grid)
    flat = np.stack([np.reshape(xx, (-1,)), np.reshape(yy, (-1,))], axis=1)
    return np.reshape(np.exp(mixture.log_prob(flat, float(sigma), xp=np)), xx.shape)


def _samples_panel(panel: Any, mixture: GaussianMixture, samples: Any, report: MixtureReport,
                   exact: MixtureReport, np: Any) -> None:
    """(a) the samples over the exact density, with their figures and the exact draws'."""
    ax = panel.subplots()
    ax.imshow(_density(mixture, 0.0, 321, np), extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), origin="lower",
              cmap="Blues", interpolation="bilinear")
    shown = samples[:4000]
    ax.scatter(shown[:, 0], shown[:, 1], s=2.5, c=SAMPLE_COLOUR, alpha=0.55, linewidths=0,
               label=f"{shown.shape[0]} samples")
    _plane(ax)
    ax.set_title("samples (red) over the exact density (blue)", fontsize=11)
    ax.text(0.02, 0.02, _summary(report, exact), transform=ax.transAxes, fontsize=8.5, family="monospace",
            va="bottom", bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.88, "edgecolor": "0.8"})
    ax.legend(loc="upper right", fontsize=8, markerscale=3)


def _snapshots_panel(panel: Any, mixture: GaussianMixture, snapshots: list[tuple[float, Any]], np: Any) -> None:
    """(b) the whole batch at a few noise levels over the exact perturbed density there, on the axes of (a)."""
    panel.suptitle("the batch on its way: same axes as the left panel", fontsize=11)
    for k, ax in enumerate(panel.subplots(2, 2, sharex=True, sharey=True).flat):
        if k >= len(snapshots):
            ax.set_visible(False)
            continue
        sigma, snap = snapshots[k]
        ax.imshow(_density(mixture, sigma, 161, np), extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), origin="lower",
                  cmap="Blues", interpolation="bilinear")
        ax.scatter(snap[:1000, 0], snap[:1000, 1], s=2.0, c=SAMPLE_COLOUR, alpha=0.6, linewidths=0)
        _plane(ax, fontsize=8.5)
        outside = float(np.mean(np.max(np.abs(snap), axis=1) > LIMIT))
        label = f"sigma = {sigma:.3g}" if sigma > 0 else "the end (denoised)"
        if outside >= 0.005:
            label += f"; {100 * outside:.0f}% outside"
        ax.set_title(label, fontsize=9.5, pad=3)
        ax.tick_params(labelsize=8, labelbottom=True, labelleft=True)


def _paths_panel(panel: Any, mixture: GaussianMixture, paths: list[Any], levels: list[float], np: Any) -> None:
    """(c) the first coordinate through the noise levels, over the exact marginal of p_sigma."""
    ax = panel.subplots()
    span = LIMIT + 3
    if levels:
        sigmas = np.exp(np.linspace(math.log(min(levels)), math.log(max(levels)), 160))
        xs = np.linspace(-span, span, 241)
        first = GaussianMixture(mixture.weights, mixture.means(np)[:, :1], mixture.stds)
        columns = [np.exp(first.log_prob(np.reshape(xs, (-1, 1)), float(s), xp=np)) for s in sigmas.tolist()]
        heat = np.stack([c / np.max(c) for c in columns], axis=1)  # (x, sigma)
        ax.pcolormesh(sigmas, xs, heat, cmap="Blues", shading="auto")
        if paths:
            traj = np.stack(paths, axis=0)
            for t in range(traj.shape[1]):
                ax.plot(levels, traj[:, t, 0], color=SAMPLE_COLOUR, lw=0.8, alpha=0.8)
        ax.set_xscale("log")
        ax.set_xlim(max(levels), min(levels))
    ax.set_ylim(-span, span)
    ax.set_xlabel("noise level sigma (log scale; time runs left to right)")
    ax.set_ylabel("first coordinate x1")
    ax.set_title(f"first coordinate of {len(paths[0]) if paths else 0} samples (red) through the noise levels,\n"
                 "over the exact marginal of p_sigma (blue, each column shaded relative to its peak)", fontsize=10.5)


def _plane(ax: Any, fontsize: float = 10.0) -> None:
    """The data plane, the same in every 2-D panel: limits, ticks, axis labels, equal aspect."""
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_aspect("equal")
    ticks = [-6, -4, -2, 0, 2, 4, 6]
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("x1", fontsize=fontsize, labelpad=1)
    ax.set_ylabel("x2", fontsize=fontsize, labelpad=1)


def _summary(report: MixtureReport, exact: MixtureReport) -> str:
    rows = [
        ("", "sampler", "exact"),
        ("weight error", f"{report.weight_error:.3f}", f"{exact.weight_error:.3f}"),
        ("mean error", f"{report.mean_error:.3f}", f"{exact.mean_error:.3f}"),
        ("std error", f"{100 * report.std_error:.1f}%", f"{100 * exact.std_error:.1f}%"),
        ("log-lik", f"{report.log_likelihood:.3f}", f"{exact.log_likelihood:.3f}"),
    ]
    return "\n".join(f"{a:<13}{b:>8}{c:>8}" for a, b, c in rows)
