"""``python -m benchmarks``: run the groups, print the markdown tables, optionally write JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from ._kits import backend_names
from ._report import markdown
from ._timing import machine
from .suites import GROUPS, Result, Settings

OPS = ("step_pred", "step_correct", "construct", "pc_loop", "kernels", "host_sync", "transfer_guard", "cuda_graph")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke mode: small sizes, few repeats (< 60 s)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    p.add_argument("--backends", type=_csv, help=f"comma-separated subset of: {', '.join(backend_names())}")
    p.add_argument("--ops", type=_csv, help=f"comma-separated subset of: {', '.join(OPS)}")
    p.add_argument("--groups", type=_csv, help=f"comma-separated subset of: {', '.join(GROUPS)}")
    p.add_argument("--brief", action="store_true", help="print only the ratios that have a target (the JSON has all)")
    p.add_argument("--repeats", type=int, help="rounds of interleaved samples (default 11; quick 3)")
    p.add_argument("--min-sample", type=float, dest="min_sample_s", help="seconds a sample lasts at least")
    p.add_argument("--torch-threads", type=int, metavar="N",
                   help="torch.set_num_threads(N) first (on a loaded machine torch's thread pool can stall badly)")
    p.add_argument("--scaling", action="store_true",
                   help="instead: time against batch size and steps, print the table, write the plot")
    p.add_argument("--plot", metavar="PATH", help="with --scaling or --quality: where the plot goes "
                   "(default docs/scaling.png, docs/quality.png)")
    p.add_argument("--quality", action="store_true",
                   help="instead: sample quality against model evaluations, sdeve's samplers and k-diffusion's "
                        "(needs the bench extra), print the table, write the plot")
    return p


def _check_names(given: tuple[str, ...] | None, known: Sequence[str], what: str) -> None:
    unknown = sorted(set(given or ()) - set(known))
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    _check_names(args.backends, backend_names(), "backends")
    _check_names(args.ops, OPS, "ops")
    _check_names(args.groups, list(GROUPS), "groups")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    settings = Settings.make(args.quick, repeats=args.repeats, min_sample_s=args.min_sample_s,
                             backends=args.backends, ops=args.ops)
    if args.scaling:
        from . import scaling

        return scaling.main(settings, args.plot or "docs/scaling.png", args.json)
    if args.quality:
        from . import quality

        chosen = quality.QualitySettings.quick() if args.quick else quality.QualitySettings()
        return quality.main(chosen, args.plot or "docs/quality.png", args.json)
    started = time.perf_counter()
    result = Result()
    for name, group in GROUPS.items():
        if args.groups is None or name in args.groups:
            t0 = time.perf_counter()
            result.extend(group(settings))
            print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
    info = machine()
    payload = {
        "machine": info,
        "settings": {"quick": settings.quick, "repeats": settings.repeats, "warmup": settings.warmup,
                     "min_sample_s": settings.min_sample_s, "large": list(settings.large),
                     "large_gpu": list(settings.large_gpu)},
        "elapsed_s": time.perf_counter() - started,
        "rows": [r.as_dict() for r in result.rows],
        "checks": [c.as_dict() for c in result.checks],
        "skipped": [s.as_dict() for s in result.skips],
    }
    print(markdown(result.rows, result.checks, result.skips, info, brief=args.brief))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
    return payload


if __name__ == "__main__":
    main()
