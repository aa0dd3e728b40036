"""The adapter interface: what a framework supplies that the array API standard leaves out."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdeve._xp import Array, array_namespace, device_of, to_device

__all__ = ["Adapter", "FallbackAdapter", "numpy_generator"]


def numpy_generator(generator: Any) -> Any:
    """A ``numpy.random.Generator`` from ``None`` (fresh entropy), an int seed, a ``Generator`` or ``RandomState``."""
    if generator is None:
        return np.random.default_rng()
    if isinstance(generator, (np.random.Generator, np.random.RandomState)):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    if isinstance(generator, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(generator)
    raise TypeError(
        f"expected a numpy.random.Generator, a RandomState, an int seed or None, got {type(generator).__name__}"
    )


def numpy_standard_normal(rng: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard normals from a NumPy generator in ``dtype`` (float32/64 drawn natively, others cast)."""
    dtype = np.dtype(dtype)
    if isinstance(rng, np.random.Generator) and dtype in (np.float32, np.float64):
        return rng.standard_normal(shape, dtype=dtype)
    return np.asarray(rng.standard_normal(shape)).astype(dtype, copy=False)


class Adapter:
    """Random numbers and device placement for one framework.

    Subclasses implement :meth:`normal`. ``generator`` is the framework's own generator type (see each
    adapter), an int seed, or ``None`` for fresh entropy.
    """

    name: str = "base"

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Array | None = None) -> Array:
        """Standard-normal noise of ``shape``, ``dtype`` and ``device`` from ``generator``.

        ``like``, when given, is the sample the noise is for (Dask uses its chunks).
        """
        raise NotImplementedError

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        """Turn what a user passed as ``generator`` (an int seed, ``None``, or the framework's own generator)
        into a source that gives fresh numbers on every draw: a stateful generator, or a JAX key that
        :meth:`split` then advances. A loop calls this once, then :meth:`split` before every draw."""
        return generator

    def split(self, generator: Any) -> tuple[Any, Any]:
        """``(draw_from, carry_on)``: what to draw the next noise from, and what to keep for the draws after.

        A stateful generator advances itself, so both are ``generator``; a JAX key is split in two.
        """
        return generator, generator

    def normal_like(self, generator: Any, x: Array, *, dtype: Any = None) -> Array:
        """Noise with the shape, device (and dtype unless given) of ``x``."""
        return self.normal(generator, tuple(x.shape), dtype=x.dtype if dtype is None else dtype, device=device_of(x), like=x)

    def to_device(self, x: Array, device: Any) -> Array:
        """Move ``x`` to ``device``."""
        return to_device(x, device)

    # Fused fast paths. They compute exactly what sdeve.updates computes, in fewer passes over memory; the
    # conformance suite checks them against the core. ``None`` means "no fast path here: use the core".
    # ``owns_noise`` says the noise buffer was drawn for this call and may be overwritten. An adapter with
    # ``draws_in_update`` may be handed ``noise=None`` and then draws it from ``generator`` inside the update.
    draws_in_update: bool = False

    def predictor_update(
        self, sample: Array, model_output: Array, noise: Array | None, sigma: Any, adjacent_sigma: Any, *,
        owns_noise: bool, generator: Any = None,
    ) -> tuple[Array, Array] | None:
        """A fused :func:`sdeve.updates.predictor_update`, or ``None``."""
        return None

    def corrector_update(
        self, sample: Array, model_output: Array, noise: Array | None, snr: float, *, norm: str, owns_noise: bool,
        generator: Any = None,
    ) -> tuple[Array, Array] | None:
        """A fused :func:`sdeve.updates.corrector_update`, or ``None``."""
        return None


class FallbackAdapter(Adapter):
    """For namespaces with no adapter of their own (e.g. ``array_api_strict``): NumPy draws, ``xp.asarray`` moves.

    ``generator`` is anything :func:`numpy_generator` accepts.
    """

    name = "fallback"

    def __init__(self, xp: Any = None) -> None:
        self.xp = xp

    def make_generator(self, generator: Any, device: Any = None) -> Any:
        return numpy_generator(generator)

    def normal(self, generator: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None, like: Array | None = None) -> Array:
        xp = self.xp if self.xp is not None else array_namespace(like)
        host_dtype = np.float64 if dtype == xp.float64 else np.float32
        draws = numpy_standard_normal(numpy_generator(generator), shape, host_dtype)
        out = xp.asarray(draws, device=device) if device is not None else xp.asarray(draws)
        return out if out.dtype == dtype else xp.astype(out, dtype)
