"""Thin per-framework adapters: random numbers from each framework's own generator, device placement, and
framework-native front ends (``sdeve_backends.torch``: the diffusers drop-in; ``sdeve_backends.jax``: the
state-passing Flax API). Submodules import their framework; this package imports none."""

from __future__ import annotations

from ._base import Adapter, FallbackAdapter
from ._registry import adapter_for, adapter_names, noise_like

__all__ = ["Adapter", "FallbackAdapter", "adapter_for", "adapter_names", "noise_like"]
