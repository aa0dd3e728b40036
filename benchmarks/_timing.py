"""Interleaved timing and the machine description.

Every comparison is timed by :func:`interleaved`: the cases of one comparison (ours, the reference, the
floor's parts) are warmed up, calibrated to a number of calls per sample, then sampled round-robin (the order
rotated every round, so that no case always runs first after a pause), with the garbage collector off. A sample
is the mean time of ``number`` calls; the reported time is the median of the samples, and a ratio is the median
over rounds of the ratio within a round, so that load that drifts between rounds cancels.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Case", "Timing", "interleaved", "machine", "median_ratio"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One thing to time: ``fn()`` does the work; ``sync(result)`` waits until the work is done (device
    synchronisation, ``block_until_ready``); ``sync_end()`` runs once after the ``number`` calls of a sample."""

    fn: Callable[[], Any]
    sync: Callable[[Any], Any] | None = None
    sync_end: Callable[[], Any] | None = None


@dataclasses.dataclass
class Timing:
    """Samples of one case, in seconds per call."""

    samples: list[float]
    number: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": self.min, "samples": len(self.samples), "number": self.number}


def _sample(case: Case, number: int) -> float:
    fn, sync = case.fn, case.sync
    start = time.perf_counter()
    for _ in range(number):
        out = fn()
        if sync is not None:
            sync(out)
    if case.sync_end is not None:
        case.sync_end()
    elapsed = time.perf_counter() - start
    del out
    return elapsed / number


def interleaved(
    cases: Mapping[str, Case], *, repeats: int, warmup: int = 2, min_sample_s: float = 0.01, max_number: int = 10_000
) -> dict[str, Timing]:
    """Time ``cases`` side by side: ``warmup`` calls each, then ``repeats`` rounds, each case once per round
    in an order rotated every round. ``number`` (calls per sample) is chosen per case so that a sample lasts
    about ``min_sample_s``."""
    names = list(cases)
    for name in names:
        for _ in range(warmup):
            _sample(cases[name], 1)
    numbers = {}
    for name in names:
        if min_sample_s <= 0:  # one call per sample: no calibration call
            numbers[name] = 1
            continue
        one = max(_sample(cases[name], 1), 1e-7)
        numbers[name] = int(min(max_number, max(1, math.ceil(min_sample_s / one))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_sample(cases[name], numbers[name]))
    finally:
        if enabled:
            gc.enable()
    return {name: Timing(samples[name], numbers[name]) for name in names}


def median_ratio(timings: Mapping[str, Timing], numerator: list[str], denominator: list[str]) -> float:
    """Median over rounds of ``sum(numerator times) / sum(denominator times)`` within each round."""
    rounds = len(next(iter(timings.values())).samples)
    ratios = []
    for r in range(rounds):
        top = sum(timings[n].samples[r] for n in numerator)
        bottom = sum(timings[n].samples[r] for n in denominator)
        ratios.append(top / bottom)
    return statistics.median(ratios)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - absent or broken: not installed as far as we are concerned
        return None
    return str(getattr(mod, "__version__", "?"))


def _gpu() -> str | None:
    import sys

    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    if "jax" in sys.modules:
        try:
            devices = sys.modules["jax"].devices("gpu")
            return str(devices[0].device_kind) if devices else None
        except RuntimeError:
            return None
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, load, GPU, library versions, commit."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    libs = {name: _version(name) for name in
            ("sdeve", "numpy", "torch", "jax", "jaxlib", "dask", "cupy", "array_api_strict", "diffusers")}
    torch_threads = None
    if libs["torch"] is not None:
        import torch

        torch_threads = torch.get_num_threads()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "gpu": _gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch_threads,
        "libraries": {k: v for k, v in libs.items() if v is not None},
        "commit": _git_commit(),
    }
