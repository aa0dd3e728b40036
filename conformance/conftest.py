"""pytest configuration for ``pytest conformance``: the shared Hypothesis profiles, and helpers that turn the
registry's combinations into parameters with readable ids."""

from __future__ import annotations

from conformance import profiles

profiles.load()  # "ci" (derandomized, bounded) unless HYPOTHESIS_PROFILE says "dev"
