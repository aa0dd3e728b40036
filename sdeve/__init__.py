"""sdeve: the variance-exploding SDE predictor-corrector scheduler (Song et al. 2021), written once against
the Python array API standard.

The core (this package) imports no framework and draws no random numbers: noise is an argument of every
update. Framework adapters (random numbers, devices, framework-native front ends) live in ``sdeve_backends``.
"""

from __future__ import annotations

from .config import CONFIG_NAME, ConfigError, SdeVeConfig
from .outputs import SchedulerOutput, SdeVeOutput
from .scheduler import ScoreSdeVeScheduler
from .sampler import SamplerState, sample
from .updates import add_noise, corrector_step_size, corrector_update, predictor_update

__version__ = "0.1.0"

__all__ = [
    "CONFIG_NAME",
    "ConfigError",
    "SamplerState",
    "SchedulerOutput",
    "ScoreSdeVeScheduler",
    "SdeVeConfig",
    "SdeVeOutput",
    "__version__",
    "add_noise",
    "corrector_step_size",
    "corrector_update",
    "predictor_update",
    "sample",
]
