"""What :func:`sdeve.sample` resolves once, before any sampler runs: a :class:`Run`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .. import updates
from .._xp import Array, Namespace
from ..config import SdeVeConfig
from ..protocols import Backend, NoiseSource
from ._loop import Model

__all__ = ["Run"]


@dataclasses.dataclass
class Run:
    """A resolved call of :func:`sdeve.sample`.

    Attributes
    ----------
    model
        ``model(x, sigma) -> score``.
    config
        The scheduler's settings (``sigma_min``, ``sigma_max``, ``sampling_eps``, ``snr``, ``correct_steps``).
    num_steps
        ``N``: the sampler's steps (timesteps for PC, levels for the sigma-space samplers).
    strength
        SDEdit: the fraction of the ``N`` steps to run, from the level they start at.
    xp, device, dtype, backend
        Where the sample lives and the adapter for its library.
    noise
        The noise source; its first draw is already made: ``z0``, the start's standard normals.
    z0
        ``(B, ...)`` standard normals in ``dtype``: the start is ``sigma_start * z0`` (or ``init`` noised by it).
    init, mask
        SDEdit's start sample and inpainting's mask (1 where ``init`` is known), or ``None``.
    constraint
        What the loop imposes after every update (:mod:`sdeve.controllable`: inpainting, colorization), or
        ``None``.
    callback, progress, denoise, corrector_norm
        As :func:`sdeve.sample` takes them.
    compile_step, step_index
        A front end that compiles one step (``torch.compile``) sets these: the compiler, and what turns a step
        number into the index the compiled step takes (a device tensor, so that it does not recompile).
    strict
        Raise ``TypeError`` when the backend cannot compile the run (an untraceable model), rather than step.
    """

    model: Model
    config: SdeVeConfig
    num_steps: int
    strength: float
    xp: Namespace
    device: Any
    dtype: Any
    backend: Backend
    noise: NoiseSource
    z0: Array
    init: Array | None = None
    mask: Array | None = None
    constraint: Any = None
    callback: Callable[[dict[str, Any]], Any] | None = None
    progress: bool = False
    denoise: bool = True
    corrector_norm: str = "batch"
    compile_step: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    step_index: Callable[[int], Any] | None = None
    strict: bool = False

    @property
    def first_step(self) -> int:
        """The first step SDEdit keeps: the last ``round(strength * N)`` steps run (at least one)."""
        kept = min(self.num_steps, max(1, int(round(self.strength * self.num_steps))))
        return self.num_steps - kept

    def start_sample(self, level: Any) -> Array:
        """The sample the first kept step starts from: ``level * z0``, or ``init`` noised to ``level``."""
        if self.init is None:
            return self.z0 * level
        return updates.add_noise(self.init, self.z0, level, xp=self.xp)

    @property
    def disable(self) -> bool:
        """Whether the progress bar is off (k-diffusion's ``disable``)."""
        return not self.progress
