"""Dask's distributed engine (issue 12): ``sdeve.sample(..., xp="dask")`` on a ``LocalCluster`` of worker
processes, with the peak memory of every worker, the client's, and the bytes that reached the client.

``python -m benchmarks.dask_distributed [--points 1000000 10000000] [--steps 10] [--workers 2] [--chunk-mib 16]``

One cluster per batch size, so that each worker's peak resident set (``getrusage``'s ``ru_maxrss`` in the
worker process, read with ``client.run``) belongs to that run alone; ``baseline`` is the same figure after
the cluster started and imported the sampler. Workers run without a memory limit (``memory_limit=0``), so
nothing is spilled to disk and the peak is what the run needs. The model is the mixture oracle of
``python -m sdeve`` (its score makes ``(chunk, components)`` temporaries); the quality figures come from the
first ``--report-points`` samples only, the one part of the batch brought to the client before the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from typing import Any

import dask
import dask.array as da
import distributed
import numpy as np

import sdeve
from sdeve.oracles import ring


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _warm_up(scheduler: Any) -> None:
    """Import the sampler and Dask's array code on every worker before the baseline is read."""
    sdeve.sample(ring(), (64, 2), scheduler=scheduler, num_inference_steps=2, xp="dask", generator=0).compute()


class _GatherLog:
    """Sizes of everything that reaches the client (``compute``, ``gather``, ``Future.result``)."""

    def __init__(self, client: distributed.Client) -> None:
        self.bytes = 0
        original = client._gather

        async def gather(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            self.bytes += dask.sizeof.sizeof(result)
            return result

        client._gather = gather


def run(points: int, steps: int, workers: int, chunk_mib: int, report_points: int, seed: int) -> dict[str, Any]:
    mixture = ring()
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", memory_limit=0) as cluster, \
            distributed.Client(cluster) as client, dask.config.set({"array.chunk-size": f"{chunk_mib}MiB"}):
        _warm_up(scheduler)
        baseline = client.run(_rss_mib)
        client_baseline = _rss_mib()
        log = _GatherLog(client)
        start = time.perf_counter()
        out = sdeve.sample(mixture, (points, 2), scheduler=scheduler, num_inference_steps=steps, xp="dask",
                           generator=da.random.default_rng(seed), dtype="float32")
        distributed.wait(distributed.futures_of(out))
        seconds = time.perf_counter() - start
        gathered_during_run = log.bytes
        chunks = [int(c) for c in out.chunks[0]]
        head = np.asarray(out[:report_points].compute())
        peak = client.run(_rss_mib)
        client_peak = _rss_mib()
    batch_mib = points * 2 * 4 / 2**20
    report = mixture.report(head)
    return {
        "points": points, "steps": steps, "workers": workers, "chunks": len(chunks), "chunk_points": chunks[0],
        "seconds": seconds, "batch_mib": batch_mib,
        "worker_peak_rss_mib": sorted(peak.values()),
        "worker_baseline_rss_mib": sorted(baseline.values()),
        "worker_peak_over_baseline_mib": sorted(peak[w] - baseline[w] for w in peak),
        "client_rss_growth_mib": client_peak - client_baseline,
        "bytes_to_client_during_run": gathered_during_run,
        f"quality_first_{report_points}": report.as_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_distributed",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-mib", type=int, default=16)
    parser.add_argument("--report-points", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = [run(n, args.steps, args.workers, args.chunk_mib, args.report_points, args.seed)
               for n in args.points]
    text = json.dumps({"cpus": os.cpu_count(), "runs": results}, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
