"""Conformance suite: every backend against a NumPy float64 reference. Run ``python -m conformance``."""
