"""The VE noise schedule as a value: built once on the host in float64, moved once to a namespace and cached.

Song et al. (2021), eq. (31) and Appendix C: ``sigma(t) = sigma_min * (sigma_max / sigma_min) ** t`` for
continuous ``t`` in ``[sampling_eps, 1]``, and ``N`` discrete levels spaced geometrically between ``sigma_min``
and ``sigma_max``. All noise levels are standard deviations in data units; times are dimensionless.

Host arithmetic is NumPy float64 (no framework's transcendental functions: they are slow on tiny arrays once
a thread pool is busy, and their digits differ from library to library). A :class:`Schedule` is immutable;
a scheduler swaps it in one assignment, so a step running in another thread sees the old one or the new one,
never a mix.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import struct
from typing import Any, NamedTuple

import numpy as np

from ._xp import Array, Namespace, array_namespace, index_dtype, namespace_name, schedule_dtype
from .backends import backend_for
from .config import MAX_TIMESTEPS
from .updates import reverse_diffusion_coefficients

__all__ = [
    "FLOAT64",
    "HOST_DTYPES",
    "MovedSchedule",
    "Rounding",
    "Schedule",
    "adjacent_sigmas",
    "check_num_steps",
    "continuous_sigmas",
    "discrete_sigmas",
    "host_index",
    "timestep_index",
    "timesteps",
]

MAX_STEPS = MAX_TIMESTEPS  # one maximum for every count of steps and levels (see sdeve.config)


def check_num_steps(num_inference_steps: Any, name: str = "num_inference_steps") -> int:
    """Return ``num_inference_steps`` as an ``int`` in ``[1, 10^8]``; raise ``TypeError``/``ValueError`` otherwise."""
    if isinstance(num_inference_steps, bool):
        raise TypeError(f"{name} must be an int >= 1, got {num_inference_steps!r}")
    try:
        steps = operator.index(num_inference_steps)
    except TypeError:
        integral = isinstance(num_inference_steps, numbers.Real) and math.isfinite(float(num_inference_steps)) \
            and float(num_inference_steps).is_integer()
        if integral:
            steps = int(num_inference_steps)
        else:
            raise TypeError(
                f"{name} must be an int >= 1, got {type(num_inference_steps).__name__} {num_inference_steps!r}"
            ) from None
    if steps < 1:
        raise ValueError(f"{name} must be >= 1, got {steps}")
    if steps > MAX_STEPS:
        raise ValueError(f"{name} must be <= {MAX_STEPS}, got {steps if steps < 10**30 else 'a larger number'}")
    return steps


# ---------------------------------------------------------------------- host formulas (float64 NumPy)
def _ramp(n: int) -> np.ndarray:
    """``k / (n - 1)`` for ``k = 0..n-1`` (``[0]`` when ``n == 1``), float64."""
    return np.linspace(0.0, 1.0, n, dtype=np.float64)


def timesteps_host(n: int, sampling_eps: float) -> np.ndarray:
    """``linspace(1, sampling_eps, n)``: ``(n,)`` float64, decreasing."""
    return np.linspace(1.0, float(sampling_eps), n, dtype=np.float64)


def sigma_of_t(t: Any, sigma_min: float, sigma_max: float) -> Any:
    """``sigma(t) = sigma_min * exp(t * (log sigma_max - log sigma_min))`` for a NumPy array or a float.

    Taken as ``exp(log sigma_min + t * (log sigma_max - log sigma_min))``, so that nothing overflows on the way
    to a finite level (``sigma_max / sigma_min`` may exceed the float range while both are finite).
    """
    low = math.log(sigma_min)
    log_ratio = math.log(sigma_max) - low
    if isinstance(t, float):
        return math.exp(low + t * log_ratio)
    return np.exp(low + np.asarray(t, dtype=np.float64) * log_ratio)


def levels_host(n: int, sigma_min: float, sigma_max: float) -> np.ndarray:
    """``exp(linspace(log sigma_min, log sigma_max, n))``: ``(n,)`` float64, increasing geometric levels."""
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return np.exp(np.linspace(lo, hi, n, dtype=np.float64))


HOST_DTYPES = ("float32", "float64")
_FLOAT32_EXACT = 2**24  # integers up to here are exact in float32
_FLOAT32_BYTES = struct.Struct("<f")


def _float32(value: float) -> float:
    """``value`` rounded to the nearest float32 (ties to even), as a Python float; ``value`` within float32's range."""
    return float(_FLOAT32_BYTES.unpack(_FLOAT32_BYTES.pack(value))[0])


def host_index(t: float, num_timesteps: int, dtype: str = "float64") -> int:
    """``floor(t * (M - 1))`` with the product taken in ``dtype`` (``"float32"`` or ``"float64"``: ``t``'s, Song's
    and diffusers' rule), clamped to ``[0, M - 1]``; NaN maps to 0 as in :func:`timestep_index`."""
    if 0.0 <= t <= 1.0 and (dtype == "float64" or (dtype == "float32" and num_timesteps <= _FLOAT32_EXACT)):
        # Python floats are float64; a float32 product is the exact float64 product of the two float32
        # operands rounded once to float32 (24 + 24 bits fit in 53). NumPy scalars cost microseconds a step.
        scaled = t * (num_timesteps - 1) if dtype == "float64" else _float32(_float32(t) * (num_timesteps - 1))
        return min(int(math.floor(scaled)), num_timesteps - 1)
    scaled = np.asarray(t, dtype=dtype) * np.asarray(num_timesteps - 1, dtype=dtype)
    value = float(np.floor(scaled))
    if math.isnan(value) or value < 0:
        return 0
    return num_timesteps - 1 if value >= num_timesteps - 1 else int(value)


# ---------------------------------------------------------------------- rounding policies
class Rounding:
    """How a schedule's host values are computed and held: float64 here. A front end that must reproduce
    another library's digits (the diffusers drop-in) subclasses it; everything else follows from the values."""

    dtype = "float64"

    def timesteps(self, n: int, sampling_eps: float) -> np.ndarray:
        """``linspace(1, sampling_eps, n)``."""
        return timesteps_host(n, sampling_eps)

    def sigmas(self, times: np.ndarray, sigma_min: float, sigma_max: float) -> np.ndarray:
        """``sigma(t)`` of each time."""
        return np.asarray(sigma_of_t(times.astype(np.float64), sigma_min, sigma_max))

    def levels(self, n: int, sigma_min: float, sigma_max: float) -> np.ndarray:
        """``n`` geometric levels."""
        return levels_host(n, sigma_min, sigma_max)

    def coefficients(self, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predictor's ``(g_j^2, g_j)`` per level, float64 (:func:`sdeve.updates.reverse_diffusion_coefficients`)."""
        wide = levels.astype(np.float64)
        below = np.concatenate([np.zeros(1), wide[:-1]])
        return reverse_diffusion_coefficients(wide, below, sqrt=np.sqrt)


FLOAT64 = Rounding()


# ---------------------------------------------------------------------- the schedule value
class MovedSchedule(NamedTuple):
    """A schedule's arrays in one namespace, device and dtype (see :meth:`Schedule.arrays`)."""

    timesteps: Array  # (M,)
    sigmas: Array  # (M,)
    discrete_sigmas: Array  # (N,)
    drift: Array  # (N,) g_j^2
    diffusion: Array  # (N,) g_j


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """Timesteps, noise levels and the predictor's per-level coefficients, on the host.

    Attributes
    ----------
    timesteps : numpy.ndarray, (M,)
        Continuous times from 1 down to ``sampling_eps``.
    sigmas : numpy.ndarray, (M,)
        ``sigma(t_i)``: the level the model is told at timestep ``i``.
    discrete_sigmas : numpy.ndarray, (N,)
        Geometric levels from ``sigma_min`` up to ``sigma_max``; the updates use these.
    drift, diffusion : numpy.ndarray, (N,) float64
        The reverse-diffusion predictor's ``g_j^2`` and ``g_j`` per level (Song et al., eq. (47)).
    dtype : str
        The dtype the arrays are handed out in where the namespace has it: ``"float64"``, or ``"float32"``
        for diffusers' rounding.
    """

    timesteps: np.ndarray
    sigmas: np.ndarray
    discrete_sigmas: np.ndarray
    drift: np.ndarray
    diffusion: np.ndarray
    dtype: str = "float64"
    _moved: dict[tuple[str, str, str], MovedSchedule] = dataclasses.field(default_factory=dict, init=False,
                                                                          repr=False)
    complete: bool = dataclasses.field(default=True, init=False, repr=False, compare=False)
    """A level for every timestep (``num_timesteps <= num_levels``): steps need one."""

    def __post_init__(self) -> None:
        # Read-only: the arrays are shared by every copy of the schedule and read as constants by tracers
        # (torch.compile reads them, and ``ndarray.item``, like constants only when they cannot change).
        # Each owns its memory: a view of another library's buffer (``tensor.numpy()``) is no constant to a tracer.
        for field in ("timesteps", "sigmas", "discrete_sigmas", "drift", "diffusion"):
            array = getattr(self, field)
            if not array.flags.owndata:
                array = np.array(array)
                object.__setattr__(self, field, array)
            array.flags.writeable = False
        # Plain ints: a step reads these, and torch.compile would turn a NumPy attribute read into a tensor.
        object.__setattr__(self, "_sizes", (int(self.timesteps.shape[0]), int(self.discrete_sigmas.shape[0])))
        # A level for every timestep: steps check this on every call.
        object.__setattr__(self, "complete", self.timesteps.shape[0] <= self.discrete_sigmas.shape[0])

    @classmethod
    def build(cls, num_timesteps: int, num_levels: int, sigma_min: float, sigma_max: float,
              sampling_eps: float, *, rounding: Rounding | None = None) -> Schedule:
        """``num_timesteps`` times ``linspace(1, sampling_eps, M)`` and ``num_levels`` geometric levels."""
        rounding = FLOAT64 if rounding is None else rounding
        times = rounding.timesteps(check_num_steps(num_timesteps), sampling_eps)
        return cls.with_levels(times, num_levels, sigma_min, sigma_max, rounding=rounding)

    @classmethod
    def with_levels(cls, times: np.ndarray, num_levels: int, sigma_min: float, sigma_max: float, *,
                    rounding: Rounding | None = None, reuse: Schedule | None = None) -> Schedule:
        """Levels for the given ``times``: ``sigma(t)`` of each and ``num_levels`` geometric levels. What
        ``reuse`` (the schedule being replaced) computed from the same settings is taken from it, not redone."""
        rounding = FLOAT64 if rounding is None else rounding
        settings = (check_num_steps(num_levels), float(sigma_min), float(sigma_max), rounding)
        made = getattr(reuse, "_made", None)  # (settings, times) that ``reuse``'s levels and sigmas came from
        if reuse is not None and made is not None and made[0] == settings:
            levels, drift, diffusion = reuse.discrete_sigmas, reuse.drift, reuse.diffusion
        else:
            levels = rounding.levels(settings[0], sigma_min, sigma_max)
            drift, diffusion = rounding.coefficients(levels)
        if reuse is not None and made is not None and made[0][1:] == settings[1:] and np.array_equal(made[1], times):
            sigmas = reuse.sigmas
        else:
            sigmas = rounding.sigmas(times, sigma_min, sigma_max)
        schedule = cls(times, sigmas, levels, drift, diffusion, rounding.dtype)
        object.__setattr__(schedule, "_made", (settings, schedule.timesteps))
        return schedule

    def with_timesteps(self, times: np.ndarray) -> Schedule:
        """This schedule with other timesteps; ``sigmas`` and the levels stay (diffusers' ``set_timesteps``)."""
        schedule = dataclasses.replace(self, timesteps=times)
        object.__setattr__(schedule, "_made", getattr(self, "_made", None))
        return schedule

    @property
    def num_timesteps(self) -> int:
        """``M``."""
        return self._sizes[0]  # type: ignore[attr-defined, no-any-return]

    @property
    def num_levels(self) -> int:
        """``N``."""
        return self._sizes[1]  # type: ignore[attr-defined, no-any-return]

    def predictor_coefficients(self, level: int) -> tuple[float, float]:
        """``(g^2, g)`` of ``level`` as Python floats: a scalar step's coefficients with no array built."""
        return self.drift.item(level), self.diffusion.item(level)

    def level(self, index: int) -> float:
        """``discrete_sigmas[index]`` as a Python float."""
        return float(self.discrete_sigmas.item(index))

    def arrays(self, xp: Namespace, device: Any = None) -> MovedSchedule:
        """The schedule in ``xp`` on ``device``, in :attr:`dtype` where available (else float32): built on the
        first call, cached after (but for arrays built inside a trace, which live only as long as it)."""
        dtype = schedule_dtype(xp, device) if self.dtype == "float64" else getattr(xp, self.dtype)
        key = (namespace_name(xp), str(device), str(dtype))
        moved = self._moved.get(key)
        if moved is None:
            # A copy: the host arrays are shared and read-only, and a moved array may be written by its user.
            moved = MovedSchedule(*(xp.asarray(getattr(self, name), dtype=dtype, device=device, copy=True)
                                    for name in MovedSchedule._fields))
            if not backend_for(xp).traced(moved.drift):
                # Two threads may both build; setdefault keeps one, so every caller sees the same arrays.
                moved = self._moved.setdefault(key, moved)
        return moved

    def __reduce__(self) -> tuple[Any, ...]:
        # The device caches and the lock do not pickle; a copy rebuilds them on demand.
        fields = ("timesteps", "sigmas", "discrete_sigmas", "drift", "diffusion")
        return (type(self), (*(np.array(getattr(self, name)) for name in fields), self.dtype))


# ---------------------------------------------------------------------- array-API forms (any namespace)
def timesteps(
    num_inference_steps: int, sampling_eps: float, *, xp: Namespace, device: Any = None, dtype: Any = None
) -> Array:
    """Continuous timesteps ``linspace(1, sampling_eps, N)`` in ``xp``: shape ``(N,)``, decreasing."""
    steps = check_num_steps(num_inference_steps)
    if not (0.0 < float(sampling_eps) < 1.0):
        raise ValueError(f"sampling_eps must lie in (0, 1), got {sampling_eps}")
    return xp.asarray(timesteps_host(steps, sampling_eps), dtype=dtype, device=device)


def continuous_sigmas(timesteps: Array, sigma_min: float, sigma_max: float, *, xp: Namespace | None = None) -> Array:
    """``sigma(t) = sigma_min * (sigma_max / sigma_min) ** t`` elementwise, in ``timesteps``' namespace."""
    xp = array_namespace(timesteps) if xp is None else xp
    low = math.log(float(sigma_min))
    return xp.exp(low + timesteps * (math.log(float(sigma_max)) - low))


def discrete_sigmas(
    num_levels: int, sigma_min: float, sigma_max: float, *, xp: Namespace, device: Any = None, dtype: Any = None
) -> Array:
    """Geometric noise levels ``exp(linspace(log sigma_min, log sigma_max, N))`` in ``xp``: ``(N,)``, increasing."""
    levels = levels_host(check_num_steps(num_levels), float(sigma_min), float(sigma_max))
    return xp.asarray(levels, dtype=dtype, device=device)


def adjacent_sigmas(discrete_sigmas: Array, index: Array | int, *, xp: Namespace | None = None) -> Array:
    """``discrete_sigmas[index - 1]``, and ``0`` where ``index == 0`` (the level below, for the predictor).

    ``index`` is an integer array (any shape) or a Python int; the result has its shape and the dtype of
    ``discrete_sigmas``. Never indexes at ``-1``: the gather is clamped before ``where`` picks the zero.
    """
    xp = array_namespace(discrete_sigmas) if xp is None else xp
    if isinstance(index, int):
        if index == 0:
            return xp.zeros_like(discrete_sigmas[0])
        return discrete_sigmas[index - 1]
    below = xp.take(discrete_sigmas, xp.maximum(index - 1, xp.zeros_like(index)), axis=0)
    return xp.where(index == 0, xp.zeros_like(below), below)


def timestep_index(t: Array, num_timesteps: int, *, xp: Namespace | None = None) -> Array:
    """The discrete level of continuous timestep ``t``: ``floor(t * (M - 1))``, clamped to ``[0, M - 1]``.

    ``t`` is a real array (any shape); the product is taken in ``t``'s dtype, as Song and diffusers do, so that
    an element of a float32 ``timesteps`` array maps to the same index everywhere (:func:`host_index` is the
    same rule on the host). The clamp only matters for values the caller could not validate (traced, lazy or
    on a device); NaN maps to level 0 rather than to an undefined integer cast.
    """
    xp = array_namespace(t) if xp is None else xp
    scaled = xp.floor(t * float(num_timesteps - 1))
    scaled = xp.clip(xp.where(xp.isnan(scaled), xp.zeros_like(scaled), scaled), 0.0, float(num_timesteps - 1))
    return xp.astype(scaled, index_dtype(xp, getattr(t, "device", None)))
