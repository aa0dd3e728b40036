"""``SdeVeConfig``: the scheduler's six settings, validated, and diffusers' ``scheduler_config.json``.

The defaults are diffusers' (and Song et al.'s VE settings for CIFAR-10 / CelebA-HQ). A config written by
diffusers loads here, and one written here loads in diffusers. JSON is parsed with :mod:`json` only: nothing
in a config file is ever executed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

__all__ = ["CONFIG_NAME", "CLASS_NAME", "ConfigError", "SdeVeConfig"]

CONFIG_NAME = "scheduler_config.json"
CLASS_NAME = "ScoreSdeVeScheduler"
# The diffusers version recorded in files we write: one that has ScoreSdeVeScheduler and reads this format.
DIFFUSERS_VERSION = "0.31.0"


class ConfigError(ValueError):
    """A scheduler config that is missing, malformed, foreign or out of range."""


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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    object.__setattr__(self, name, int(value))
                else:
                    raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        for name in self._FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
            object.__setattr__(self, name, float(value))
        self._check_ranges()

    def _check_ranges(self) -> None:
        if self.num_train_timesteps < 1:
            raise ConfigError(f"num_train_timesteps must be >= 1, got {self.num_train_timesteps}")
        if self.correct_steps < 0:
            raise ConfigError(f"correct_steps must be >= 0, got {self.correct_steps}")
        if not (math.isfinite(self.snr) and self.snr > 0):
            raise ConfigError(f"snr must be a finite number > 0, got {self.snr}")
        for name in ("sigma_min", "sigma_max"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")
        if not self.sigma_min < self.sigma_max:
            raise ConfigError(f"sigma_min must be < sigma_max, got sigma_min={self.sigma_min}, sigma_max={self.sigma_max}")
        if not (0.0 < self.sampling_eps < 1.0):
            raise ConfigError(f"sampling_eps must lie in the open interval (0, 1), got {self.sampling_eps}")

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
            raise ConfigError(f"{source}: _class_name is {class_name!r}; expected {CLASS_NAME!r}")
        known = set(cls.field_names())
        kwargs: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"{source}: keys must be strings, got {key!r}")
            if key.startswith("_"):
                continue
            if key in known:
                kwargs[key] = value
            else:
                unknown.append(key)
        if unknown:
            warnings.warn(f"{source}: ignoring unknown config keys {sorted(unknown)}", UserWarning, stacklevel=3)
        return cls(**kwargs)

    @classmethod
    def from_json_string(cls, text: str, *, source: str = "config") -> SdeVeConfig:
        """Parse ``scheduler_config.json`` text (JSON only; nothing in it is evaluated)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str], subfolder: str | None = None) -> SdeVeConfig:
        """Load from a ``scheduler_config.json`` file, or from a directory holding one (optionally ``subfolder``)."""
        path = os.fspath(path)
        if subfolder:
            path = os.path.join(path, subfolder)
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_NAME)
        if not os.path.isfile(path):
            raise ConfigError(
                f"no scheduler config at {path!r}: expected a directory with {CONFIG_NAME} or the file itself "
                f"(only local paths are read; nothing is downloaded)"
            )
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path!r}: {exc}") from None
        return cls.from_json_string(text, source=path)
