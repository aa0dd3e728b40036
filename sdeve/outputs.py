"""Step outputs that read like diffusers' ``BaseOutput``: by attribute, by key, by position, or as a tuple."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from ._xp import Array

__all__ = ["SchedulerOutput", "SdeVeOutput"]


class _Output:
    """Attribute, ``out["name"]``, ``out[0]`` and ``out.to_tuple()`` access over a dataclass's fields."""

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields in declaration order."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def keys(self) -> tuple[str, ...]:
        """The field names in declaration order."""
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


@dataclasses.dataclass
class SdeVeOutput(_Output):
    """Output of ``step_pred``.

    Attributes
    ----------
    prev_sample
        The sample at the next (lower) noise level, ``(B, ...)``: feed it to the model next.
    prev_sample_mean
        Its mean before the noise term: after the last step, the denoised sample.
    """

    prev_sample: Array
    prev_sample_mean: Array


@dataclasses.dataclass
class SchedulerOutput(_Output):
    """Output of ``step_correct``: ``prev_sample``, the corrected sample ``(B, ...)``."""

    prev_sample: Array
