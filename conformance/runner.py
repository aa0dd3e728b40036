"""Run the registered checks over backends, devices and dtypes; format the table and the summaries."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from .backends import CONFORMANCE_BACKENDS, Backend, LoadedBackend, load_backend
from .registry import CHECKS, Check, Result, combinations, run_check

__all__ = ["Report", "import_checks", "load_all", "run", "select_backends"]


def import_checks() -> None:
    """Import the modules that register checks (idempotent)."""
    from . import checks, checks_frontends, checks_noise, checks_pc, checks_sigma  # noqa: F401 - they register checks


@dataclasses.dataclass
class Report:
    """The rows of a run, the backends skipped (with reasons) and the time each backend took."""

    results: list[Result] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == "FAIL"]

    def summary(self, backend: str) -> str:
        """One line: passes, failures, skips, worst error/tolerance ratio and time."""
        if backend in self.skipped:
            return f"{backend}: skipped ({self.skipped[backend]})"
        rows = [r for r in self.results if r.backend == backend]
        counts = {s: sum(r.status == s for r in rows) for s in ("pass", "FAIL", "skip")}
        # The worst numerical row (the noise rows are statistics, with their own pass/fail).
        ratios = [
            (r.error / r.tol, r.operation, r.dtype)
            for r in rows
            if r.error is not None and r.tol and math.isfinite(r.error) and not r.operation.startswith("noise.")
        ]
        worst, worst_op, worst_dtype = max(ratios, default=(0.0, "-", "-"))
        dtypes = sorted({r.dtype for r in rows if r.dtype != "-"})
        verdict = "FAIL" if counts["FAIL"] else ("PASS" if counts["pass"] else "NOTHING CHECKED")
        return (
            f"{backend} ({rows[0].device if rows else '?'}; {', '.join(dtypes)}): {verdict}: {counts['pass']} passed, "
            f"{counts['FAIL']} failed, {counts['skip']} not applicable; worst value error/tolerance {worst:.2f} "
            f"({worst_op}, {worst_dtype}); "
            f"{self.seconds.get(backend, 0.0):.1f} s"
        )

    def table(self, *, skipped: bool = False) -> str:
        """The table: backend x device x dtype x operation -> error, tolerance, status (checks that do not
        apply to a backend only with ``skipped``)."""
        header = ("backend", "device", "dtype", "operation", "max rel err", "tolerance", "status", "worst case / detail")
        lines = [header]
        for r in self.results:
            if r.status == "skip" and not skipped:
                continue
            err = "-" if r.error is None else f"{r.error:.2e}"
            tol = "-" if r.tol is None else f"{r.tol:.2e}"
            note = r.case if not r.detail else (f"{r.case}: {r.detail}" if r.case else r.detail)
            lines.append((r.backend, r.device, r.dtype, r.operation, err, tol, r.status, note))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
        out = []
        for k, line in enumerate(lines):
            out.append("  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1])
            if k == 0:
                out.append("  ".join("-" * w for w in widths) + "  " + "-" * 20)
        return "\n".join(out)

    def as_json(self) -> dict[str, Any]:
        return {
            "results": [r.as_dict() for r in self.results],
            "skipped": self.skipped,
            "summary": {b: self.summary(b) for b in self.backend_names()},
            "failed": len(self.failed),
            "seconds": self.seconds,
        }

    def backend_names(self) -> list[str]:
        names = list(dict.fromkeys([*(r.backend for r in self.results), *self.skipped]))
        return names

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.as_json(), handle, indent=1)
            handle.write("\n")


def select_backends(names: Iterable[str] | None = None, device: str | None = None) -> list[Backend]:
    """The backends named (all when ``None``), restricted to ``device`` (``cpu``/``gpu``) when given."""
    chosen = list(CONFORMANCE_BACKENDS)
    if names is not None:
        wanted = list(names)
        unknown = [n for n in wanted if n not in {b.name for b in chosen}]
        if unknown:
            raise ValueError(f"unknown backends {unknown}; expected some of {[b.name for b in chosen]}")
        chosen = [b for b in chosen if b.name in wanted]
    if device is not None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        chosen = [b for b in chosen if b.gpu == (device == "gpu")]
    return chosen


def load_all(backends: list[Backend]) -> tuple[list[LoadedBackend], dict[str, str]]:
    """Load each backend, or record why it cannot run."""
    loaded, skipped = [], {}
    for backend in backends:
        try:
            loaded.append(load_backend(backend))
        except Exception as exc:  # noqa: BLE001 - ImportError, no device, a broken install: say why and go on
            skipped[backend.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return loaded, skipped


def run(
    backends: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    device: str | None = None,
    checks: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Run the checks (all, or those named) on the backends and dtypes selected."""
    import_checks()
    selected: list[Check] = list(CHECKS.values()) if checks is None else [CHECKS[name] for name in checks]
    wanted = None if dtypes is None else tuple(dtypes)
    loaded, skipped = load_all(select_backends(backends, device))
    report = Report(skipped=skipped)
    for backend in loaded:
        start = time.perf_counter()
        for check_, dtype_label in combinations(selected, backend, wanted):
            rows = run_check(check_, backend, dtype_label)
            report.results.extend(rows)
            if progress is not None:
                for row in rows:
                    progress(f"{row.status:4} {row.id}")
        report.seconds[backend.name] = time.perf_counter() - start
    return report
