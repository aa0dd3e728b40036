"""Dask at scale (issue 5): a 2-D batch of 10^7 points sampled in chunks, with the peak memory and the
oracle's quality figures against a NumPy run of the same sampler on 10^5 points.

``python -m benchmarks.dask_scale [--points 10000000] [--steps 200] [--chunk-mib 16]``

The sampler persists each timestep's result (``sdeve_backends.dask.DaskAdapter.settle``), so a step's graph is
small and memory is a few copies of the batch, independent of the number of steps. The chunk size is Dask's
own ``array.chunk-size`` setting. The peak resident set is read from ``getrusage`` (``ru_maxrss``) and reported
with the batch's size, so the ratio ``(peak - baseline) / batch bytes`` says how many batch-sized arrays were
alive at once.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run(points: int, steps: int, chunk_mib: int, reference_points: int, seed: int) -> dict[str, Any]:
    import dask
    import dask.array as da

    import sdeve
    from sdeve.oracles import ring

    mixture = ring()
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)
    baseline = _rss_mib()
    with dask.config.set({"array.chunk-size": f"{chunk_mib}MiB"}):
        start = time.perf_counter()
        out = sdeve.sample(mixture, (points, 2), scheduler=scheduler, num_inference_steps=steps, xp="dask",
                           generator=da.random.default_rng(seed), dtype="float32")
        chunks = out.chunks
        result = out.compute()
        seconds = time.perf_counter() - start
    peak = _rss_mib()
    report = mixture.report(result)
    reference = sdeve.sample(mixture, (reference_points, 2), scheduler=scheduler, num_inference_steps=steps,
                             generator=np.random.default_rng(seed), dtype="float32")
    reference_report = mixture.report(reference)
    batch_mib = points * 2 * 4 / 2**20

    def figures(r: Any) -> dict[str, float]:
        return {"weight_error": r.weight_error, "mean_error": r.mean_error, "std_error": r.std_error,
                "log_likelihood": r.log_likelihood}

    return {
        "points": points, "steps": steps, "chunks": len(chunks[0]), "chunk_points": int(chunks[0][0]),
        "seconds": seconds, "batch_mib": batch_mib, "baseline_rss_mib": baseline, "peak_rss_mib": peak,
        "batches_alive_at_peak": (peak - baseline) / batch_mib,
        "dask": figures(report), f"numpy_{reference_points}": figures(reference_report),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--chunk-mib", type=int, default=16)
    parser.add_argument("--reference-points", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = run(args.points, args.steps, args.chunk_mib, args.reference_points, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
