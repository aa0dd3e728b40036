"""``sdeve.sample(..., xp="dask")`` on Dask's distributed engine (issue 12, "beyond one machine"): a
``LocalCluster`` of two worker processes on loopback. The run stays on the workers (nothing the size of the
batch reaches the client before it asks for the result), gives the numbers of the local threaded scheduler
bit for bit from the same seed, and survives a worker killed in the middle of it.

The model is a linear score, so that a step is a few tasks per chunk and the module runs in seconds; the
mixture oracle on a cluster is measured by ``benchmarks/dask_distributed.py``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import sdeve

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
dask_distributed = pytest.importorskip("benchmarks.dask_distributed")

POINTS, STEPS, CHUNK = 4000, 4, "8KiB"  # 4 chunks of 1000 points (float32, 2 values each)


def _score(x: Any, sigma: Any) -> Any:
    """The exact score of N(0, I) data at noise level sigma, for Dask arrays."""
    return -x / (1.0 + da.reshape(sigma, (-1, 1)) ** 2)


def _sample(callback: Any = None) -> Any:
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)
    with dask.config.set({"array.chunk-size": CHUNK}):
        return sdeve.sample(_score, (POINTS, 2), scheduler=scheduler, num_inference_steps=STEPS, xp="dask",
                            generator=da.random.default_rng(7), dtype="float32", callback=callback)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture(scope="module")
def local() -> np.ndarray:
    """The same run on the local threaded scheduler."""
    with dask.config.set(scheduler="threads"):
        return np.asarray(_sample().compute())


class _GatherLog:
    """Wraps ``client._gather`` (what ``compute``, ``gather`` and ``Future.result`` go through) and records
    the size of everything that reaches the client."""

    def __init__(self, client: Any) -> None:
        self.sizes: list[int] = []
        self._client, self._gather = client, client._gather

        async def gather(*args: Any, **kwargs: Any) -> Any:
            result = await self._gather(*args, **kwargs)
            self.sizes.append(dask.sizeof.sizeof(result))
            return result

        client._gather = gather

    def close(self) -> None:
        self._client._gather = self._gather


def test_the_run_stays_on_the_workers_and_matches_the_local_scheduler(client: Any, local: np.ndarray) -> None:
    log = _GatherLog(client)
    try:
        with client.as_current():
            out = _sample()
            futures = distributed.futures_of(out)
            distributed.wait(futures)
            assert sum(log.sizes) < 1024, log.sizes  # nothing like the batch (32 KB) came to the client
            holders = client.who_has(futures)
            assert len(holders) == len(out.chunks[0]) and all(holders.values())  # every chunk on a worker
            result = out.compute()
    finally:
        log.close()
    assert sum(log.sizes) >= POINTS * 2 * 4  # the result, at the end
    np.testing.assert_array_equal(np.asarray(result), local)


def test_a_worker_killed_in_the_middle_of_a_run_costs_nothing_but_time(
    client: Any, local: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    killed: list[str] = []

    def kill_a_holder(info: dict[str, Any]) -> None:
        if info["i"] != STEPS // 2:
            return
        futures = distributed.futures_of(info["sample"])
        distributed.wait(futures)  # the step is in worker memory: killing its holder loses computed chunks
        address = sorted({a for holders in client.who_has(futures).values() for a in holders})[0]
        pid = client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)
        killed.append(address)

    with client.as_current(), caplog.at_level("WARNING", logger="distributed.scheduler"):
        result = _sample(callback=kill_a_holder).compute()
    assert killed and killed[0] not in client.scheduler_info()["workers"]
    assert "lose already computed task(s), which will be recomputed" in caplog.text
    np.testing.assert_array_equal(np.asarray(result), local)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it; leave the cluster as found


def _slow_score(x: Any, sigma: Any) -> Any:
    """:func:`_score` taking 0.1 s a chunk on the workers: a cluster slower than the client's loop."""
    return da.map_blocks(lambda block: (time.sleep(0.1), block)[1], _score(x, sigma), dtype=x.dtype)


def test_the_loop_keeps_at_most_two_steps_in_flight(client: Any) -> None:
    submitted: list[list[Any]] = []
    behind: list[int] = []

    def check(info: dict[str, Any]) -> None:
        submitted.append(distributed.futures_of(info["sample"]))
        if len(submitted) > 2 and not all(f.done() for f in submitted[-3]):
            behind.append(info["i"])

    scheduler = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)
    with client.as_current(), dask.config.set({"array.chunk-size": CHUNK}):
        out = sdeve.sample(_slow_score, (POINTS, 2), scheduler=scheduler, num_inference_steps=STEPS, xp="dask",
                           generator=da.random.default_rng(7), dtype="float32", callback=check)
        distributed.wait(distributed.futures_of(out))
    assert behind == [], f"steps submitted while the step two before was still running: {behind}"


def test_the_memory_benchmark_runs() -> None:
    """``benchmarks/dask_distributed.py`` at toy size: its own cluster, the figures it reports."""
    result = dask_distributed.run(points=2000, steps=2, workers=1, chunk_mib=1, report_points=500, seed=0)
    assert result["bytes_to_client_during_run"] == 0
    assert len(result["worker_peak_rss_mib"]) == 1 and result["worker_peak_rss_mib"][0] > 0
    assert set(result["quality_first_500"]) == {"weight_error", "mean_error", "std_error", "log_likelihood"}
