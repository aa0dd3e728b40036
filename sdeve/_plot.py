"""The picture ``python -m sdeve`` writes: samples over the true density, and paths through the noise levels.

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

LIMIT = 7.0  # half-width of the plane shown (the ring has radius 4, std 0.35)


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
) -> None:
    """Write a three-panel PNG to ``path``.

    ``samples`` is ``(n, 2)`` (host); ``paths`` holds, per timestep, the ``(T, 2)`` denoised means of ``T``
    tracked samples, and ``levels`` the noise level of that timestep; ``snapshots`` holds up to four
    ``(sigma, (n, 2) samples at that level)`` pairs (``sigma = 0``: the end), drawn over ``p_sigma``.
    """
    np = resolve_namespace("numpy")
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6), constrained_layout=True)
    fig.suptitle(title or "sdeve", fontsize=13)

    # (a) samples over the density
    grid = np.linspace(-LIMIT, LIMIT, 321)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([np.reshape(xx, (-1,)), np.reshape(yy, (-1,))], axis=1)
    density = np.reshape(np.exp(mixture.log_prob(points, xp=np)), xx.shape)
    ax = axes[0]
    ax.imshow(density, extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), origin="lower", cmap="Blues", interpolation="bilinear")
    shown = samples[:4000]
    ax.scatter(shown[:, 0], shown[:, 1], s=2.5, c="#d62728", alpha=0.55, linewidths=0,
               label=f"{shown.shape[0]} samples")
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_aspect("equal")
    ax.set_title("samples (red) over the exact density (blue)")
    ax.text(0.02, 0.02, _summary(report), transform=ax.transAxes, fontsize=8.5, family="monospace", va="bottom",
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.8"})
    ax.legend(loc="upper right", fontsize=8, markerscale=3)

    # (b) snapshots of the whole batch at a few noise levels, over the exact perturbed density there
    inner = axes[1].get_subplotspec().subgridspec(2, 2, wspace=0.08, hspace=0.18)
    axes[1].remove()
    for k, (sigma, snap) in enumerate(snapshots[:4]):
        ax = fig.add_subplot(inner[k // 2, k % 2])
        half = max(LIMIT, 3.0 * sigma)
        g = np.linspace(-half, half, 161)
        gx, gy = np.meshgrid(g, g)
        pts = np.stack([np.reshape(gx, (-1,)), np.reshape(gy, (-1,))], axis=1)
        dens = np.reshape(np.exp(mixture.log_prob(pts, float(sigma), xp=np)), gx.shape)
        ax.imshow(dens, extent=(-half, half, -half, half), origin="lower", cmap="Blues", interpolation="bilinear")
        ax.scatter(snap[:1000, 0], snap[:1000, 1], s=2.0, c="#d62728", alpha=0.6, linewidths=0)
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"the batch at sigma = {sigma:.3g}" if sigma > 0 else "the end (denoised)", fontsize=9.5, pad=2)
    # (c) the first coordinate through the noise levels, over the exact marginal of p_sigma
    ax = axes[2]
    if levels:
        sigmas = np.exp(np.linspace(math.log(min(levels)), math.log(max(levels)), 160))
        xs = np.linspace(-LIMIT - 3, LIMIT + 3, 241)
        first = GaussianMixture(mixture.weights, mixture.means(np)[:, :1], mixture.stds)
        columns = []
        for s in sigmas.tolist():
            p = np.exp(first.log_prob(np.reshape(xs, (-1, 1)), float(s), xp=np))
            columns.append(p / np.max(p))
        heat = np.stack(columns, axis=1)  # (x, sigma)
        ax.pcolormesh(sigmas, xs, heat, cmap="Blues", shading="auto")
        if paths:
            traj = np.stack(paths, axis=0)
            for t in range(traj.shape[1]):
                ax.plot(levels, traj[:, t, 0], color="#d62728", lw=0.8, alpha=0.8)
        ax.set_xscale("log")
        ax.set_xlim(max(levels), min(levels))
        ax.set_ylim(-LIMIT - 3, LIMIT + 3)
    ax.set_xlabel("noise level sigma (time runs left to right)")
    ax.set_ylabel("first coordinate")
    ax.set_title(f"first coordinate of {len(paths[0]) if paths else 0} samples through the noise levels\n"
                 "over the exact marginal of p_sigma (each column scaled to its peak)", fontsize=10.5)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib  # noqa: PLC0415 - optional dependency, only for drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _summary(report: MixtureReport) -> str:
    return (f"weight error {report.weight_error:.3f}\n"
            f"mean error   {report.mean_error:.3f} std\n"
            f"std error    {100 * report.std_error:.1f}%\n"
            f"log-lik      {report.log_likelihood:.3f}")
