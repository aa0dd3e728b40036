"""Every registered check on every backend, device and dtype: the same checks ``python -m conformance`` runs,
one test per combination, with ids like ``step_pred-torch-float32`` (``-schedule`` for the schedule checks,
which run in the backend's schedule dtype; ``--`` for dtype-free ones)."""

from __future__ import annotations

import pytest

from conformance import runner
from conformance.backends import CONFORMANCE_BACKENDS, Backend, LoadedBackend, load_backend
from conformance.registry import CHECKS, DTYPE_NAMES, Check, NotApplicable, run_check, schedule_dtype_name
from conformance.runner import Report

runner.import_checks()


def _applies(check: Check, backend: Backend) -> bool:
    """Whether ``check`` concerns ``backend`` (the ``applies`` hooks look only at the backend's name and module)."""
    if check.applies is None:
        return True
    try:
        check.applies(LoadedBackend(backend, None, None))
    except NotApplicable:
        return False
    return True


def _params() -> list:
    params = []
    for check in CHECKS.values():
        dtypes = {"each": DTYPE_NAMES, "schedule": ("schedule",), "none": ("-",)}[check.dtypes]
        for backend in CONFORMANCE_BACKENDS:
            if not _applies(check, backend):
                continue
            for dtype in dtypes:
                marks = [pytest.mark.gpu] if backend.gpu else []
                params.append(pytest.param(check, backend, dtype, id=f"{check.name}-{backend.name}-{dtype}", marks=marks))
    return params


_LOADED: dict[str, LoadedBackend] = {}


def _load(backend: Backend) -> LoadedBackend:
    if backend.name not in _LOADED:
        try:
            _LOADED[backend.name] = load_backend(backend)
        except Exception as exc:  # noqa: BLE001 - any reason a backend cannot run is a skip, with the reason
            pytest.skip(f"{backend.name}: {type(exc).__name__}: {exc}")
    return _LOADED[backend.name]


@pytest.mark.parametrize(("check", "backend", "dtype"), _params())
def test_check(check: Check, backend: Backend, dtype: str) -> None:
    loaded = _load(backend)
    with loaded.context():
        if dtype == "schedule":
            dtype = schedule_dtype_name(loaded)
        elif dtype != "-" and dtype not in loaded.dtypes():
            pytest.skip(f"{backend.name} has no {dtype} on {loaded.device_name}")
    rows = run_check(check, loaded, dtype)
    report = Report(results=rows)
    if all(r.status == "skip" for r in rows):
        pytest.skip(rows[0].detail)
    assert not report.failed, "\n" + report.table()
