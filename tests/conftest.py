"""Backend x device fixtures with readable ids; GPU backends are marked ``gpu`` and skip without a GPU."""

from __future__ import annotations

import os

import pytest

from conformance.backends import BACKENDS, LoadedBackend, load_backend

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=30, derandomize=True, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


def _params() -> list:
    return [pytest.param(b, id=b.id, marks=[pytest.mark.gpu] if b.gpu else []) for b in BACKENDS]


@pytest.fixture(params=_params())
def backend(request: pytest.FixtureRequest) -> LoadedBackend:
    """Every backend: importable ones load, others skip with the reason."""
    try:
        return load_backend(request.param)
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"{request.param.id}: {exc}")
