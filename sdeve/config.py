"""``SdeVeConfig``: the scheduler's six settings, validated, and diffusers' ``scheduler_config.json``.

The defaults are diffusers' (and Song et al.'s VE settings for CIFAR-10 / CelebA-HQ). A config written by
diffusers loads here, and one written here loads in diffusers. JSON is parsed with :mod:`json` only: nothing
in a config file is ever executed.

Every value either builds a config or raises, naming the setting: ``TypeError`` for a value of the wrong kind,
:class:`ConfigError` (a ``ValueError``) for one out of range or a file that is not a config. The ranges, and
why each bound is where it is:

- ``num_train_timesteps`` in ``[1, MAX_TIMESTEPS]`` (10**6). A float32 timestep ``t`` picks its level as
  ``floor(t * (M - 1))``, with a rounding error of up to ``(M - 1) * 2**-24`` levels: below 0.06 at 10**6, a
  whole level near 1.7e7, where some levels could no longer be reached. The schedule's arrays take 8 MB each.
- ``correct_steps`` in ``[0, MAX_CORRECT_STEPS]`` (1000). Annealed Langevin dynamics (NCSN) uses 100 per
  level; a compiled loop unrolls them into its program.
- ``snr`` in ``(0, MAX_SNR]`` (1). The corrector's drift is ``snr`` times its noise, and its step size is
  about ``2 snr**2 sigma**2``: on a Gaussian target a step maps the sample's mean ``x`` to
  ``(1 - 2 snr**2) x``, which stops contracting at ``snr = 1`` and grows geometrically beyond.
- ``sigma_min``, ``sigma_max``: ``MIN_SIGMA <= sigma_min < sigma_max < inf``. The levels are the float64 values
  ``exp(linspace(log sigma_min, log sigma_max, N))``; a subnormal ``sigma_min`` (below ``MIN_SIGMA``, the
  smallest normal float64) has lost its precision. Any ratio is fine: ``1e-200`` to ``1e200`` is a valid
  config.
- ``sampling_eps`` in ``(0, 1)``: the timesteps run from 1 down to it.

Ints and reals of any library are accepted (``numpy.int64``, ``numpy.float32``, ``Fraction``, ``Decimal``);
bools, strings, ``None``, complex numbers and arrays are not. A config says nothing about the dtype of the
samples: a run in float32 must also keep ``sigma_max ** 2`` (the predictor's variance) finite in float32,
which is for the code that knows the dtype to check.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math
import numbers
import operator
import os
import reprlib
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

__all__ = [
    "CONFIG_NAME",
    "CLASS_NAME",
    "MAX_CONFIG_BYTES",
    "MAX_CORRECT_STEPS",
    "MAX_SNR",
    "MAX_TIMESTEPS",
    "MIN_SIGMA",
    "ConfigError",
    "SdeVeConfig",
]

CONFIG_NAME = "scheduler_config.json"
CLASS_NAME = "ScoreSdeVeScheduler"
# The diffusers version recorded in files we write: one that has ScoreSdeVeScheduler and reads this format.
DIFFUSERS_VERSION = "0.31.0"

# The ranges of the settings (see the module docstring for why each bound is where it is).
MAX_TIMESTEPS = 10**6
MAX_CORRECT_STEPS = 1000
MAX_SNR = 1.0
MIN_SIGMA = sys.float_info.min  # the smallest normal float64
# diffusers writes a few hundred bytes; a larger file is not a scheduler config (and is not read into memory).
MAX_CONFIG_BYTES = 1 << 20

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 48
_SHORT.maxlevel = 3


class ConfigError(ValueError):
    """A scheduler config that is missing, malformed, foreign or out of range.

    ``setting`` names the offending setting (``"snr"``...) when there is one, else it is ``None``.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


def _show(value: Any) -> str:
    """``value`` for an error message: short whatever it is (huge integers, long strings, deep nesting)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**21:
        digits = int(math.log10(abs(value))) + 1  # str() refuses integers of more than 4300 digits
        digits -= abs(value) < 10 ** (digits - 1)  # log10 rounds up just below a power of ten
        return f"an integer of {digits} digits"
    return _SHORT.repr(value)


def _is_bool(value: Any) -> bool:
    """True for ``bool`` and array-library booleans (``numpy.bool_``...), which are not numbers here."""
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b"


def _as_int(name: str, value: Any) -> int:
    """``value`` as an exact ``int``: ints of any library, or a real number with an integer value (``2000.0``)."""
    if not _is_bool(value):
        try:
            return int(operator.index(value))
        except TypeError:
            pass
        if isinstance(value, numbers.Rational) and value.denominator == 1:
            return int(value.numerator)
        if isinstance(value, (numbers.Real, decimal.Decimal)) and getattr(value, "ndim", 0) == 0:
            try:
                as_float = float(value)
            except (ValueError, OverflowError):  # a signalling NaN; a Fraction beyond float range
                as_float = math.nan
            if as_float.is_integer():
                return int(as_float)
    raise TypeError(f"{name} must be an int, got {type(value).__name__} {_show(value)}")


def _as_float(name: str, value: Any) -> float:
    """``value`` as a Python ``float``: real numbers of any library (not bools, not arrays), ``Decimal``."""
    real = isinstance(value, (numbers.Real, decimal.Decimal)) and getattr(value, "ndim", 0) == 0
    if _is_bool(value) or not real:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_show(value)}")
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"{name} must be a finite number, got {_show(value)} (beyond the float64 range)",
                          name) from None
    except ValueError:  # Decimal("sNaN")
        raise ConfigError(f"{name} must be a finite number, got {_show(value)}", name) from None


@dataclasses.dataclass(frozen=True)
class SdeVeConfig(Mapping[str, Any]):
    """The settings of the VE SDE predictor-corrector scheduler (Song et al. 2021, Table 5 / Alg. 2).

    Parameters
    ----------
    num_train_timesteps
        Number of noise levels used in training; the schedule the constructor builds has this length. ``>= 1``.
    snr
        Target signal-to-noise ratio ``r`` of the Langevin corrector (Song et al., Alg. 5). ``> 0``.
    sigma_min, sigma_max
        Smallest and largest noise standard deviation, in data units. ``0 < sigma_min < sigma_max < inf``.
    sampling_eps
        The last continuous timestep; timesteps run from 1 down to it. In ``(0, 1)``.
    correct_steps
        Langevin corrector steps before each predictor step. ``>= 0``.

    The config is immutable and also reads as a mapping (``config["snr"]``, ``dict(config)``), as diffusers'
    ``FrozenDict`` config does.
    """

    num_train_timesteps: int = 2000
    snr: float = 0.15
    sigma_min: float = 0.01
    sigma_max: float = 1348.0
    sampling_eps: float = 1e-5
    correct_steps: int = 1

    _INT_FIELDS: ClassVar[tuple[str, ...]] = ("num_train_timesteps", "correct_steps")
    _FLOAT_FIELDS: ClassVar[tuple[str, ...]] = ("snr", "sigma_min", "sigma_max", "sampling_eps")

    def __post_init__(self) -> None:
        for name in self._INT_FIELDS:
            object.__setattr__(self, name, _as_int(name, getattr(self, name)))
        for name in self._FLOAT_FIELDS:
            object.__setattr__(self, name, _as_float(name, getattr(self, name)))
        self._check_counts()
        self._check_reals()

    def _check_counts(self) -> None:
        steps, correct = self.num_train_timesteps, self.correct_steps
        if steps < 1:
            raise ConfigError(f"num_train_timesteps must be >= 1, got {_show(steps)}", "num_train_timesteps")
        if steps > MAX_TIMESTEPS:
            raise ConfigError(
                f"num_train_timesteps must be <= {MAX_TIMESTEPS} (a float32 timestep cannot tell more levels apart), "
                f"got {_show(steps)}", "num_train_timesteps")
        if correct < 0:
            raise ConfigError(f"correct_steps must be >= 0, got {_show(correct)}", "correct_steps")
        if correct > MAX_CORRECT_STEPS:
            raise ConfigError(f"correct_steps must be <= {MAX_CORRECT_STEPS}, got {_show(correct)}", "correct_steps")

    def _check_reals(self) -> None:
        if not (math.isfinite(self.snr) and self.snr > 0):
            raise ConfigError(f"snr must be a finite number > 0, got {self.snr}", "snr")
        if self.snr > MAX_SNR:
            raise ConfigError(
                f"snr must be <= {MAX_SNR:g} (beyond it the Langevin corrector diverges), got {self.snr:g}", "snr"
            )
        for name in ("sigma_min", "sigma_max"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}", name)
        if self.sigma_min < MIN_SIGMA:
            raise ConfigError(
                f"sigma_min must be >= {MIN_SIGMA!r} (the smallest normal float64), got {self.sigma_min!r}", "sigma_min"
            )
        if not self.sigma_min < self.sigma_max:
            raise ConfigError(
                f"sigma_min must be < sigma_max, got sigma_min={self.sigma_min}, sigma_max={self.sigma_max}",
                "sigma_min",
            )
        if not (0.0 < self.sampling_eps < 1.0):
            raise ConfigError(f"sampling_eps must lie in the open interval (0, 1), got {self.sampling_eps}",
                              "sampling_eps")

    # --- mapping view, as diffusers' FrozenDict config -------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in self.field_names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.field_names())

    def __len__(self) -> int:
        return len(self.field_names())

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The six setting names, in diffusers' order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> SdeVeConfig:
        """A copy with ``changes`` applied (validated)."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise TypeError(f"unknown settings {unknown}; the settings are {list(self.field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The six settings as a plain dict."""
        return {name: getattr(self, name) for name in self.field_names()}

    # --- diffusers' scheduler_config.json --------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        """The settings with diffusers' metadata keys (``_class_name``, ``_diffusers_version``)."""
        return {"_class_name": CLASS_NAME, "_diffusers_version": DIFFUSERS_VERSION, **self.to_dict()}

    def to_json_string(self) -> str:
        """The config as diffusers writes it: indented JSON with sorted keys and a trailing newline."""
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, save_directory: str | os.PathLike[str]) -> str:
        """Write ``scheduler_config.json`` into ``save_directory`` (created if needed); return the file's path."""
        if os.path.isfile(save_directory):
            raise ConfigError(f"save_directory {os.fspath(save_directory)!r} is a file; expected a directory")
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_NAME)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json_string())
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> SdeVeConfig:
        """Build a config from a mapping such as a parsed ``scheduler_config.json``.

        Keys starting with ``_`` are metadata: ``_class_name``, when present, must be ``ScoreSdeVeScheduler``.
        Unknown keys warn and are ignored. Missing settings take their defaults.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        class_name = data.get("_class_name", CLASS_NAME)
        if class_name not in (CLASS_NAME, "FlaxScoreSdeVeScheduler"):
            raise ConfigError(f"{source}: _class_name is {_show(class_name)}; expected {CLASS_NAME!r}")
        known = set(cls.field_names())
        kwargs: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"{source}: keys must be strings, got {_show(key)}")
            if key.startswith("_"):
                continue
            if key in known:
                kwargs[key] = value
            else:
                unknown.append(key)
        if unknown:
            names = ", ".join(_show(k) for k in sorted(unknown)[:10]) + (", ..." if len(unknown) > 10 else "")
            warnings.warn(f"{source}: ignoring unknown config keys [{names}]", UserWarning, stacklevel=3)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}", exc.setting) from None
        except TypeError as exc:
            raise TypeError(f"{source}: {exc}") from None

    @classmethod
    def from_json_string(cls, text: str | bytes, *, source: str = "config") -> SdeVeConfig:
        """Parse ``scheduler_config.json`` text (JSON only; nothing in it is evaluated).

        Text longer than ``MAX_CONFIG_BYTES``, nesting deeper than Python's recursion limit and integers of
        more digits than Python converts (``sys.get_int_max_str_digits``) raise :class:`ConfigError`.
        """
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(f"{source}: the config must be JSON text (str or bytes), got {type(text).__name__}")
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{source}: {len(text)} characters is too long for a scheduler config "
                              f"(at most {MAX_CONFIG_BYTES})")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc})") from None
        except RecursionError:
            raise ConfigError(f"{source}: not a scheduler config: JSON nested too deeply") from None
        except ValueError as exc:  # an int of too many digits; bytes that are not UTF-8/16/32
            raise ConfigError(f"{source}: not a scheduler config: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str], subfolder: str | None = None) -> SdeVeConfig:
        """Load from a ``scheduler_config.json`` file, or from a directory holding one (optionally ``subfolder``)."""
        path = os.fsdecode(path)
        if subfolder:
            path = os.path.join(path, os.fsdecode(subfolder))
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_NAME)
        if not os.path.isfile(path):
            raise ConfigError(
                f"no scheduler config at {path!r}: expected a directory with {CONFIG_NAME} or the file itself "
                f"(only local paths are read; nothing is downloaded)"
            )
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(MAX_CONFIG_BYTES + 1)  # bounded: the file may be huge, or still growing
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path!r}: {exc}") from None
        return cls.from_json_string(text, source=path)
