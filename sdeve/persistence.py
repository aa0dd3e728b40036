"""Diffusers' persistence names (``save_config``, ``from_config``, ``from_pretrained``, ...) over
:class:`sdeve.SdeVeConfig`, for the scheduler front ends. Local files only: nothing is downloaded."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .config import SdeVeConfig

__all__ = ["DiffusersConfigMixin"]

# Keyword arguments of diffusers' from_pretrained that concern the Hub; accepted and ignored (we read local files).
_HUB_KWARGS = frozenset(
    {"cache_dir", "force_download", "resume_download", "proxies", "output_loading_info", "local_files_only",
     "token", "use_auth_token", "revision", "mirror", "user_agent", "_from_pipeline", "_commit_hash"}
)


class DiffusersConfigMixin:
    """``save_config``/``save_pretrained``/``from_config``/``from_pretrained``/``load_config`` for a class whose
    constructor takes the six settings of :class:`SdeVeConfig` (plus ``xp``/``device``/``corrector_norm``)."""

    _config: SdeVeConfig

    def save_config(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write ``scheduler_config.json`` (diffusers' format) into ``save_directory``."""
        if push_to_hub:
            raise ValueError("push_to_hub is not supported: sdeve reads and writes local files only")
        self._config.save(save_directory)

    def save_pretrained(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Same as :meth:`save_config`, as in diffusers."""
        self.save_config(save_directory, push_to_hub=push_to_hub, **kwargs)

    @classmethod
    def _split_kwargs(cls, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Split keyword arguments into config overrides, constructor options, and unused ones."""
        fields = set(SdeVeConfig.field_names())
        overrides = {k: v for k, v in kwargs.items() if k in fields}
        options = {k: v for k, v in kwargs.items() if k in ("xp", "device", "corrector_norm")}
        unused = {k: v for k, v in kwargs.items() if k not in fields and k not in options and k not in _HUB_KWARGS}
        return overrides, options, unused

    @classmethod
    def from_config(
        cls, config: SdeVeConfig | Mapping[str, Any] | None = None, return_unused_kwargs: bool = False, **kwargs: Any
    ) -> Any:
        """Build a scheduler from a config (an :class:`SdeVeConfig` or a mapping such as diffusers'
        ``scheduler.config``); keyword arguments override its values (and may give ``xp``/``device``)."""
        if config is None:
            base = SdeVeConfig()
        elif isinstance(config, SdeVeConfig):
            base = config
        elif isinstance(config, Mapping):
            base = SdeVeConfig.from_dict(dict(config))
        else:
            raise TypeError(f"config must be an SdeVeConfig or a mapping, got {type(config).__name__}")
        overrides, options, unused = cls._split_kwargs(kwargs)
        scheduler = cls(**base.replace(**overrides).to_dict(), **options)
        return (scheduler, unused) if return_unused_kwargs else scheduler

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        subfolder: str | None = None,
        return_unused_kwargs: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Load ``scheduler_config.json`` from a local directory (or the file itself), optionally in
        ``subfolder``. Keyword arguments override config values; Hub options are accepted and ignored."""
        config = SdeVeConfig.load(pretrained_model_name_or_path, subfolder=subfolder)
        return cls.from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)

    @classmethod
    def load_config(cls, pretrained_model_name_or_path: str | os.PathLike[str], subfolder: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The JSON dict of a local ``scheduler_config.json`` (validated), as diffusers' ``load_config``."""
        return SdeVeConfig.load(pretrained_model_name_or_path, subfolder=subfolder).to_json_dict()
