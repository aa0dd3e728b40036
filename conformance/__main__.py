"""``python -m conformance`` (from a checkout) or ``python -m sdeve_conformance`` (installed): every check on
every importable backend, device and dtype; a table and a one-line summary per backend.

Exit status: 0 when every row passed, 1 when a row failed, 2 for bad arguments, 3 when the selection
checked nothing (every backend selected was skipped, no backend matched, or no check applied): a run that
checks nothing is not a pass.

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
from .runner import Report, import_checks, run

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_CHECKED = 0, 1, 2, 3


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _prog() -> str:
    return f"python -m {__package__ or 'conformance'}"


def nothing_checked(report: Report, args: argparse.Namespace) -> str | None:
    """Why the run checked nothing (no row passed or failed), or ``None`` when something was checked."""
    if any(r.status in ("pass", "FAIL") for r in report.results):
        return None
    asked = ", ".join(
        f"--{name} {value}" for name, value in (("backends", args.backends), ("device", args.device),
                                               ("dtypes", args.dtypes), ("checks", args.checks)) if value
    ) or "the default selection"
    if report.skipped:
        reasons = "; ".join(f"{name}: {why}" for name, why in report.skipped.items())
        return f"every backend selected by {asked} was skipped ({reasons})"
    if not report.seconds:  # the runner times every backend it loaded
        return f"no backend matches {asked}"
    return f"no check applies to {asked} ({len(report.results)} combinations not applicable)"


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return the exit status (0: all passed, 1: a failure, 2: bad arguments, 3: nothing was
    checked)."""
    import_checks()
    parser = argparse.ArgumentParser(
        prog=_prog(), description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Exit status: 0 all passed, 1 a failure, 2 bad arguments, 3 nothing was checked.",
    )
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
    empty = nothing_checked(report, args)
    if empty is not None:
        print(f"NOTHING WAS CHECKED: {empty}. This is not a pass (exit status {EXIT_NOTHING_CHECKED}).",
              file=sys.stderr)
        return EXIT_NOTHING_CHECKED
    return EXIT_FAILED if failed else EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
