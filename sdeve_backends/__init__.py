"""The project's adapters (:class:`sdeve.Backend`), one module per framework, found by ``sdeve`` through the
entry points ``sdeve.backends`` (never imported by the core): random numbers from each framework's own
generator, device placement, compiled loops, autodiff and fused primitives; and the framework-native front
ends (``sdeve_backends.torch``: the diffusers drop-in; ``sdeve_backends.jax``: the state-passing Flax API).
This package imports no framework."""

from __future__ import annotations

from typing import Any

from sdeve import BackendBase, backend_for
from sdeve._xp import device_of
from sdeve.backends import backend_names

from .generic import GenericBackend

__all__ = ["Adapter", "FallbackAdapter", "adapter_for", "adapter_names", "noise_like"]

Adapter = BackendBase
FallbackAdapter = GenericBackend
adapter_for = backend_for
adapter_names = backend_names


def noise_like(generator: Any, x: Any, *, dtype: Any = None) -> Any:
    """Standard-normal noise shaped like ``x`` (its device, and its dtype unless given), from ``generator``."""
    backend = backend_for(x)
    device = device_of(x)
    draw_from, _ = backend.split(backend.make_generator(generator, device))
    return backend.normal(draw_from, tuple(x.shape), dtype=x.dtype if dtype is None else dtype, device=device, like=x)
