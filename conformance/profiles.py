"""The Hypothesis profiles, registered in one place for the tests (``tests/conftest.py`` calls :func:`load`).

- ``ci`` (the default): derandomized (the same examples every run, so CI is reproducible), 30 examples per
  test, no deadline (JAX compiles on first use), the failing example printed with its reproduction blob.
- ``dev``: random, 300 examples per test, for local runs: ``HYPOTHESIS_PROFILE=dev pytest tests/conformance``.

A failure shrinks to a minimal example, which pytest's report shows (``Falsifying example: ...``).
"""

from __future__ import annotations

import os

__all__ = ["PROFILES", "load"]

PROFILES = {"ci": {"max_examples": 30, "derandomize": True}, "dev": {"max_examples": 300}}


def load(default: str = "ci") -> str | None:
    """Register both profiles and load ``$HYPOTHESIS_PROFILE`` (else ``default``); the loaded name, or
    ``None`` without Hypothesis installed."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # pragma: no cover - Hypothesis is a test dependency
        return None
    common = {
        "deadline": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.differing_executors],
    }
    for name, options in PROFILES.items():
        settings.register_profile(name, **common, **options)
    name = os.environ.get("HYPOTHESIS_PROFILE", default)
    settings.load_profile(name)
    return name
