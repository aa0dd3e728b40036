"""Checks for a GPU (and the JAX transfer guard, which also holds on the CPU):

- ``kernels``: CUDA kernels launched by one ``step_pred`` / ``step_correct`` of the torch front ends
  (``torch.profiler``; the issue's target is one fused kernel per update, plus the generator's);
- ``host_sync``: a 100-step predictor-corrector loop under ``torch.cuda.set_sync_debug_mode("error")``;
- ``transfer_guard``: the same loop in JAX, stepped and compiled, under ``jax.transfer_guard("disallow")``;
- ``cuda_graph``: a step captured in a CUDA graph replays to the eager result on new inputs.

The bandwidth fraction at 64 MB per array is the ``copy/update`` ratio of the GPU floor rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._kits import make_kit
from ._report import Check, Skip

__all__ = ["run"]

LOOP_STEPS = 100


def run(settings: Any) -> Any:
    from .suites import Result

    result = Result()
    for name in ("jax", "jax:gpu"):
        if settings.wants_backend(name) and settings.wants_op("transfer_guard"):
            try:
                make_kit(name)
            except (ImportError, RuntimeError) as exc:
                result.skips.append(Skip("gpu", "transfer_guard", name, f"backend not available: {exc}"))
                continue
            _guarded(result, name, "transfer_guard", _transfer_guard, name)
    if not (settings.wants_backend("torch:cuda")):
        return result
    try:
        make_kit("torch:cuda")
    except (ImportError, RuntimeError) as exc:
        result.skips.append(Skip("gpu", "kernels, host_sync, cuda_graph", "torch:cuda", f"backend not available: {exc}"))
        return result
    shape = tuple(settings.large_gpu)
    for front_end in ("drop-in", "generic"):
        if settings.wants_op("kernels"):
            _guarded(result, "torch:cuda", f"kernels ({front_end})", _kernels, front_end, shape)
        if settings.wants_op("host_sync"):
            _guarded(result, "torch:cuda", f"host_sync ({front_end})", _host_sync, front_end)
        if settings.wants_op("cuda_graph"):
            _guarded(result, "torch:cuda", f"cuda_graph ({front_end})", _cuda_graph, front_end)
    return result


def _guarded(result: Any, backend: str, label: str, fn: Any, *args: Any) -> None:
    try:
        result.checks += fn(*args)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run is reported, not fatal
        result.checks.append(Check("gpu", label, backend, "", False, f"raised {type(exc).__name__}: {exc}"))


def _torch_scheduler(front_end: str) -> Any:
    import torch

    import sdeve
    from sdeve_backends.torch import ScoreSdeVeScheduler

    if front_end == "drop-in":
        sched = ScoreSdeVeScheduler()
        sched.set_timesteps(LOOP_STEPS, device="cuda")
        sched.set_sigmas(LOOP_STEPS)
        timesteps = sched.timesteps
    else:
        sched = sdeve.ScoreSdeVeScheduler()
        sched.set_timesteps(LOOP_STEPS)
        sched.set_sigmas(LOOP_STEPS)
        timesteps = torch.as_tensor(np.asarray(sched.timesteps, dtype=np.float32), device="cuda")
    sigmas = torch.as_tensor(np.asarray(sched.sigmas, dtype=np.float32), device="cuda")
    return sched, timesteps, sigmas


def _kernels(front_end: str, shape: tuple[int, ...]) -> list[Check]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    sched, timesteps, _ = _torch_scheduler(front_end)
    x = torch.randn(shape, device="cuda")
    m = -x / 2
    z = torch.randn(shape, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    calls = {
        "step_pred": lambda: sched.step_pred(m, timesteps[10], x, generator=gen),
        "step_pred(noise=)": lambda: sched.step_pred(m, timesteps[10], x, noise=z),
        "step_correct": lambda: sched.step_correct(m, x, generator=gen),
        "step_correct(noise=)": lambda: sched.step_correct(m, x, noise=z),
    }
    checks = []
    for label, call in calls.items():
        call()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            call()
            torch.cuda.synchronize()
        kernels = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        detail = f"{len(kernels)} kernels: " + ", ".join(sorted({k[:60] for k in kernels}))
        # The target (issue 5): one fused kernel per update, plus the generator's kernel when it draws.
        budget = 1 if "noise=" in label else 2
        checks.append(Check("gpu", f"kernels {label}", "torch:cuda", front_end, len(kernels) <= budget, detail,
                            float(len(kernels))))
    return checks


def _host_sync(front_end: str) -> list[Check]:
    import torch

    sched, timesteps, sigmas = _torch_scheduler(front_end)
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn((4, 3, 32, 32), device="cuda") * sched.init_noise_sigma
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(LOOP_STEPS):
            sigma = sigmas[i]
            x = sched.step_correct(-x / (1 + sigma * sigma), x, generator=gen).prev_sample
            out = sched.step_pred(-x / (1 + sigma * sigma), timesteps[i], x, generator=gen)
            x = out.prev_sample
        passed, detail = True, f"{LOOP_STEPS} PC steps, no synchronising call"
    except RuntimeError as exc:
        passed, detail = False, f"step {i}: {exc}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
    finite = bool(torch.isfinite(out.prev_sample_mean).all()) if passed else False
    return [Check("gpu", "host_sync (set_sync_debug_mode('error'))", "torch:cuda", front_end, passed and finite,
                  detail + ("" if finite or not passed else "; result not finite"))]


def _cuda_graph(front_end: str) -> list[Check]:
    import torch

    sched, timesteps, _ = _torch_scheduler(front_end)
    shape = (4, 3, 32, 32)
    x, m, z = (torch.randn(shape, device="cuda") for _ in range(3))
    t = timesteps[10]
    calls = {
        "step_pred": lambda: sched.step_pred(m, t, x, noise=z, return_dict=False),
        "step_correct": lambda: sched.step_correct(m, x, noise=z, return_dict=False),
    }
    checks = []
    for label, call in calls.items():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                call()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = call()
        errors = []
        for seed in (1, 2):
            g = torch.Generator(device="cuda").manual_seed(seed)
            for buf in (x, m, z):
                buf.copy_(torch.randn(shape, device="cuda", generator=g))
            graph.replay()
            torch.cuda.synchronize()
            eager = call()
            errors += [float((a - b).abs().max()) for a, b in zip(static_out, eager)]
        passed = max(errors) <= 1e-5 * float(max(1.0, x.abs().max()))
        checks.append(Check("gpu", f"cuda_graph {label}", "torch:cuda", front_end, passed,
                            f"replay vs eager on new inputs: max |diff| {max(errors):.3g}"))
    return checks


def _transfer_guard(name: str) -> list[Check]:
    import jax

    from ._jax_loop import loops

    kit = make_kit(name)
    compiled, stepped, _ = loops(kit.device, (4, 3, 32, 32), LOOP_STEPS)
    jax.block_until_ready(compiled())  # compile outside the guard: compilation may move constants
    jax.block_until_ready(stepped())
    checks = []
    for label, fn in (("stepped", stepped), ("compiled", compiled)):
        try:
            with jax.transfer_guard("disallow"):
                out = jax.block_until_ready(fn())
            passed, detail = bool(np.isfinite(np.asarray(out)).all()), f"{LOOP_STEPS}-step PC loop, no transfer"
        except Exception as exc:  # noqa: BLE001 - the guard raises XlaRuntimeError/RuntimeError
            passed, detail = False, f"{type(exc).__name__}: {str(exc)[:200]}"
        checks.append(Check("gpu" if kit.gpu else "transfer", f"transfer_guard('disallow') {label}", name, "flax",
                            passed, detail))
    return checks
