"""Train a small score network on scikit-learn's 8x8 digits and sample new digits with ``sdeve.sample``.

Denoising score matching over the VE noise levels (Song et al. 2021): a noise level ``sigma`` is drawn
log-uniformly in ``[sigma_min, sigma_max]``, a digit ``x`` is perturbed to ``x + sigma z``, and the network
``s(x, sigma) = f(x, sigma) / sigma`` is trained so that ``f`` predicts ``-z`` (the loss ``|sigma s + z|^2``,
i.e. the weighting ``lambda(sigma) = sigma^2``). Then the predictor-corrector sampler draws new digits from
noise of level ``sigma_max``. The data ship with scikit-learn: nothing is downloaded.

    python examples/digits.py                   # ~4 minutes on one CPU core: docs/digits.png
    python examples/digits.py --smoke           # < 30 s: a check that everything runs
    python examples/digits.py --load out/digits-score.pt --steps 1000   # sample again from a saved model

Besides the picture it prints a quality figure that separates digits from noise: the Fréchet distance between
the samples and real digits on the features of a classifier of real digits (an MLP's hidden layer, as FID uses
an Inception network's), next to the same distance for as many held-out real digits and for as many images of
pure noise. It also prints how the classifier spreads the samples over the ten classes, and how far each
sample is from its nearest training digit (a copy would be at 0).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import sdeve  # noqa: E402

SIGMA_MIN, SIGMA_MAX = 0.01, 20.0  # data in [-1, 1]^64: sigma_max about the largest distance between digits


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as float32 images ``(N, 1, 8, 8)`` in [-1, 1], and their labels."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    images = data.images.astype(np.float32) / 8.0 - 1.0
    return images[:, None], data.target


class ScoreNet(nn.Module):
    """``s(x, sigma) = f(x / sqrt(1 + sigma^2), log sigma) / sigma``: an MLP with residual blocks over the 64
    pixels, told the noise level through random Fourier features of ``log sigma``."""

    def __init__(self, width: int = 512, blocks: int = 3, features: int = 32) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.randn(features) * 4.0, persistent=True)
        self.embed = nn.Sequential(nn.Linear(2 * features, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(64, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
            for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, 64))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        sigma = sigma.to(x.dtype).reshape(-1)
        c_in = torch.rsqrt(1.0 + sigma * sigma)[:, None]
        angles = torch.log(sigma)[:, None] * self.freqs[None, :]
        emb = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        h = self.inp(x.reshape(shape[0], 64) * c_in) + emb
        for block in self.blocks:
            h = h + block(h + emb)
        return (self.out(h) / sigma[:, None]).reshape(shape)


def train(net: ScoreNet, images: np.ndarray, *, iterations: int, batch: int, seed: int, log_every: int) -> ScoreNet:
    """Denoising score matching with Adam, a cosine learning rate and an EMA of the weights (returned)."""
    gen = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(images)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=iterations, pct_start=0.05)
    log_min, log_max = math.log(SIGMA_MIN), math.log(SIGMA_MAX)
    start, running = time.perf_counter(), 0.0
    for it in range(1, iterations + 1):
        x = data[torch.randint(0, data.shape[0], (batch,), generator=gen)]
        sigma = torch.exp(log_min + (log_max - log_min) * torch.rand(batch, generator=gen))
        z = torch.randn(x.shape, generator=gen)
        score = net(x + sigma[:, None, None, None] * z, sigma)
        loss = ((sigma[:, None, None, None] * score + z) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        decay = min(0.999, (1 + it) / (10 + it))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                p_ema.lerp_(p, 1 - decay)
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if it > 1 else value
        if log_every and (it % log_every == 0 or it == iterations):
            elapsed = time.perf_counter() - start
            print(f"  iteration {it:5d}/{iterations}  loss {running:.4f}  ({elapsed:.0f} s)", flush=True)
    return ema


class Judge:
    """A classifier of real digits (an MLP with one hidden layer of 64 units) whose hidden layer gives the
    features the Fréchet distance compares, as FID does with an Inception network's."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, seed: int) -> None:
        from sklearn.neural_network import MLPClassifier

        self.mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=seed)
        self.mlp.fit(images.reshape(len(images), -1), labels)
        features = self.features(images)
        self.mean, self.cov = features.mean(axis=0), np.cov(features, rowvar=False)

    def features(self, images: np.ndarray) -> np.ndarray:
        flat = np.clip(images, -1, 1).reshape(len(images), -1).astype(np.float64)
        return np.maximum(flat @ self.mlp.coefs_[0] + self.mlp.intercepts_[0], 0.0)

    def classes(self, images: np.ndarray) -> np.ndarray:
        return self.mlp.predict(np.clip(images, -1, 1).reshape(len(images), -1))

    def frechet(self, images: np.ndarray) -> float:
        """``|m - m_r|^2 + tr(C + C_r - 2 (C C_r)^(1/2))`` between the Gaussians fitted to the features of
        ``images`` and of the classifier's training digits."""
        features = self.features(images)
        mean, cov = features.mean(axis=0), np.cov(features, rowvar=False)
        values, vectors = np.linalg.eigh(cov)
        root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T  # C^(1/2)
        # tr (C C_r)^(1/2) = sum of the square roots of the eigenvalues of C^(1/2) C_r C^(1/2) (symmetric, >= 0)
        cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ self.cov @ root), 0, None)).sum()
        return float(((mean - self.mean) ** 2).sum() + np.trace(cov) + np.trace(self.cov) - 2 * cross)


def quality(judge: Judge, samples: np.ndarray, held_out: np.ndarray, seed: int) -> dict[str, float]:
    """The Fréchet distance of the samples, of as many held-out real digits, and of as many images of pure
    noise (Gaussian pixels, clipped to the data's range [-1, 1] as the samples are)."""
    rng = np.random.default_rng(seed)
    n = len(samples)
    real = held_out[rng.choice(len(held_out), size=min(n, len(held_out)), replace=False)]
    noise = rng.standard_normal(samples.shape).astype(np.float32)
    return {"samples": judge.frechet(samples), "real digits": judge.frechet(real),
            "pure noise": judge.frechet(noise)}


def draw(path: Path, samples: np.ndarray, real: np.ndarray, title: str, caption: str, columns: int = 12) -> None:
    """Samples on the left, real digits on the right, the quality figures below, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def mosaic(imgs: np.ndarray) -> np.ndarray:
        rows = math.ceil(len(imgs) / columns)
        canvas = np.full((rows * 9 + 1, columns * 9 + 1), -1.0)
        for k, img in enumerate(imgs):
            r, c = divmod(k, columns)
            canvas[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = img[0]
        return canvas

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6), constrained_layout=True)
    panels = ((axes[0], samples, "sampled by sdeve.sample"), (axes[1], real, "real digits (training set)"))
    for ax, imgs, name in panels:
        ax.imshow(np.clip(mosaic(imgs), -1, 1), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=12)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.supxlabel(caption, fontsize=10, family="monospace")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run (< 30 s) to check that everything works")
    parser.add_argument("--iterations", type=int, default=None, help="training iterations (default 6000; smoke 30)")
    parser.add_argument("--batch", type=int, default=128, help="training batch size")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: at this size more threads mostly wait on each other)")
    parser.add_argument("--samples", type=int, default=96, help="digits to sample")
    parser.add_argument("--steps", type=int, default=None, help="sampler timesteps (default 500; smoke 20)")
    parser.add_argument("--snr", type=float, default=0.16, help="corrector signal-to-noise ratio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None,
                        help="where to save the network (default out/digits-score.pt; smoke out/digits-smoke.pt)")
    parser.add_argument("--load", type=Path, default=None, help="sample from a saved network instead of training")
    parser.add_argument("--out", type=Path, default=None,
                        help="the PNG (default docs/digits.png; smoke out/digits-smoke.png)")
    args = parser.parse_args(argv)
    iterations = args.iterations or (30 if args.smoke else 6000)
    steps = args.steps or (20 if args.smoke else 500)
    out = args.out or (ROOT / "out" / "digits-smoke.png" if args.smoke else ROOT / "docs" / "digits.png")
    model_path = args.model or ROOT / "out" / ("digits-smoke.pt" if args.smoke else "digits-score.pt")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    images, labels = load_digits()
    print(f"digits: {len(images)} images of 8x8, scaled to [-1, 1]; VE noise levels {SIGMA_MIN} to {SIGMA_MAX}")
    started = time.perf_counter()
    if args.load is not None:
        net = ScoreNet()
        net.load_state_dict(torch.load(args.load, map_location="cpu", weights_only=True))
        print(f"loaded {args.load}")
    else:
        print(f"training a score network ({sum(p.numel() for p in ScoreNet().parameters()) / 1e6:.2f} M parameters) "
              f"for {iterations} iterations of batch {args.batch}")
        net = train(ScoreNet(), images, iterations=iterations, batch=args.batch, seed=args.seed,
                    log_every=max(1, iterations // 8))
        model_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), model_path)
        print(f"saved {os.path.relpath(model_path)} ({time.perf_counter() - started:.0f} s)")
    net.eval()

    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, snr=args.snr, correct_steps=1)
    t0 = time.perf_counter()
    with torch.no_grad():
        samples = sdeve.sample(net, (args.samples, 1, 8, 8), scheduler=scheduler, num_inference_steps=steps,
                               generator=torch.Generator().manual_seed(args.seed), xp="torch",
                               progress=not args.smoke)
    elapsed = time.perf_counter() - t0
    samples_np = samples.numpy()
    print(f"sampled {args.samples} digits in {elapsed:.1f} s ({steps} steps x 2 model evaluations)")

    # The judge learns from half the real digits; the other half are the "real digits" it scores, unseen like
    # the samples.
    order = np.random.default_rng(args.seed).permutation(len(images))
    fit, held_out = order[: len(order) // 2], order[len(order) // 2 :]
    judge = Judge(images[fit], labels[fit], seed=args.seed)
    scores = quality(judge, samples_np, images[held_out], args.seed)
    figure = "   ".join(f"{name} {value:.1f}" for name, value in scores.items())
    print(f"Frechet distance to real digits on the classifier's features ({len(samples_np)} images each; "
          f"lower is better): {figure}")
    counts = np.bincount(judge.classes(samples_np), minlength=10)
    print("classes of the samples: " + " ".join(f"{d}:{c}" for d, c in enumerate(counts)))
    train_flat = images.reshape(len(images), -1)
    flat = np.clip(samples_np, -1, 1).reshape(len(samples_np), -1)  # as the judge sees them
    nearest = np.sqrt(((flat[:, None, :] - train_flat[None]) ** 2).sum(-1)).min(axis=1)
    # the same distance for real digits, to their nearest *other* training digit
    real_d = np.sqrt(((train_flat[:300, None, :] - train_flat[None]) ** 2).sum(-1))
    real_d[np.arange(300), np.arange(300)] = np.inf
    print(f"distance to the nearest training digit: samples median {np.median(nearest):.2f}, "
          f"real digits median {np.median(real_d.min(axis=1)):.2f} (a copied digit would be 0)")

    rng = np.random.default_rng(args.seed)
    real = images[rng.choice(len(images), size=min(args.samples, len(images)), replace=False)]
    title = (f"sdeve.sample on scikit-learn's 8x8 digits: VE SDE, {steps} steps x (1 corrector + 1 predictor), "
             f"snr {args.snr:g}, sigma {SIGMA_MIN:g} to {SIGMA_MAX:g}; score network trained {iterations} iterations")
    caption = (f"Fréchet distance to real digits on a digit classifier's features, {len(samples_np)} images each "
               f"(lower is better):\nsamples {scores['samples']:.1f}   held-out real digits "
               f"{scores['real digits']:.1f}   pure noise {scores['pure noise']:.1f}")
    draw(out, samples_np, real, title, caption)
    print(f"wrote {os.path.relpath(out)} (total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
