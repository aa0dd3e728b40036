"""k-diffusion's ``sampling.py`` without the rest of the package.

The PyPI package's ``__init__`` imports its training stack (wandb, CLIP, kornia, torchvision...), while
``k_diffusion/sampling.py`` needs only torch, scipy, torchdiffeq, torchsde and tqdm, plus one helper from
``k_diffusion/utils.py`` (``append_dims``). Install it with ``pip install --no-deps k-diffusion`` and those
(the ``bench`` extra); this module then loads that one file under a stub package.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

_NAME = "_sdeve_kdiffusion"


def _append_dims(x: Any, target_dims: int) -> Any:
    """k-diffusion's ``utils.append_dims``: trailing singleton axes up to ``target_dims``."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    return x[(...,) + (None,) * missing]


def load() -> types.ModuleType:
    """``k_diffusion.sampling`` as a module; ``ImportError`` when k-diffusion (or a dependency of
    ``sampling.py``) is not installed."""
    loaded = sys.modules.get(f"{_NAME}.sampling")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed: pip install --no-deps k-diffusion "
                          "torchdiffeq torchsde trampoline scipy tqdm (or sdeve's bench extra)")
    root = list(spec.submodule_search_locations)[0]
    package = types.ModuleType(_NAME)
    package.__path__ = [root]
    utils = types.ModuleType(f"{_NAME}.utils")
    utils.append_dims = _append_dims  # type: ignore[attr-defined]
    sys.modules[_NAME] = package
    sys.modules[f"{_NAME}.utils"] = utils
    package.utils = utils  # type: ignore[attr-defined]
    file_spec = importlib.util.spec_from_file_location(f"{_NAME}.sampling", f"{root}/sampling.py")
    assert file_spec is not None and file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[f"{_NAME}.sampling"] = module
    try:
        file_spec.loader.exec_module(module)
    except ImportError:
        del sys.modules[f"{_NAME}.sampling"]
        raise
    return module


def version() -> str:
    """The installed k-diffusion version."""
    from importlib.metadata import version as _version  # noqa: PLC0415

    return _version("k-diffusion")
