"""sdeve: the variance-exploding SDE sampler (Song et al. 2021), written once against the Python array API
standard.

The core (this package) imports no framework and draws no random numbers: noise is an argument of every
update, and each front end resolves a noise source once from the generator the user passed, through the
adapter of the sample's library (:mod:`sdeve.backends` finds adapters by entry point; the project's own are in
``sdeve_backends``).
"""

from __future__ import annotations

from . import controllable, oracles
from .backends import backend_for, register_backend
from .config import CONFIG_NAME, ConfigError, SdeVeConfig
from .outputs import SchedulerOutput, SdeVeOutput
from .likelihood import LogLikelihood, decode, encode, log_likelihood
from .protocols import Backend, BackendBase, NoiseSource
from .samplers import SAMPLERS
from .sampling import sample
from .scheduler import ScoreSdeVeScheduler
from .state import SamplerState
from .updates import add_noise, corrector_step_size, corrector_update, predictor_update

__version__ = "0.1.0"

__all__ = [
    "CONFIG_NAME",
    "SAMPLERS",
    "Backend",
    "BackendBase",
    "ConfigError",
    "LogLikelihood",
    "NoiseSource",
    "SamplerState",
    "SchedulerOutput",
    "ScoreSdeVeScheduler",
    "SdeVeConfig",
    "SdeVeOutput",
    "__version__",
    "add_noise",
    "backend_for",
    "corrector_step_size",
    "controllable",
    "corrector_update",
    "decode",
    "encode",
    "log_likelihood",
    "oracles",
    "predictor_update",
    "register_backend",
    "sample",
]
