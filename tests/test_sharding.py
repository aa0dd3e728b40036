"""A batch sharded across 8 (forced CPU) JAX devices: same result as on one device, sharding kept through
every step, never gathered (the corrector's batch means are the only cross-device reductions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

SCRIPT = textwrap.dedent(
    """
    import json, re
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from sdeve_backends.jax import FlaxScoreSdeVeScheduler

    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    sharding = NamedSharding(mesh, P("batch"))
    scheduler = FlaxScoreSdeVeScheduler()
    steps = 30
    state = scheduler.set_sigmas(scheduler.set_timesteps(scheduler.create_state(), steps), steps)
    x0 = jnp.asarray(np.random.default_rng(0).standard_normal((16, 3, 8, 8)) * 1348.0, jnp.float32)

    def score(x, sigma):
        return -x / (sigma**2 + 1.0)  # the exact score of N(0, I) perturbed by N(0, sigma^2 I)

    shardings = []

    def loop(x, key):
        def body(i, carry):
            x, key = carry
            key, k_corr, k_pred = jax.random.split(key, 3)
            sigma = state.sigmas[i]
            x = scheduler.step_correct(state, score(x, sigma), x, k_corr).prev_sample
            x = scheduler.step_pred(state, score(x, sigma), state.timesteps[i], x, k_pred).prev_sample
            return x, key
        return jax.lax.fori_loop(0, steps, body, (x, key))[0]

    compiled = jax.jit(loop)
    key = jax.random.key(0)
    sharded_in = jax.device_put(x0, sharding)
    out = compiled(sharded_in, key)
    one_device = compiled(jax.device_put(x0, jax.devices()[0]), key)
    # one step at a time, eagerly dispatched, to see the sharding after every update
    step_pred = jax.jit(scheduler.step_pred)
    step_correct = jax.jit(scheduler.step_correct)
    x = sharded_in
    for i in range(3):
        x = step_correct(state, score(x, state.sigmas[i]), x, jax.random.key(i)).prev_sample
        shardings.append(str(x.sharding.spec))
        x = step_pred(state, score(x, state.sigmas[i]), state.timesteps[i], x, jax.random.key(100 + i)).prev_sample
        shardings.append(str(x.sharding.spec))
    hlo = compiled.lower(sharded_in, key).compile().as_text()
    collectives = {op: len(re.findall(r"\\b" + op + r"(-start)?\\(", hlo)) for op in
                   ["all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter"]}
    a, b = np.asarray(out), np.asarray(one_device)
    print(json.dumps({
        "out_spec": str(out.sharding.spec), "in_spec": str(sharded_in.sharding.spec),
        "step_specs": shardings, "collectives": collectives,
        "max_abs_diff": float(np.max(np.abs(a - b))), "scale": float(np.max(np.abs(b))),
        "finite": bool(np.all(np.isfinite(a))),
    }))
    """
)


@pytest.fixture(scope="module")
def report() -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sharding_is_kept_through_every_step(report: dict) -> None:
    assert report["out_spec"] == report["in_spec"]
    assert "'batch'" in report["in_spec"]
    assert report["step_specs"] == [report["in_spec"]] * 6


def test_same_result_as_one_device(report: dict) -> None:
    assert report["finite"]
    # float32; only the reduction order of the corrector's norms differs between the two layouts
    assert report["max_abs_diff"] <= 1e-5 * report["scale"]


def test_never_gathered_only_batch_reductions(report: dict) -> None:
    collectives = report["collectives"]
    assert collectives["all-gather"] == 0
    assert collectives["all-to-all"] == 0
    assert collectives["collective-permute"] == 0
    # the corrector's two batch means are the cross-device reductions (XLA may combine them)
    assert 1 <= collectives["all-reduce"] <= 2
