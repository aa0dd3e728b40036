"""Backends for the likelihood and ODE tests, until the adapters of sdeve_backends have ``while_loop`` and
autodiff (``vjp``/``jvp``) of their own.

STAND-IN: each class wraps today's adapter (noise) and adds what the Backend protocol of the architecture
(SPEC.md) promises: ``while_loop``, ``settle``, ``readable``, and for torch and JAX ``vjp``/``jvp`` and
``value_and_vjp``. Replace with ``sdeve.backends.backend_for`` once those adapters exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdeve_backends import adapter_for


class PythonBackend:
    """Python loops and no autodiff (NumPy, array_api_strict)."""

    def __init__(self, xp: Any) -> None:
        self.adapter = adapter_for(xp)
        self.name = getattr(self.adapter, "name", "python")

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return self.adapter.make_generator(generator, device)

    def split(self, source: Any) -> tuple[Any, Any]:
        return self.adapter.split(source)

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Any = None) -> Any:
        return self.adapter.normal(source, shape, dtype=dtype, device=device, like=like)

    def readable(self, x: Any) -> bool:
        return True

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any], carry: Any) -> Any:
        while bool(cond(carry)):
            carry = body(carry)
        return carry

    def settle(self, *arrays: Any) -> tuple[Any, ...]:
        return arrays

    def vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        raise TypeError(f"the {self.name} backend has no automatic differentiation: pass divergence=")

    jvp = vjp


class TorchBackend(PythonBackend):
    """torch.func for the products."""

    def value_and_vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> tuple[Any, Any]:
        import torch

        value, pullback = torch.func.vjp(fn, x)
        (product,) = pullback(v)
        return value, product

    def vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        return self.value_and_vjp(fn, x, v)[1]

    def jvp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        import torch

        return torch.func.jvp(fn, (x,), (v,))[1]


class JaxBackend(PythonBackend):
    """lax.while_loop and jax.vjp / jax.jvp."""

    def readable(self, x: Any) -> bool:
        import jax

        return not isinstance(x, jax.core.Tracer)

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any], carry: Any) -> Any:
        import jax

        return jax.lax.while_loop(cond, body, carry)

    def value_and_vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> tuple[Any, Any]:
        import jax

        value, pullback = jax.vjp(fn, x)
        (product,) = pullback(v)
        return value, product

    def vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        return self.value_and_vjp(fn, x, v)[1]

    def jvp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        import jax

        return jax.jvp(fn, (x,), (v,))[1]


class DaskBackend(PythonBackend):
    """Each step persisted, nothing read but the loop's 0-d condition."""

    def readable(self, x: Any) -> bool:
        return False

    def settle(self, *arrays: Any) -> tuple[Any, ...]:
        import dask

        return tuple(dask.persist(*arrays))


def backend_for(xp: Any) -> PythonBackend:
    """The stand-in backend of a namespace."""
    name = getattr(xp, "__name__", "")
    if "dask" in name:
        return DaskBackend(xp)
    if "torch" in name:
        return TorchBackend(xp)
    if "jax" in name:
        return JaxBackend(xp)
    return PythonBackend(xp)
