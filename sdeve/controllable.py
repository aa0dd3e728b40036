"""Controllable generation (Song et al. 2021, Sec. 5 and Appendix I; ``controllable_generation.py`` of their code).

Two kinds of object, both applied by the sampling loop, never by a sampler itself:

- a **constraint**, ``constraint.apply(x, x_mean, sigma, noise) -> (x, x_mean)`` (also its ``__call__``), called
  after every update with the noise level ``sigma`` the sample has just reached: the known part of the sample is
  replaced by the known data noised to that level, ``known + sigma z`` (a draw of the forward marginal), and the
  mean's by ``known``.
  :class:`Inpainting` knows some values (a mask); :class:`Colorization` knows the grey channel of a decoupled
  colour space (Appendix I.3): a fixed orthogonal 3x3 mixing of the colour channels whose first row is the grey
  direction ``(1, 1, 1) / sqrt(3)``, so that the grey channel is a coordinate of its own;
- a **score wrapper**, :class:`Guided`: ``model(x, sigma) + scale * guidance(x, sigma)`` with
  ``guidance = grad_x log p(y | x, sigma)`` (a classifier on noisy inputs, Appendix I.4): the score of
  ``p_sigma(x | y)`` when ``scale == 1``. It is a model, so every sampler takes it, the adaptive ODE included.

Song's code sets the constrained mean from the constrained *noisy* sample (``x_mean = x (1 - mask) + ...`` after
``x`` was replaced); here the free part of the mean stays the update's mean, which is what ``x_mean`` means (the
two agree on the known part and differ on the free part by the last update's noise).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from ._xp import Array, Namespace, array_namespace
from .updates import add_noise

__all__ = ["DECOUPLING", "Colorization", "Guided", "Inpainting", "couple", "decouple"]

Model = Callable[[Array, Array], Array]
Noise = Callable[[Array], Array]

_R3, _R6, _R2 = 1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)
# Rows: grey, then two colour-difference directions; orthonormal, so the inverse is the transpose. Song's ``M``
# (float32) is this matrix transposed, rounded.
DECOUPLING: tuple[tuple[float, float, float], ...] = (
    (_R3, _R3, _R3),
    (-2 * _R6, _R6, _R6),
    (0.0, _R2, -_R2),
)


def _mix(x: Array, rows: tuple[tuple[float, ...], ...], xp: Namespace) -> Array:
    """``out[:, j] = sum_i rows[j][i] x[:, i]`` over the channel axis 1 (of size 3)."""
    if x.ndim < 2 or x.shape[1] != 3:
        raise ValueError(f"expected colour images of shape (B, 3, ...), channels on axis 1, got {tuple(x.shape)}")
    channels = [x[:, i : i + 1, ...] for i in range(3)]
    mixed = []
    for row in rows:
        terms = [w * c for w, c in zip(row, channels) if w != 0.0]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        mixed.append(total)
    return xp.concat(mixed, axis=1)


def decouple(x: Array, *, xp: Namespace | None = None) -> Array:
    """Colour images ``(B, 3, ...)`` in the decoupled space: channel 0 the grey coordinate ``(R + G + B) / sqrt 3``,
    channels 1 and 2 colour differences (:data:`DECOUPLING`). Same shape, namespace and dtype."""
    xp = array_namespace(x) if xp is None else xp
    return _mix(x, DECOUPLING, xp)


def couple(y: Array, *, xp: Namespace | None = None) -> Array:
    """The inverse of :func:`decouple` (its transpose): decoupled ``(B, 3, ...)`` back to colour channels."""
    xp = array_namespace(y) if xp is None else xp
    transposed = tuple(tuple(DECOUPLING[j][i] for j in range(3)) for i in range(3))
    return _mix(y, transposed, xp)


def _check_like(x: Array, known: Array, what: str) -> None:
    if tuple(x.shape) != tuple(known.shape):
        raise ValueError(f"the sample has shape {tuple(x.shape)} but the {what} has shape {tuple(known.shape)}")


@dataclasses.dataclass(frozen=True)
class Inpainting:
    """Song et al.'s inpainting constraint (Appendix I.2): where ``mask`` is 1 the sample is ``known``.

    Parameters
    ----------
    known
        ``(B, ...)``, the data whose masked part is kept (the sample's shape, namespace and device).
    mask
        1 where ``known`` is kept, 0 where the sample is generated; broadcasts to ``known``'s shape.

    Calling it, ``(x, x_mean, sigma, noise) -> (x, x_mean)``, draws one ``noise(x)`` and sets the known part of
    ``x`` to ``known + sigma z`` and that of ``x_mean`` to ``known``.
    """

    known: Array
    mask: Array

    def __post_init__(self) -> None:
        known, mask = self.known, self.mask
        if getattr(known, "shape", None) is None or getattr(mask, "shape", None) is None:
            return  # rebuilt by a tracer from its leaves: checked when it was made
        xp = array_namespace(known, mask)
        if mask.ndim > known.ndim or any(m not in (1, k) for m, k in zip(mask.shape[::-1], known.shape[::-1])):
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the data's {tuple(known.shape)}")
        if mask.dtype != known.dtype:
            object.__setattr__(self, "mask", xp.astype(mask, known.dtype))

    def apply(self, x: Array, x_mean: Array, sigma: Any, noise: Noise, *, xp: Namespace | None = None
              ) -> tuple[Array, Array]:
        """``(x, x_mean)`` with the known part imposed at noise level ``sigma`` (one ``noise(x)`` draw)."""
        xp = array_namespace(x) if xp is None else xp
        _check_like(x, self.known, "known data")
        noisy = add_noise(self.known, noise(x), sigma, xp=xp)
        keep = 1 - self.mask
        return x * keep + noisy * self.mask, x_mean * keep + self.known * self.mask

    __call__ = apply


@dataclasses.dataclass(frozen=True)
class Colorization:
    """Song et al.'s colorization constraint (Appendix I.3): the grey coordinate of :func:`decouple` is known.

    Parameters
    ----------
    grey
        ``(B, 3, ...)`` colour images whose grey coordinate ``(R + G + B) / sqrt 3`` is kept: a grey-scale image
        with equal R, G, B channels (Song's input), or any colour image to recolour.

    Calling it, ``(x, x_mean, sigma, noise) -> (x, x_mean)``: in the decoupled space the grey channel of ``x``
    becomes the known one plus ``sigma z`` (``z`` the first channel of one ``noise`` draw like ``x``) and that of
    ``x_mean`` the known one; the colour channels are kept; then back to colour channels.
    """

    grey: Array

    def __post_init__(self) -> None:
        shape = getattr(self.grey, "shape", None)
        if shape is not None and (len(shape) < 2 or shape[1] != 3):
            raise ValueError(f"expected colour images of shape (B, 3, ...), channels on axis 1, got {tuple(shape)}")

    def apply(self, x: Array, x_mean: Array, sigma: Any, noise: Noise, *, xp: Namespace | None = None
              ) -> tuple[Array, Array]:
        """``(x, x_mean)`` with the grey coordinate imposed at noise level ``sigma`` (one ``noise`` draw)."""
        xp = array_namespace(x) if xp is None else xp
        if tuple(x.shape) != tuple(self.grey.shape):
            raise ValueError(f"the sample has shape {tuple(x.shape)} but the grey image has shape "
                             f"{tuple(self.grey.shape)}")
        known = decouple(self.grey, xp=xp)[:, :1, ...]  # (B, 1, ...): the grey coordinate
        noisy = add_noise(known, noise(x)[:, :1, ...], sigma, xp=xp)  # one draw like the sample, as every constraint
        y, y_mean = decouple(x, xp=xp), decouple(x_mean, xp=xp)
        y = xp.concat([noisy, y[:, 1:, ...]], axis=1)
        y_mean = xp.concat([known, y_mean[:, 1:, ...]], axis=1)
        return couple(y, xp=xp), couple(y_mean, xp=xp)

    __call__ = apply


class Guided:
    """A score with guidance (Song et al. 2021, eq. (14) and Appendix I.4): ``model(x, sigma) + scale *
    guidance(x, sigma)``, where ``guidance(x, sigma) = grad_x log p(y | x, sigma)`` for the wanted ``y``.

    Parameters
    ----------
    model
        ``model(x, sigma) -> grad_x log p_sigma(x)``, ``x`` of shape ``(B, ...)``, ``sigma`` ``(B,)``.
    guidance
        ``guidance(x, sigma) -> grad_x log p(y | x, sigma)``, ``x``'s shape (e.g. a noise-conditional
        classifier's input gradient, or :meth:`sdeve.oracles.GaussianMixture.class_score`).
    scale
        The guidance weight (a real number): 1 samples ``p(x | y)``, larger values sharpen it.

    The object is itself a model: pass it to any sampler.
    """

    def __init__(self, model: Model, guidance: Callable[[Array, Array], Array], scale: float = 1.0) -> None:
        if not callable(model) or not callable(guidance):
            raise TypeError("model and guidance must be callable as f(x, sigma) -> array of x's shape")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise TypeError(f"scale must be a finite real number, got {scale!r}")
        self.model, self.guidance, self.scale = model, guidance, float(scale)

    def __call__(self, x: Array, sigma: Array) -> Array:
        push = self.guidance(x, sigma)
        if tuple(getattr(push, "shape", ())) != tuple(x.shape):
            raise ValueError(f"guidance(x, sigma) must return x's shape {tuple(x.shape)}, got "
                             f"{type(push).__name__} of shape {tuple(getattr(push, 'shape', ()))}")
        return self.model(x, sigma) + self.scale * push
