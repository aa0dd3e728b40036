"""Conformance suite: every backend against a NumPy float64 reference. Run ``python -m conformance`` from a
checkout, or ``python -m sdeve_conformance`` where the wheel is installed (a table, a summary per backend, exit
1 on any failure, 3 when nothing was checked), or ``pytest tests/conformance`` (the same checks as tests, plus
Hypothesis property tests and self-tests that each check can fail).

Modules
-------
backends      the backends (namespace x device; ``jax:x64`` runs JAX in 64-bit mode) and their loading
reference     REFERENCE.md's formulas in plain NumPy float64, written without sdeve's core
mp            the reference against a 50-digit mpmath evaluation
tolerances    the one tolerance table (from each dtype's epsilon, with every widening explained)
cases         the fixed configs, shapes and data the value checks run on
registry      the check registry and the row type of the table
checks        values: schedule, step_pred, step_correct, add_noise, a PC step, purity, Dask laziness
checks_noise  each adapter's noise: shape/dtype/device, moments, Kolmogorov-Smirnov, seeds
checks_frontends  jax.jit, the Flax API, the diffusers drop-in, array_api_strict purity, the mpmath check
runner        run checks over backends and dtypes; the table, the summaries, JSON
profiles      the Hypothesis profiles shared with tests/
"""
