"""Backend x device fixtures with readable ids; GPU backends are marked ``gpu`` and skip without a GPU."""

from __future__ import annotations

import pytest

from conformance import profiles
from conformance.backends import BACKENDS, LoadedBackend, load_backend

profiles.load()  # the Hypothesis profiles "ci" (default) and "dev", shared with conformance/


def _params() -> list:
    return [pytest.param(b, id=b.id, marks=[pytest.mark.gpu] if b.gpu else []) for b in BACKENDS]


@pytest.fixture(params=_params())
def backend(request: pytest.FixtureRequest) -> LoadedBackend:
    """Every backend: importable ones load, others skip with the reason."""
    try:
        return load_backend(request.param)
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"{request.param.id}: {exc}")
