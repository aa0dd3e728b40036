"""What a framework adapter supplies that the array API standard leaves out, and the noise source built on it.

The core defines the contract here and finds adapters through :mod:`sdeve.backends`; it never imports one.
An adapter subclasses :class:`BackendBase` (or implements :class:`Backend` itself) and supplies:

- random numbers from the framework's own generator (:meth:`~Backend.make_generator`, :meth:`~Backend.split`,
  :meth:`~Backend.normal`);
- whether an array's value can be read on the host cheaply now (:meth:`~Backend.readable`), and whether it
  is a stand-in of a trace that must not be kept (:meth:`~Backend.traced`);
- loops and compilation (:meth:`~Backend.fori_loop`, :meth:`~Backend.while_loop`, :meth:`~Backend.jit`,
  :meth:`~Backend.compile_program`), which are plain Python here and ``jax.lax``/``jax.jit`` on JAX;
- optionally a fused form of the one primitive every update is built from (:meth:`~Backend.combine`) and of
  the corrector's per-example norms (:meth:`~Backend.norms`);
- autodiff for the likelihood (:meth:`~Backend.vjp`, :meth:`~Backend.jvp`);
- per-step materialisation for lazy engines (:meth:`~Backend.settle`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import array_api_compat

from ._xp import Array, device_of

__all__ = ["Backend", "BackendBase", "NoiseSource", "static_field"]

Carry = Any


def static_field(*, host_only: bool = False, **kwargs: Any) -> Any:
    """A field of a frozen dataclass that is configuration, not data: hashed into a compiled program's cache key
    (:meth:`Backend.compile_program`); every other field holds arrays (or such dataclasses).

    ``host_only`` marks a host copy of data that a compiled program does without (a compiling backend sets it
    to ``None``, so that other values do not compile another program).
    """
    return dataclasses.field(metadata={"static": True, "host_only": host_only}, **kwargs)


@runtime_checkable
class Backend(Protocol):
    """The adapter contract (see the module docstring). :class:`BackendBase` gives every default."""

    name: str

    def make_generator(self, generator: Any, device: Any = None) -> Any: ...

    def split(self, source: Any) -> tuple[Any, Any]: ...

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None,
               like: Array | None = None) -> Array: ...

    def readable(self, x: Array) -> bool: ...

    def traced(self, x: Array) -> bool: ...

    def fori_loop(self, lower: int, upper: int, body: Callable[[Any, Carry], Carry], carry: Carry) -> Carry: ...

    def while_loop(self, cond: Callable[[Carry], Any], body: Callable[[Carry], Carry], carry: Carry) -> Carry: ...

    def jit(self, fn: Callable[..., Any], *, static_argnames: tuple[str, ...] = ()) -> Callable[..., Any]: ...

    def compile_program(self, fn: Callable[..., Any], model: Any, dynamic: Any, static: Any, *,
                        strict: bool = False) -> Any: ...

    def combine(self, x: Array, a: Any, s: Array, b: Any, z: Array, *, reuse: bool) -> tuple[Array, Array] | None: ...

    def norms(self, x: Array) -> Array | None: ...

    def host_norms(self, s: Array, z: Array) -> tuple[float, float] | None: ...

    def settle(self, arrays: tuple[Array, ...], previous: tuple[Array, ...] = ()) -> tuple[Array, ...]: ...

    def small_arrays(self) -> None: ...

    def vjp(self, fn: Callable[[Array], Array], x: Array, v: Array) -> Array: ...

    def value_and_vjp(self, fn: Callable[[Array], Array], x: Array, v: Array) -> tuple[Array, Array]: ...

    def jvp(self, fn: Callable[[Array], Array], x: Array, v: Array) -> Array: ...


class BackendBase:
    """Defaults for every method of :class:`Backend` but :meth:`normal`: a stateful generator used as it is,
    Python loops, no compilation, no fused primitive, no autodiff.

    ``readable`` is true for eager arrays (``array_api_compat.is_lazy_array`` false); adapters for libraries
    with accelerators narrow it to host memory, where a read does not synchronise a device.
    """

    name: str = "base"

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        """The noise-source state for what the user passed as ``generator`` (an int seed, ``None`` for fresh
        entropy, or the framework's own generator)."""
        return generator

    def split(self, source: Any) -> tuple[Any, Any]:
        """``(draw_from, carry_on)``: a stateful generator advances itself, so both are ``source``."""
        return source, source

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None,
               like: Array | None = None) -> Array:
        """Standard normals of ``shape``, ``dtype`` and ``device`` from ``source``; ``like`` is the array the
        noise is for (a lazy engine takes its chunks from it)."""
        raise NotImplementedError(f"{type(self).__name__} draws no random numbers")

    def readable(self, x: Array) -> bool:
        """Whether reading the value of ``x`` on the host is cheap and allowed now."""
        return not array_api_compat.is_lazy_array(x)

    def traced(self, x: Array) -> bool:
        """Whether ``x`` is a stand-in of a trace (``jax.jit``, ``torch.compile``) that must not outlive it."""
        return False

    def fori_loop(self, lower: int, upper: int, body: Callable[[Any, Carry], Carry], carry: Carry) -> Carry:
        """``for i in range(lower, upper): carry = body(i, carry)``."""
        for i in range(lower, upper):
            carry = body(i, carry)
        return carry

    def while_loop(self, cond: Callable[[Carry], Any], body: Callable[[Carry], Carry], carry: Carry) -> Carry:
        """``while cond(carry): carry = body(carry)``; ``cond`` returns a Python bool or a 0-d array, read
        here once per iteration (the one host read of an adaptive loop)."""
        while bool(cond(carry)):
            carry = body(carry)
        return carry

    def jit(self, fn: Callable[..., Any], *, static_argnames: tuple[str, ...] = ()) -> Callable[..., Any]:
        """``fn`` compiled, where the framework compiles; ``fn`` itself here."""
        return fn

    def compile_program(self, fn: Callable[..., Any], model: Any, dynamic: Any, static: Any, *,
                        strict: bool = False) -> Any:
        """``fn(model, dynamic, static)``, as one compiled program where the framework compiles (JAX): ``dynamic``
        holds the arrays (tuples, frozen dataclasses whose non-array fields are marked static), ``static`` is
        hashable configuration, ``model`` the user's callable. A backend that compiles runs an untraceable model
        step by step, or raises ``TypeError`` when ``strict``. Here ``fn`` is simply called."""
        return fn(model, dynamic, static)

    def combine(self, x: Array, a: Any, s: Array, b: Any, z: Array, *, reuse: bool) -> tuple[Array, Array] | None:
        """A fused ``(x + a*s + b*z, x + a*s)``, or ``None`` for the core's own (:func:`sdeve.updates.combine`).

        ``reuse`` says ``z`` was drawn for this call and may be overwritten.
        """
        return None

    def norms(self, x: Array) -> Array | None:
        """Per-example L2 norms over every axis but the first, ``(B,)`` in ``x``'s dtype, in one fused pass; or
        ``None`` for the core's ``sqrt(sum(x * x))``. A fused reduction sums in another order: it agrees with
        the core's to the reduction's rounding (about ``sqrt(n)`` ulps for ``n`` values), not to the ulp."""
        return None

    def host_norms(self, s: Array, z: Array) -> tuple[float, float] | None:
        """The batch means of ``s``'s and ``z``'s per-example norms (:meth:`norms`), read as Python floats, for
        arrays the core has found :meth:`readable`: one call where an eager framework's dispatch dominates a
        small step; or ``None`` for the core's."""
        return None

    def settle(self, arrays: tuple[Array, ...], previous: tuple[Array, ...] = ()) -> tuple[Array, ...]:
        """Materialise a step's ``arrays`` (lazy engines); an engine that runs ahead may wait for the step before,
        ``previous``, so that no more than two steps are in flight. The arrays themselves here."""
        return arrays

    def small_arrays(self) -> None:
        """Tune the framework for a loop of many operations on small arrays (a thread pool only adds
        synchronisation there); nothing here."""

    def vjp(self, fn: Callable[[Array], Array], x: Array, v: Array) -> Array:
        """``v^T (d fn / d x)`` at ``x``, same shape as ``x``."""
        raise TypeError(f"the {self.name} backend has no automatic differentiation: pass divergence=")

    def value_and_vjp(self, fn: Callable[[Array], Array], x: Array, v: Array) -> tuple[Array, Array]:
        """``(fn(x), v^T (d fn / d x))``: one forward pass where the framework gives both at once."""
        return fn(x), self.vjp(fn, x, v)

    def jvp(self, fn: Callable[[Array], Array], x: Array, v: Array) -> Array:
        """``(d fn / d x) v`` at ``x``, same shape as ``fn(x)``."""
        raise TypeError(f"the {self.name} backend has no automatic differentiation: pass divergence=")


class NoiseSource:
    """Standard-normal noise on demand: ``noise(like)`` is an array of ``like``'s shape, dtype and device.

    Every draw first splits the state (:meth:`Backend.split`), so a JAX key is never used twice; ``source``
    is the state to carry on with after the draws (a stateful generator is simply itself).
    """

    __slots__ = ("backend", "source")

    def __init__(self, backend: Backend, source: Any) -> None:
        self.backend = backend
        self.source = source

    def __call__(self, like: Array) -> Array:
        now, self.source = self.backend.split(self.source)
        shape = tuple(like.shape)
        return self.backend.normal(now, shape, dtype=like.dtype, device=device_of(like), like=like)

    def draw(self, shape: tuple[int, ...], *, dtype: Any, device: Any = None) -> Array:
        """Noise of an explicit ``shape``, ``dtype`` and ``device`` (for a sample that does not exist yet)."""
        now, self.source = self.backend.split(self.source)
        return self.backend.normal(now, tuple(shape), dtype=dtype, device=device)
