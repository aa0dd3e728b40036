"""The registry of checks (scikit-learn's ``check_*`` x estimator pattern): each check is a function of one
backend and one dtype that returns measured errors; the runner crosses checks with backends, devices and dtypes
and gives each combination a readable id (``step_pred[torch-cpu-float32]``).

A check returns :class:`Measure` rows (one per operation it measures): the error, the tolerance, a detail.
A check that raises fails with the exception as its detail; a check that does not apply to a backend or
dtype says why and is reported as skipped.
"""

from __future__ import annotations

import dataclasses
import math
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Literal

from .backends import LoadedBackend
from .tolerances import dtype_name

__all__ = ["CHECKS", "DTYPE_NAMES", "Check", "Measure", "NotApplicable", "Result", "check", "combinations", "run_check"]

DTYPE_NAMES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

DtypeMode = Literal["each", "schedule", "none"]


class NotApplicable(Exception):
    """Raised by a check (or its ``applies``) when it has nothing to check here; the message says why."""


@dataclasses.dataclass(frozen=True)
class Measure:
    """One measured quantity: ``error <= tol`` passes. ``case`` names the worst case when several were run."""

    operation: str
    error: float
    tol: float
    case: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        return math.isfinite(self.error) and self.error <= self.tol

    @property
    def ratio(self) -> float:
        return self.error / self.tol if self.tol > 0 else (0.0 if self.error == 0 else math.inf)


def worst(operation: str, measures: list[Measure]) -> Measure:
    """The measure with the largest error/tolerance ratio among ``measures`` (all of ``operation``)."""
    if not measures:
        raise NotApplicable(f"no case of {operation} was representable")
    return dataclasses.replace(max(measures, key=lambda m: (not m.passed, m.ratio)), operation=operation)


@dataclasses.dataclass(frozen=True)
class Check:
    """A registered check: ``func(backend, dtype_name, dtype) -> list[Measure]``.

    ``dtypes``: ``"each"`` runs once per dtype of the backend; ``"schedule"`` once, in the dtype the backend
    holds schedules in (float64, or float32 without float64); ``"none"`` once, dtype-free.
    ``applies(backend)`` raises :class:`NotApplicable` when the check has nothing to say about a backend.
    """

    name: str
    func: Callable[[LoadedBackend, str, Any], list[Measure]]
    dtypes: DtypeMode = "each"
    applies: Callable[[LoadedBackend], None] | None = None
    doc: str = ""


CHECKS: dict[str, Check] = {}


def check(name: str, *, dtypes: DtypeMode = "each", applies: Callable[[LoadedBackend], None] | None = None) -> Callable[..., Any]:
    """Register ``func`` as the check ``name``."""

    def register(func: Callable[[LoadedBackend, str, Any], list[Measure]]) -> Callable[[LoadedBackend, str, Any], list[Measure]]:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = Check(name, func, dtypes, applies, (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else "")
        return func

    return register


@dataclasses.dataclass(frozen=True)
class Result:
    """One row of the table."""

    backend: str
    device: str
    dtype: str
    check: str
    operation: str
    error: float | None
    tol: float | None
    status: Literal["pass", "FAIL", "skip"]
    case: str = ""
    detail: str = ""

    @property
    def id(self) -> str:
        return f"{self.operation}[{self.backend}-{self.device}-{self.dtype}]"

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("error", "tol"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = str(out[key])
        return out


def schedule_dtype_name(backend: LoadedBackend) -> str:
    """``float64`` where the backend has it on its device, else ``float32``."""
    return "float64" if "float64" in backend.dtypes() else "float32"


def dtypes_for(check_: Check, backend: LoadedBackend, wanted: tuple[str, ...] | None) -> list[str]:
    """The dtype names ``check_`` runs on for ``backend`` (within ``wanted`` when given); ``"-"`` for dtype-free."""
    if check_.dtypes == "none":
        return ["-"]
    with backend.context():
        names = [schedule_dtype_name(backend)] if check_.dtypes == "schedule" else list(backend.dtypes())
    return [n for n in names if wanted is None or n in wanted]


def combinations(checks: list[Check], backend: LoadedBackend, wanted: tuple[str, ...] | None) -> Iterator[tuple[Check, str]]:
    """Every ``(check, dtype name)`` to run on ``backend``."""
    for check_ in checks:
        for name in dtypes_for(check_, backend, wanted):
            yield check_, name


def run_check(check_: Check, backend: LoadedBackend, dtype_label: str) -> list[Result]:
    """Run one check on one backend and dtype; never raises: failures and skips become rows."""

    def row(operation: str, error: float | None, tol: float | None, status: Any, case: str = "", detail: str = "") -> Result:
        return Result(backend.name, backend.device_name, dtype_label, check_.name, operation, error, tol, status, case, detail)

    try:
        with backend.context():
            if check_.applies is not None:
                check_.applies(backend)
            dtype = None if dtype_label == "-" else backend.dtypes()[dtype_label]
            measures = check_.func(backend, dtype_label, dtype)
    except NotApplicable as exc:
        return [row(check_.name, None, None, "skip", detail=str(exc))]
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a failure, reported with where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
        return [row(check_.name, math.inf, None, "FAIL", detail=detail)]
    return [row(m.operation, m.error, m.tol, "pass" if m.passed else "FAIL", m.case, m.detail) for m in measures]


def dtype_label(dtype: Any) -> str:
    """The table's name for ``dtype``."""
    return dtype_name(dtype)
