"""Per-backend pieces the suites time: inputs, generators, the front ends' steps, the floor's draw and copy,
and how to wait for a result.

Front ends:

- ``generic``: :class:`sdeve.ScoreSdeVeScheduler` (schedule in NumPy, steps in the sample's namespace);
- ``drop-in``: :class:`sdeve_backends.torch.ScoreSdeVeScheduler`, the diffusers drop-in (torch only);
- ``flax+jit``: :class:`sdeve_backends.jax.FlaxScoreSdeVeScheduler` with ``jax.jit`` step methods (JAX only);
- ``generic+jit``: the generic scheduler's steps under ``jax.jit`` (JAX only);
- ``flax``: the Flax API called eagerly (JAX only; for the per-call overhead rows).

Every step closure returns what it computed, so that :class:`~benchmarks._timing.Case` can wait for it; Dask
closures ``persist`` their results (the work is done when the closure returns, chunks stay where they are).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.backends import BACKENDS, Backend, LoadedBackend, load_backend

from ._timing import Case

__all__ = ["FRONT_ENDS", "Kit", "StepFns", "backend_names", "make_kit"]

NUM_STEPS = 100  # the schedule the steps run in; the timestep used is its 11th
STEP_INDEX = 10

# The front ends each backend has, the first being its own (the one the floor rows hold to the target).
FRONT_ENDS: dict[str, tuple[str, ...]] = {
    "numpy": ("generic",),
    "array_api_strict": ("generic",),
    "torch": ("drop-in", "generic"),
    "torch:cuda": ("drop-in", "generic"),
    "jax": ("flax+jit", "generic+jit", "generic"),
    "jax:gpu": ("flax+jit", "generic+jit", "generic"),
    "dask": ("generic",),
    "cupy": ("generic",),
}


def backend_names() -> list[str]:
    """The backends the benchmarks know (conformance's list less the read-only NumPy twin)."""
    return [b.name for b in BACKENDS if b.name in FRONT_ENDS]


def _backend(name: str) -> Backend:
    for b in BACKENDS:
        if b.name == name:
            return b
    raise KeyError(name)


@dataclasses.dataclass
class StepFns:
    """Zero-argument closures over fixed inputs: the step with its own noise draw, and (where the front end
    takes ``noise=``) the update alone with noise given."""

    pred: Callable[[], Any]
    correct: Callable[[], Any]
    pred_update: Callable[[], Any] | None = None
    correct_update: Callable[[], Any] | None = None


class Kit:
    """One loaded backend: makes inputs and closures, and knows how to wait for results."""

    def __init__(self, loaded: LoadedBackend) -> None:
        self.loaded = loaded
        self.name = loaded.name
        self.module = loaded.backend.module
        self.xp = loaded.xp
        self.device = loaded.device
        self.gpu = loaded.backend.gpu

    # -------------------------------------------------------------- waiting
    def case(self, fn: Callable[[], Any]) -> Case:
        """``fn`` as a timed case, with this backend's way of waiting for the result."""
        if self.module == "jax.numpy":
            import jax

            return Case(fn, sync=jax.block_until_ready)
        if self.name == "torch:cuda":
            import torch

            return Case(fn, sync_end=torch.cuda.synchronize)
        if self.module == "cupy":
            import cupy

            return Case(fn, sync_end=lambda: cupy.cuda.get_current_stream().synchronize())
        return Case(fn)

    def finish(self, value: Any) -> Any:
        """Dask: persist (compute, keep the chunks); others: the value itself."""
        if self.module == "dask.array":
            import dask

            return dask.persist(*value) if isinstance(value, (tuple, list)) else dask.persist(value)[0]
        return value

    # -------------------------------------------------------------- inputs
    def array(self, values: np.ndarray) -> Any:
        """``values`` on this backend (Dask: chunked in four along the batch, persisted)."""
        if self.module == "dask.array":
            import dask.array as da

            chunks = (max(1, -(-values.shape[0] // 4)),) + tuple(values.shape[1:])
            return da.from_array(values, chunks=chunks).persist()
        return self.loaded.asarray(values)

    def inputs(self, shape: tuple[int, ...], seed: int = 0) -> tuple[Any, Any]:
        """``(sample, model_output)`` of ``shape``, float32: a sample at noise level ~1 and a score ~ -x."""
        rng = np.random.default_rng(seed)
        sample = rng.standard_normal(shape, dtype=np.float32)
        score = (-sample / 2 + rng.standard_normal(shape, dtype=np.float32) / 10).astype(np.float32)
        return self.array(sample), self.array(score)

    def generator(self, seed: int = 0) -> Any:
        """This backend's own generator (the same JAX key is reused each call: the draw costs the same)."""
        if self.module == "torch":
            import torch

            device = "cuda" if self.name == "torch:cuda" else "cpu"
            return torch.Generator(device=device).manual_seed(seed)
        if self.module == "jax.numpy":
            import jax

            return jax.random.key(seed)
        if self.module == "dask.array":
            import dask.array as da

            return da.random.default_rng(seed)
        if self.module == "cupy":
            import cupy

            return cupy.random.default_rng(seed)
        return np.random.default_rng(seed)

    # -------------------------------------------------------------- the floor's parts
    def draw(self, like: Any) -> Callable[[], Any]:
        """The adapter's draw of noise like ``like`` (the step's own draw, alone)."""
        from sdeve._xp import device_of
        from sdeve_backends import adapter_for

        adapter = adapter_for(like)
        generator = self.generator(1)
        shape, dtype, device = tuple(like.shape), like.dtype, device_of(like)
        if self.module == "dask.array":
            return lambda: self.finish(adapter.normal(generator, shape, dtype=dtype, device=device, like=like))
        return lambda: adapter.normal(generator, shape, dtype=dtype, device=device, like=like)

    def copy(self, elements: int, piece: int) -> Callable[[], Any]:
        """This backend's own copy of fresh float32 arrays, ``elements`` elements in all, in arrays of at most
        ``piece`` elements (the sample's size: a step's outputs are arrays of that size, and one large array
        would pay costs they do not, e.g. glibc serves allocations over 32 MiB with fresh pages from mmap).
        Allocation is included, as a step allocates its outputs."""
        sizes = [piece] * (elements // piece) + ([elements % piece] if elements % piece else [])
        sources = [self.array(np.ones(n, dtype=np.float32)) for n in sizes]
        one = self._copy_one()
        return lambda: [one(src) for src in sources]

    def _copy_one(self) -> Callable[[Any], Any]:
        if self.module == "torch":
            return lambda a: a.clone()
        if self.module == "jax.numpy":
            import jax.numpy as jnp

            return jnp.copy
        if self.module == "dask.array":
            return lambda a: a.map_blocks(np.copy).persist()
        if self.module in ("numpy", "cupy"):
            return lambda a: a.copy()
        xp = self.xp
        return lambda a: xp.asarray(a, copy=True)

    # -------------------------------------------------------------- front ends
    def steps(self, front_end: str, sample: Any, model_output: Any) -> StepFns:
        """Closures for ``front_end``'s ``step_pred`` and ``step_correct`` on these inputs."""
        if front_end == "drop-in":
            return self._torch_steps(sample, model_output)
        if front_end == "flax+jit":
            return self._flax_steps(sample, model_output, jit=True)
        if front_end == "flax":
            return self._flax_steps(sample, model_output, jit=False)
        if front_end == "generic+jit":
            return self._generic_jit_steps(sample, model_output)
        if front_end == "generic":
            return self._generic_steps(sample, model_output)
        raise ValueError(f"unknown front end {front_end!r}")

    def _generic_steps(self, x: Any, m: Any) -> StepFns:
        import sdeve

        sched = sdeve.ScoreSdeVeScheduler()
        sched.set_timesteps(NUM_STEPS)
        sched.set_sigmas(NUM_STEPS)
        t = sched.timesteps[STEP_INDEX]
        gen = self.generator()
        noise = self.array(np.asarray(np.random.default_rng(2).standard_normal(tuple(x.shape), dtype=np.float32)))
        fin = self.finish
        return StepFns(
            pred=lambda: fin(sched.step_pred(m, t, x, generator=gen, return_dict=False)),
            correct=lambda: fin(sched.step_correct(m, x, generator=gen, return_dict=False)[0]),
            pred_update=lambda: fin(sched.step_pred(m, t, x, noise=noise, return_dict=False)),
            correct_update=lambda: fin(sched.step_correct(m, x, noise=noise, return_dict=False)[0]),
        )

    def _torch_steps(self, x: Any, m: Any) -> StepFns:
        from sdeve_backends.torch import ScoreSdeVeScheduler

        sched = ScoreSdeVeScheduler()
        sched.set_timesteps(NUM_STEPS, device=x.device)
        sched.set_sigmas(NUM_STEPS)
        t = sched.timesteps[STEP_INDEX]
        gen = self.generator()
        import torch

        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(x.device)
        return StepFns(
            pred=lambda: sched.step_pred(m, t, x, generator=gen, return_dict=False),
            correct=lambda: sched.step_correct(m, x, generator=gen, return_dict=False)[0],
            pred_update=lambda: sched.step_pred(m, t, x, noise=noise, return_dict=False),
            correct_update=lambda: sched.step_correct(m, x, noise=noise, return_dict=False)[0],
        )

    def _flax_steps(self, x: Any, m: Any, *, jit: bool) -> StepFns:
        import jax

        from sdeve_backends.jax import FlaxScoreSdeVeScheduler

        flax = FlaxScoreSdeVeScheduler()
        state = flax.create_state()
        state = flax.set_timesteps(state, NUM_STEPS)
        state = flax.set_sigmas(state, NUM_STEPS)
        state = jax.device_put(state, self.device)
        t = state.timesteps[STEP_INDEX]
        key = self.generator()
        pred = flax.step_pred
        correct = flax.step_correct
        if jit:
            pred = jax.jit(pred, static_argnames=("return_dict",))
            correct = jax.jit(correct, static_argnames=("return_dict",))
        return StepFns(
            pred=lambda: pred(state, m, t, x, key, return_dict=False)[:2],
            correct=lambda: correct(state, m, x, key, return_dict=False)[0],
        )

    def _generic_jit_steps(self, x: Any, m: Any) -> StepFns:
        import jax

        import sdeve

        sched = sdeve.ScoreSdeVeScheduler()
        sched.set_timesteps(NUM_STEPS)
        sched.set_sigmas(NUM_STEPS)
        t = jax.device_put(np.float32(sched.timesteps[STEP_INDEX]), self.device)
        key = self.generator()
        noise = self.array(np.random.default_rng(2).standard_normal(tuple(x.shape), dtype=np.float32))
        pred = jax.jit(lambda m, t, x, k: sched.step_pred(m, t, x, generator=k, return_dict=False))
        correct = jax.jit(lambda m, x, k: sched.step_correct(m, x, generator=k, return_dict=False)[0])
        pred_update = jax.jit(lambda m, t, x, z: sched.step_pred(m, t, x, noise=z, return_dict=False))
        correct_update = jax.jit(lambda m, x, z: sched.step_correct(m, x, noise=z, return_dict=False)[0])
        return StepFns(
            pred=lambda: pred(m, t, x, key),
            correct=lambda: correct(m, x, key),
            pred_update=lambda: pred_update(m, t, x, noise),
            correct_update=lambda: correct_update(m, x, noise),
        )


def make_kit(name: str) -> Kit:
    """Load backend ``name``; raises ``ImportError``/``RuntimeError`` saying why it cannot run here."""
    return Kit(load_backend(_backend(name)))
