"""``python -m conformance``: every check on every importable backend, device and dtype; a table and a
one-line summary per backend; exit status 1 on any failure.

Examples::

    python -m conformance
    python -m conformance --backends numpy,torch --dtypes float32,float64
    python -m conformance --device gpu --json conformance.json
"""

from __future__ import annotations

import argparse
import sys
import time

from .backends import CONFORMANCE_BACKENDS
from .registry import CHECKS, DTYPE_NAMES
from .runner import import_checks, run


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return the exit status (0: all passed, 1: a failure, 2: bad arguments)."""
    import_checks()
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--backends", help=f"comma-separated, from {', '.join(b.name for b in CONFORMANCE_BACKENDS)} (default: all)")
    parser.add_argument("--dtypes", help=f"comma-separated, from {', '.join(DTYPE_NAMES)} (default: all each backend has)")
    parser.add_argument("--device", choices=("cpu", "gpu"), help="only the backends on this device (default: both)")
    parser.add_argument("--checks", help=f"comma-separated, from {', '.join(CHECKS)} (default: all)")
    parser.add_argument("--json", metavar="PATH", help="also write the table and summaries as JSON to PATH")
    parser.add_argument("--failures-only", action="store_true", help="print only the rows that failed")
    args = parser.parse_args(argv)
    dtypes = _names(args.dtypes)
    for name in dtypes or ():
        if name not in DTYPE_NAMES:
            parser.error(f"unknown dtype {name!r}; expected some of {', '.join(DTYPE_NAMES)}")
    checks = _names(args.checks)
    for name in checks or ():
        if name not in CHECKS:
            parser.error(f"unknown check {name!r}; expected some of {', '.join(CHECKS)}")
    start = time.perf_counter()
    try:
        report = run(backends=_names(args.backends), dtypes=dtypes, device=args.device, checks=checks)
    except ValueError as exc:
        parser.error(str(exc))
    if args.failures_only:
        report_rows = report.results
        report.results = report.failed
        print(report.table())
        report.results = report_rows
    else:
        print(report.table())
    print()
    for name in report.backend_names():
        print(report.summary(name))
    failed = len(report.failed)
    print(f"\n{len(report.results)} rows, {failed} failed, {len(report.skipped)} backends skipped, "
          f"{time.perf_counter() - start:.0f} s")
    if args.json:
        report.write_json(args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
