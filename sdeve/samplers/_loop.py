"""The driver every fixed-step sampler runs on, and the tables it reads its levels from.

A sampler is a :class:`Stepper`: ``init`` turns the start sample into a carry (a tuple of arrays), ``step``
advances it by one step, ``output`` reads the result. :func:`run_fixed` runs the steps either one by one in
Python (progress bar, callback, lazy engines settled after each step) or, with neither, as one program that
the backend may compile (:meth:`sdeve.protocols.Backend.compile_program`): ``fori_loop`` over the middle
steps, the first and last peeled off so that a stepper may branch on them in Python.

Steppers and tables are frozen dataclasses whose array fields are the data and whose other fields are marked
static (:func:`static_field`), so that a compiling backend can pass the arrays as arguments and key its cache
on the rest.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .._xp import Array, Namespace, namespace_name
from ..backends import backend_for
from ..protocols import NoiseSource, static_field

__all__ = ["Constraint", "Stepper", "Table", "run_fixed", "static_field"]

Model = Callable[[Array, Array], Array]
Carry = tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class Table:
    """Per-step values (levels, coefficients) on the host and in the sample's namespace.

    ``at(i)`` is a Python float for a Python int ``i`` (a kernel argument: no array op, no device read), and a
    0-d gather for a 0-d integer array ``i`` (traced, or on a device).
    """

    values: Array
    host: tuple[float, ...] | None = static_field(host_only=True)

    @classmethod
    def build(cls, host: Sequence[float], *, xp: Namespace, device: Any, dtype: Any) -> Table:
        """A table of ``host`` values, moved once to ``xp`` on ``device`` in ``dtype``."""
        values = tuple(float(v) for v in host)
        return cls(_moved(values, xp, device, dtype), values)

    def at(self, i: Any, *, xp: Namespace) -> Any:
        """The value of step ``i``."""
        if isinstance(i, int):
            return self.host[i] if self.host is not None else self.values[i]
        return xp.reshape(xp.take(self.values, xp.reshape(i, (1,)), axis=0), ())


_MOVED: collections.OrderedDict[tuple[Any, ...], Array] = collections.OrderedDict()
_MOVED_LOCK = threading.Lock()
MOVED_TABLES = 64  # tables kept moved: a sampler's few, for the last several schedules


def _moved(values: tuple[float, ...], xp: Namespace, device: Any, dtype: Any) -> Array:
    """``values`` as an array of ``xp`` on ``device`` in ``dtype``, moved once and kept (least recently used
    dropped first), since moving costs a dispatch per call on JAX (half a millisecond a table on a CPU) and the
    tables are only read. Arrays made inside a trace live as long as it, so they are not kept."""
    key = (values, namespace_name(xp), str(device), str(dtype))
    with _MOVED_LOCK:
        moved = _MOVED.get(key)
        if moved is not None:
            _MOVED.move_to_end(key)
            return moved
    # From a NumPy array: a namespace's asarray walks a Python sequence element by element.
    moved = xp.asarray(np.asarray(values, dtype=np.float64), dtype=dtype, device=device, copy=True)
    if not backend_for(xp).traced(moved):
        with _MOVED_LOCK:
            _MOVED[key] = moved
            while len(_MOVED) > MOVED_TABLES:
                _MOVED.popitem(last=False)
    return moved


class Constraint(Protocol):
    """What the loop imposes after every update (:mod:`sdeve.controllable`): ``apply(x, x_mean, level, noise,
    *, xp) -> (x, x_mean)`` at the noise level the sample has just reached."""

    def apply(self, x: Array, x_mean: Array, level: Any, noise: Any, *, xp: Namespace | None = None
              ) -> tuple[Array, Array]: ...


class Stepper(Protocol):
    """A fixed-step sampler over a carry (see the module docstring)."""

    @property
    def num_steps(self) -> int: ...

    def init(self, x: Array) -> Carry: ...

    def step(self, model: Model, i: Any, carry: Carry, noise: Any, *, first: bool, last: bool) -> Carry: ...

    def output(self, carry: Carry) -> Array: ...

    def report(self, i: int, carry: Carry) -> dict[str, Any]: ...

    @property
    def draws_per_step(self) -> int: ...


class Replay:
    """A noise source that hands out draws made before (so a compiled step needs no generator inside)."""

    def __init__(self, draws: Sequence[Array]) -> None:
        self.draws = draws
        self.taken = 0

    def __call__(self, like: Array) -> Array:
        self.taken += 1
        return self.draws[self.taken - 1]


def _compiled_step(stepper: Stepper, model: Model, compile_step: Callable[..., Any],
                   step_index: Callable[[int], Any] | None, noise: Any) -> Callable[..., Carry]:
    """``step(i, carry)`` with ``stepper.step`` compiled once for the middle steps: its noise drawn outside the
    compiled function and its index handed over by ``step_index`` (a device tensor: no recompilation)."""

    def inner(index: Any, carry: Carry, *draws: Array) -> Carry:
        return stepper.step(model, index, carry, Replay(draws), first=False, last=False)

    compiled = compile_step(inner)

    def step(i: int, carry: Carry, *, first: bool, last: bool) -> Carry:
        if first or last:
            return stepper.step(model, i, carry, noise, first=first, last=last)
        draws = [noise(carry[0]) for _ in range(stepper.draws_per_step)]
        return compiled(i if step_index is None else step_index(i), carry, *draws)  # type: ignore[no-any-return]

    return step


def _run_program(model: Model, dynamic: tuple[Any, ...], static: tuple[Any, ...]) -> tuple[Array, Any]:
    """All steps as one program: the first and last peeled, ``fori_loop`` between (see the module docstring)."""
    stepper, x, source = dynamic
    backend, start = static
    noise = NoiseSource(backend, source)
    stop = stepper.num_steps
    carry = stepper.step(model, start, stepper.init(x), noise, first=True, last=start == stop - 1)

    def body(i: Any, state: tuple[Carry, Any]) -> tuple[Carry, Any]:
        inner = NoiseSource(backend, state[1])
        return stepper.step(model, i, state[0], inner, first=False, last=False), inner.source

    if stop - start > 2:
        carry, noise.source = backend.fori_loop(start + 1, stop - 1, body, (carry, noise.source))
    if stop - start > 1:
        carry = stepper.step(model, stop - 1, carry, noise, first=False, last=True)
    return stepper.output(carry), noise.source


def run_fixed(
    stepper: Stepper,
    model: Model,
    x: Array,
    *,
    noise: NoiseSource | Callable[[Array], Array] | None,
    start: int = 0,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    disable: bool | None = None,
    compile_step: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    step_index: Callable[[int], Any] | None = None,
    strict: bool = False,
) -> Array:
    """Run steps ``start .. num_steps - 1`` of ``stepper`` from sample ``x``; return its output.

    With no ``callback`` and the progress bar disabled (the default), the backend may compile the whole run
    into one program; otherwise the steps run one by one and ``callback(stepper.report(i, carry))`` follows
    each. ``noise`` carries on from where the run left it; any other callable ``noise(like)`` (draws made
    elsewhere) runs the steps one by one. ``compile_step`` (with ``step_index``) compiles the middle steps one at
    a time instead (``torch.compile``).
    """
    backend = noise.backend if isinstance(noise, NoiseSource) else backend_for(x)
    if isinstance(noise, NoiseSource) and callback is None and (disable is None or disable) and compile_step is None:
        out, noise.source = backend.compile_program(_run_program, model, (stepper, x, noise.source),
                                                    (backend, start), strict=strict)
        return out
    steps: Any = range(start, stepper.num_steps)
    bar = _progress_bar(steps) if disable is False else None
    carry = stepper.init(x)
    if compile_step is None:
        def step(i: int, carry: Carry, *, first: bool, last: bool) -> Carry:
            return stepper.step(model, i, carry, noise, first=first, last=last)
    else:
        step = _compiled_step(stepper, model, compile_step, step_index, noise)
    try:
        for i in bar if bar is not None else steps:
            carry = backend.settle(step(i, carry, first=i == start, last=i == stepper.num_steps - 1), carry)
            if callback is not None:
                callback(stepper.report(i, carry))
    finally:
        if bar is not None:
            bar.close()
    return stepper.output(carry)


def _progress_bar(steps: Any) -> Any:
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 - optional dependency, only for the bar
    except ImportError:
        raise ImportError("progress=True needs tqdm: pip install tqdm (or sdeve[cli])") from None
    return tqdm(steps, desc="sampling", unit="step")
