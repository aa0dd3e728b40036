"""``python -m benchmarks.profile``: where the time of one torch drop-in step goes at a small size, against
diffusers' ``ScoreSdeVeScheduler`` (the same inputs and generator seeds).

For each of ``step_pred`` and ``step_correct`` it prints

1. ``cProfile`` of ``--calls`` calls: the functions with the most own time (Python overhead shows here);
2. ``torch.profiler``: the aten operators one call runs (count and CPU time), the kernels it would launch;
3. a split of one call: drawing the noise alone, the update alone (``noise=`` given), and the whole step,
   timed interleaved.

Options: ``--shape 1,3,32,32`` (default), ``--calls 2000``, ``--top 25``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ._report import format_seconds
from ._timing import Case, interleaved

__all__ = ["main"]


def _subjects(shape: tuple[int, ...]) -> dict[str, dict[str, Callable[[], Any]]]:
    import torch
    from diffusers import ScoreSdeVeScheduler as Diffusers

    from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn
    from sdeve_backends.torch import randn

    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    m = -x / 2
    z = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    ours, theirs = DropIn(), Diffusers()
    for s in (ours, theirs):
        s.set_timesteps(100)
        s.set_sigmas(100)
    g_ours, g_theirs, g_draw = (torch.Generator().manual_seed(0) for _ in range(3))
    t_ours, t_theirs = ours.timesteps[10], theirs.timesteps[10]
    return {
        "step_pred": {
            "ours": lambda: ours.step_pred(m, t_ours, x, generator=g_ours),
            "diffusers": lambda: theirs.step_pred(m, t_theirs, x, generator=g_theirs),
            "ours: update only (noise=)": lambda: ours.step_pred(m, t_ours, x, noise=z),
            "draw only (randn)": lambda: randn(shape, g_draw, device=x.device, dtype=x.dtype),
        },
        "step_correct": {
            "ours": lambda: ours.step_correct(m, x, generator=g_ours),
            "diffusers": lambda: theirs.step_correct(m, x, generator=g_theirs),
            "ours: update only (noise=)": lambda: ours.step_correct(m, x, noise=z),
            "draw only (randn)": lambda: randn(shape, g_draw, device=x.device, dtype=x.dtype),
        },
    }


def _cprofile(fn: Callable[[], Any], calls: int, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    # Keep from the column header on; shorten paths.
    start = text.find("   ncalls")
    return text[start:].replace(str(__import__("os").getcwd()) + "/", "") if start >= 0 else text


def _aten(fn: Callable[[], Any]) -> tuple[int, str]:
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top_level = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    counts = Counter(e.name for e in top_level)
    listing = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.most_common())
    return len(top_level), listing


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=(__doc__ or "").strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="1,3,32,32")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    shape = tuple(int(s) for s in args.shape.split(","))
    for op, fns in _subjects(shape).items():
        print(f"\n{'=' * 100}\n{op} at {shape}\n{'=' * 100}")
        times = interleaved({k: Case(f) for k, f in fns.items()}, repeats=9, min_sample_s=0.02)
        print("\nper call (medians of 9 interleaved samples):")
        for name, timing in times.items():
            print(f"  {name:32s} {format_seconds(timing.median)}")
        for name in ("ours", "diffusers"):
            count, listing = _aten(fns[name])
            print(f"\n{name}: {count} top-level aten ops per call: {listing}")
        for name in ("ours", "diffusers"):
            print(f"\n--- cProfile, {name}, {args.calls} calls, by own time\n")
            print(_cprofile(fns[name], args.calls, args.top))


if __name__ == "__main__":
    main()
