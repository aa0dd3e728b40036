"""``python -m benchmarks --scaling``: how the time of a whole predictor-corrector sampling run grows with the
batch size and with the number of steps (issue 5 expects both linear), as a markdown table with the log-log
slopes and a log-log plot (``docs/scaling.png`` by default).

A run is ``sdeve.sample`` (the JAX rows: ``sdeve_backends.jax.sample``, compiled) with the toy linear score
``score(x, sigma) = -x / (1 + sigma^2)`` on samples of shape ``(B, 3, 32, 32)``, float32. Where the sampler is
absent, a plain loop over the scheduler's steps (diffusers' pipeline loop) stands in, and the JSON says so.
The slope is the least-squares slope of log(time) on log(size) over the larger half of the points, where the
fixed per-call costs no longer dominate: 1 is linear.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._kits import Kit, make_kit
from ._report import format_seconds
from ._timing import interleaved, machine

__all__ = ["main", "measure"]

IMAGE = (3, 32, 32)
BACKENDS = ("numpy", "torch", "jax")


def _model(xp: Any) -> Callable[[Any, Any], Any]:
    def score(x: Any, sigma: Any) -> Any:
        s = xp.reshape(sigma, (-1,) + (1,) * (x.ndim - 1)) if getattr(sigma, "ndim", 0) else sigma
        return -x / (1 + s * s)

    return score


def _fallback_loop(kit: Kit, shape: tuple[int, ...], steps: int) -> Callable[[], Any]:
    """diffusers' pipeline loop over the generic scheduler (used where ``sdeve.sample`` is absent)."""
    import sdeve

    sched = sdeve.ScoreSdeVeScheduler()
    sched.set_timesteps(steps)
    sched.set_sigmas(steps)
    x0, _ = kit.inputs(shape)
    model = _model(kit.xp)
    gen = kit.generator()
    schedule = list(zip(sched.timesteps, sched.sigmas))

    def run() -> Any:
        x = x0
        x_mean = x0
        for t, sigma in schedule:
            x = sched.step_correct(model(x, float(sigma)), x, generator=gen).prev_sample
            x, x_mean = sched.step_pred(model(x, float(sigma)), t, x, generator=gen, return_dict=False)
        return x_mean

    return run


def _runner(kit: Kit, shape: tuple[int, ...], steps: int) -> tuple[Callable[[], Any], str]:
    import sdeve

    model = _model(kit.xp)
    if kit.module == "jax.numpy":
        try:
            from sdeve_backends.jax import sample as jax_sample  # type: ignore[attr-defined]
        except ImportError:
            jax_sample = None
        if jax_sample is not None and _caches_its_program(jax_sample, kit):
            return (lambda: jax_sample(model, shape, num_inference_steps=steps, generator=0, device=kit.device),
                    "sdeve_backends.jax.sample")
        from ._jax_loop import loops

        compiled, _, _ = loops(kit.device, shape, steps)
        return compiled, ("lax.fori_loop over FlaxScoreSdeVeScheduler (sdeve_backends.jax.sample absent, or "
                          "compiling anew on every call, which would make this a plot of compile times)")
    sample = getattr(sdeve, "sample", None)
    if sample is not None:
        gen = kit.generator()
        return (lambda: sample(model, shape, num_inference_steps=steps, generator=gen, xp=kit.xp, device=kit.device),
                "sdeve.sample")
    return _fallback_loop(kit, shape, steps), "loop over sdeve.ScoreSdeVeScheduler (sampler absent)"


_CACHE_VERDICT: dict[str, bool] = {}


def _caches_its_program(jax_sample: Any, kit: Kit) -> bool:
    """Whether a second call of the sampler is much faster than the first (its program is cached)."""
    if kit.name not in _CACHE_VERDICT:
        import jax

        model = _model(kit.xp)
        took = []
        for _ in range(2):
            start = time.perf_counter()
            jax.block_until_ready(jax_sample(model, (1, *IMAGE), num_inference_steps=3, generator=0, device=kit.device))
            took.append(time.perf_counter() - start)
        _CACHE_VERDICT[kit.name] = took[1] < 0.2 * took[0]
    return _CACHE_VERDICT[kit.name]


def _slope(xs: list[float], ys: list[float]) -> float:
    half = max(2, (len(xs) + 1) // 2)
    lx, ly = np.log(np.asarray(xs[-half:], float)), np.log(np.asarray(ys[-half:], float))
    return float(np.polyfit(lx, ly, 1)[0])


def measure(settings: Any) -> dict[str, Any]:
    """Time every backend at every point of both sweeps; returns the JSON payload's ``scaling`` part."""
    if settings.quick:
        batches, step_counts, fixed_steps, fixed_batch = [1, 4, 16], [10, 30, 100], 20, 2
    else:
        batches, step_counts, fixed_steps, fixed_batch = [1, 4, 16, 64, 256], [10, 30, 100, 300, 1000], 100, 4
    kits: dict[str, Kit] = {}
    skipped = {}
    for name in BACKENDS:
        if not settings.wants_backend(name):
            continue
        try:
            kits[name] = make_kit(name)
        except (ImportError, RuntimeError) as exc:
            skipped[name] = str(exc)
    repeats = max(3, settings.repeats // 3)
    sweeps: dict[str, dict[str, Any]] = {}
    how: dict[str, str] = {}
    for sweep, points in (("batch", batches), ("steps", step_counts)):
        for value in points:
            shape = ((value if sweep == "batch" else fixed_batch),) + IMAGE
            steps = fixed_steps if sweep == "batch" else value
            cases = {}
            for name, kit in kits.items():
                fn, how[name] = _runner(kit, shape, steps)
                cases[name] = kit.case(fn)
            print(f"[scaling {sweep}={value}]", file=sys.stderr, flush=True)
            times = interleaved(cases, repeats=repeats, warmup=1, min_sample_s=0.0)
            for name, timing in times.items():
                entry = sweeps.setdefault(sweep, {}).setdefault(name, {"x": [], "median_s": []})
                entry["x"].append(value)
                entry["median_s"].append(timing.median)
    for sweep, per_backend in sweeps.items():
        for entry in per_backend.values():
            entry["slope"] = _slope(entry["x"], entry["median_s"])
    return {"image": list(IMAGE), "fixed_steps": fixed_steps, "fixed_batch": fixed_batch, "sweeps": sweeps,
            "how": how, "skipped": skipped, "repeats": repeats}


def markdown(scaling: dict[str, Any]) -> str:
    header = (
        f"Time of a whole sampling run, shape (B, {', '.join(map(str, scaling['image']))}), float32; batch sweep at "
        f"{scaling['fixed_steps']} steps, steps sweep at B = {scaling['fixed_batch']}. Slope: log-log, larger half "
        "of the points (1 = linear)."
    )
    lines = [
        header,
        "",
        "| backend | sweep | points: value → time | slope |",
        "| --- | --- | --- | --- |",
    ]
    for sweep, per_backend in scaling["sweeps"].items():
        for name, entry in per_backend.items():
            points = ", ".join(f"{x} → {format_seconds(t)}" for x, t in zip(entry["x"], entry["median_s"]))
            lines.append(f"| {name} | {sweep} | {points} | {entry['slope']:.2f} |")
    lines += ["", "Runs: " + "; ".join(f"{k}: {v}" for k, v in scaling["how"].items())]
    lines += [f"- {k} not measured: {v}" for k, v in scaling["skipped"].items()]
    return "\n".join(lines)


def plot(scaling: dict[str, Any], path: str, info: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    labels = {"batch": f"batch size B ({scaling['fixed_steps']} steps)",
              "steps": f"number of steps (B = {scaling['fixed_batch']})"}
    for ax, (sweep, per_backend) in zip(axes, scaling["sweeps"].items()):
        for name, entry in per_backend.items():
            ax.loglog(entry["x"], entry["median_s"], "o-", label=f"{name} (slope {entry['slope']:.2f})")
        xs = [x for e in per_backend.values() for x in e["x"]]
        ys = [y for e in per_backend.values() for y in e["median_s"]]
        if xs:
            lo, hi = min(xs), max(xs)
            top = max(ys)
            ax.loglog([lo, hi], [top * lo / hi, top], "k--", lw=0.8, label="slope 1 (linear)")
        ax.set_xlabel(labels[sweep])
        ax.set_ylabel("seconds per sampling run")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    threads = f", torch threads {info['torch_threads']}" if info.get("torch_threads") else ""
    fig.suptitle(f"sdeve PC sampler, (B, 3, 32, 32) float32, toy linear score — {info.get('cpu')}, "
                 f"{info.get('usable_cores')} cores{threads}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(settings: Any, plot_path: str | None, json_path: str | None) -> dict[str, Any]:
    import os

    started = time.perf_counter()
    scaling = measure(settings)
    info = machine()
    print(markdown(scaling))
    if plot_path:
        os.makedirs(os.path.dirname(plot_path) or ".", exist_ok=True)
        plot(scaling, plot_path, info)
        print(f"\nplot: {plot_path}")
    payload = {"machine": info, "elapsed_s": time.perf_counter() - started, "scaling": scaling}
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
    return payload

