"""Backend x device fixtures with readable ids (GPU backends are marked ``gpu`` and skip without a GPU); the
``slow`` tests, skipped unless ``--runslow``; and a summary of the skips, one line per reason with its count."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import Any

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
        pytest.skip(f"{request.param.id}: {type(exc).__name__}: {exc}")  # as tests/conformance words it


# ------------------------------------------------------------------------------------------------ slow tests
# The README's test command (`make test`) must finish in 5 minutes on 2 cores, so the longest tests (measured
# with --durations) are marked slow here, by node id (`*` matches anything), with what covers them in the fast
# run. A test can also carry @pytest.mark.slow itself. CI runs the slow ones too (`make test-slow`).
SLOW: tuple[tuple[str, str], ...] = (
    ("tests/test_benchmarks_smoke.py::test_quick_run", "the benchmark harness end to end (about 40 s)"),
    ("tests/test_architecture.py::test_core_is_typed_strictly", "mypy --strict over the core (about 35 s)"),
    ("tests/conformance/test_conformance.py::test_check[*-jax:x64-*]",
     "JAX in 64-bit mode; every check runs on 32-bit JAX in the fast run"),
    ("tests/conformance/test_properties.py::test_agreement_jax_x64", "JAX in 64-bit mode, under Hypothesis"),
    ("tests/conformance/test_conformance.py::test_check[*-jax-float16]",
     "JAX half precision compiles each case anew; float32 runs in the fast run"),
    ("tests/conformance/test_conformance.py::test_check[*-jax-bfloat16]",
     "JAX half precision compiles each case anew; float32 runs in the fast run"),
    ("tests/conformance/test_conformance.py::test_check[flax-jax-float32]",
     "compiles the Flax API per case; tests/test_flax.py checks it against the reference in the fast run"),
    ("tests/conformance/test_conformance.py::test_check[jit-jax-float32]",
     "compiles each step per case; tests/test_flax.py checks jit against eager in the fast run"),
    ("tests/test_flax.py::test_step_pred_eager_and_jit_match_reference[x64]", "JAX in 64-bit mode"),
    ("tests/test_flax.py::test_step_correct_eager_and_jit_match_reference[x64]", "JAX in 64-bit mode"),
    ("tests/test_torch_dropin.py::test_pipeline_images_match_diffusers[list-*]",
     "diffusers' pipeline with a list of generators; the seeded pipeline runs in the fast run"),
    ("tests/test_torch_dropin.py::test_pipeline_save_and_load", "diffusers' pipeline saved and loaded"),
    ("tests/test_torch_dropin.py::test_pipeline_scheduler_swap_by_from_config", "diffusers' pipeline, swapped"),
    ("tests/test_sharding.py::*", "8 forced JAX CPU devices in a subprocess"),
    ("tests/conformance/test_suite_can_fail.py::test_an_eager_path_that_indexes_differently_from_jit_fails",
     "compiles many JAX cases (about 25 s); the suite's other self-tests run in the fast run"),
    ("tests/test_sampler.py::test_sample_reproduces_the_mixture[images-*-jax]",
     "JAX compiles the image-shaped loop; points on JAX and images on NumPy and torch run in the fast run"),
    ("tests/test_sampler.py::test_inpainting_keeps_the_known_part_and_completes_the_rest[jax]",
     "JAX compiles the masked loop; inpainting on NumPy and torch runs in the fast run"),
    ("tests/test_sampler.py::test_init_step_drives_the_same_numbers[jax]",
     "JAX compiles init/step; NumPy and torch run in the fast run, JAX's loop in the compiled-loop test"),
)


def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")) + r"\Z")


_SLOW = tuple((_pattern(glob), glob, why) for glob, why in SLOW)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (`make test-slow` runs only those: --runslow -m slow)")


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    matched: set[str] = set()
    for item in items:
        for pattern, glob, why in _SLOW:
            if pattern.match(item.nodeid):
                item.add_marker(pytest.mark.slow(reason=why))
                matched.add(glob)
                break
    # A renamed test would silently fall back into the fast run: say so when the whole suite was collected.
    unmatched = [glob for _, glob, _ in _SLOW if glob not in matched]
    if unmatched and [str(a).rstrip("/") for a in config.args] == list(config.getini("testpaths")):
        warnings.warn(pytest.PytestWarning(f"tests/conftest.py: SLOW entries that match no test: {unmatched}"),
                      stacklevel=1)
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: `make test-slow` (pytest --runslow) runs it")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line per skip reason, with how many tests it skipped, most frequent first."""
    reasons = Counter(_skip_reason(r) for r in terminalreporter.stats.get("skipped", []) if r.when != "teardown")
    if reasons:
        terminalreporter.section(f"{sum(reasons.values())} skipped, by reason", sep="-")
        width = len(str(max(reasons.values())))
        for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            terminalreporter.line(f"{count:>{width}}  {reason}")
