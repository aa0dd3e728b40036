"""diffusers' ``scheduler_config.json`` in and out: a file diffusers writes loads here with the same settings, one
written here loads in diffusers with the same settings, and bad files raise ``ValueError``/``TypeError`` with a
message that says what was expected (``sdeve.ConfigError`` is a ``ValueError``). Nothing in a file is executed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

import sdeve
from sdeve import CONFIG_NAME, ConfigError, SdeVeConfig

FIELDS = ("num_train_timesteps", "snr", "sigma_min", "sigma_max", "sampling_eps", "correct_steps")
SETTINGS = {
    "defaults": {},
    "diffusers test config": {"num_train_timesteps": 2000, "snr": 0.15, "sigma_min": 0.01, "sigma_max": 1348,
                              "sampling_eps": 1e-5},
    "all changed": {"num_train_timesteps": 10, "snr": 0.3, "sigma_min": 0.0001, "sigma_max": 1.0,
                    "sampling_eps": 1e-3, "correct_steps": 0},
    "odd floats": {"num_train_timesteps": 1, "snr": 1e-7, "sigma_min": 1e-30, "sigma_max": 1e30,
                   "sampling_eps": 0.999999, "correct_steps": 7},
}


@pytest.fixture(scope="module")
def diffusers() -> Any:
    return pytest.importorskip("diffusers")


def _torch_scheduler() -> Any:
    pytest.importorskip("torch")
    from sdeve_backends.torch import ScoreSdeVeScheduler

    return ScoreSdeVeScheduler


# Every way of loading a config here; each returns the six settings as a dict.
LOADERS: dict[str, Callable[..., dict[str, Any]]] = {
    "SdeVeConfig.load": lambda path, **kw: dict(SdeVeConfig.load(path, **kw)),
    "sdeve.ScoreSdeVeScheduler.from_pretrained": lambda path, **kw: dict(sdeve.ScoreSdeVeScheduler.from_pretrained(path, **kw).config),
    "torch drop-in from_pretrained": lambda path, **kw: dict(_torch_scheduler().from_pretrained(path, **kw).config),
}


def _expected(settings: dict[str, Any]) -> dict[str, Any]:
    return {**SdeVeConfig().to_dict(), **settings}


def _six(config: Any) -> dict[str, Any]:
    return {key: config[key] for key in FIELDS}


def _write(path: Path, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_NAME).write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- diffusers -> sdeve
@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("settings", list(SETTINGS))
def test_diffusers_file_loads_here(diffusers: Any, tmp_path: Path, loader: str, settings: str) -> None:
    diffusers.ScoreSdeVeScheduler(**SETTINGS[settings]).save_config(tmp_path)
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert written["_class_name"] == "ScoreSdeVeScheduler" and "_diffusers_version" in written
    loaded = LOADERS[loader](tmp_path)
    assert loaded == _expected(SETTINGS[settings]) == _six(written)
    # Types too: ints stay ints, floats are floats.
    assert all(type(loaded[k]) is int for k in ("num_train_timesteps", "correct_steps"))
    assert all(type(loaded[k]) is float for k in ("snr", "sigma_min", "sigma_max", "sampling_eps"))
    # The file itself (not only its directory) is accepted too.
    assert LOADERS[loader](tmp_path / CONFIG_NAME) == loaded


@pytest.mark.parametrize("loader", list(LOADERS))
def test_diffusers_pipeline_layout_with_subfolder(diffusers: Any, tmp_path: Path, loader: str) -> None:
    settings = SETTINGS["all changed"]
    diffusers.ScoreSdeVeScheduler(**settings).save_pretrained(tmp_path / "scheduler")
    assert LOADERS[loader](tmp_path, subfolder="scheduler") == _expected(settings)
    with pytest.raises(ValueError, match="no scheduler config"):
        LOADERS[loader](tmp_path, subfolder="unet")


def test_scheduler_built_from_diffusers_file_uses_its_settings(diffusers: Any, tmp_path: Path) -> None:
    """The loaded settings are the ones the scheduler runs with, not just the ones it reports."""
    settings = SETTINGS["all changed"]
    diffusers.ScoreSdeVeScheduler(**settings).save_config(tmp_path)
    scheduler = sdeve.ScoreSdeVeScheduler.from_pretrained(tmp_path)
    assert scheduler.init_noise_sigma == 1.0 and len(scheduler) == 10
    assert scheduler.timesteps.shape == (10,) and float(scheduler.timesteps[-1]) == pytest.approx(1e-3)
    assert float(scheduler.discrete_sigmas[0]) == pytest.approx(1e-4) and float(scheduler.discrete_sigmas[-1]) == pytest.approx(1.0)


def test_from_pretrained_overrides_and_hub_kwargs(diffusers: Any, tmp_path: Path) -> None:
    diffusers.ScoreSdeVeScheduler(snr=0.3).save_config(tmp_path)
    scheduler = sdeve.ScoreSdeVeScheduler.from_pretrained(tmp_path, correct_steps=2, local_files_only=True, revision="main")
    assert scheduler.config["snr"] == 0.3 and scheduler.config["correct_steps"] == 2
    theirs = diffusers.ScoreSdeVeScheduler.from_pretrained(tmp_path, correct_steps=2)
    assert _six(scheduler.config) == _six(theirs.config)


# --------------------------------------------------------------------------- sdeve -> diffusers
WRITERS: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "SdeVeConfig.save": lambda path, s: SdeVeConfig(**s).save(path),
    "sdeve.ScoreSdeVeScheduler.save_config": lambda path, s: sdeve.ScoreSdeVeScheduler(**s).save_config(path),
    "torch drop-in save_pretrained": lambda path, s: _torch_scheduler()(**s).save_pretrained(path),
}


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("settings", list(SETTINGS))
def test_file_written_here_loads_in_diffusers(diffusers: Any, tmp_path: Path, writer: str, settings: str) -> None:
    WRITERS[writer](tmp_path, SETTINGS[settings])
    written = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert written["_class_name"] == "ScoreSdeVeScheduler" and isinstance(written["_diffusers_version"], str)
    assert _six(written) == _expected(SETTINGS[settings])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unexpected key" complaints from diffusers
        theirs = diffusers.ScoreSdeVeScheduler.from_pretrained(tmp_path)
    assert _six(theirs.config) == _expected(SETTINGS[settings])
    assert _six(diffusers.ScoreSdeVeScheduler.load_config(tmp_path)) == _expected(SETTINGS[settings])
    # And it comes back here unchanged.
    assert dict(SdeVeConfig.load(tmp_path)) == _expected(SETTINGS[settings])


def test_diffusers_loads_ours_from_subfolder(diffusers: Any, tmp_path: Path) -> None:
    sdeve.ScoreSdeVeScheduler(**SETTINGS["all changed"]).save_pretrained(tmp_path / "scheduler")
    theirs = diffusers.ScoreSdeVeScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    assert _six(theirs.config) == _expected(SETTINGS["all changed"])


def test_written_file_is_diffusers_format(diffusers: Any, tmp_path: Path) -> None:
    """Same keys, same values, same layout (indented, sorted keys) as the file diffusers writes. (diffusers
    writes numbers as they were passed, ``1348`` or ``1348.0``; we always write floats, so use floats here.)"""
    settings = SETTINGS["all changed"]
    diffusers.ScoreSdeVeScheduler(**settings).save_config(tmp_path / "theirs")
    SdeVeConfig(**settings).save(tmp_path / "ours")
    theirs = json.loads((tmp_path / "theirs" / CONFIG_NAME).read_text())
    ours = json.loads((tmp_path / "ours" / CONFIG_NAME).read_text())
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k != "_diffusers_version"} == {
        k: v for k, v in theirs.items() if k != "_diffusers_version"}
    # Byte for byte but for the version string.
    version = f'"_diffusers_version": "{theirs["_diffusers_version"]}"'
    ours_text = (tmp_path / "ours" / CONFIG_NAME).read_text().replace(f'"_diffusers_version": "{ours["_diffusers_version"]}"', version)
    assert ours_text == (tmp_path / "theirs" / CONFIG_NAME).read_text()


def test_roundtrip_through_both(diffusers: Any, tmp_path: Path) -> None:
    settings = SETTINGS["odd floats"]
    SdeVeConfig(**settings).save(tmp_path / "a")
    diffusers.ScoreSdeVeScheduler.from_pretrained(tmp_path / "a").save_config(tmp_path / "b")
    assert dict(SdeVeConfig.load(tmp_path / "b")) == _expected(settings)


# --------------------------------------------------------------------------- bad files
GOOD = json.loads(SdeVeConfig().to_json_string())

BAD_FILES: dict[str, tuple[str, type[Exception], str]] = {
    # name: (file text, exception, message pattern)
    "empty file": ("", ValueError, "not valid JSON"),
    "not JSON": ("snr = 0.15\n", ValueError, "not valid JSON"),
    "truncated JSON": (json.dumps(GOOD)[:-5], ValueError, "not valid JSON"),
    "a JSON list": (json.dumps([GOOD]), ValueError, "expected a JSON object, got list"),
    "a JSON string": (json.dumps("ScoreSdeVeScheduler"), ValueError, "expected a JSON object, got str"),
    "a JSON number": ("1348", ValueError, "expected a JSON object"),
    "JSON null": ("null", ValueError, "expected a JSON object"),
    "another _class_name": (json.dumps({**GOOD, "_class_name": "DDPMScheduler"}), ValueError, "DDPMScheduler"),
    "snr a string": (json.dumps({**GOOD, "snr": "x"}), TypeError, "snr must be a real number"),
    "snr null": (json.dumps({**GOOD, "snr": None}), TypeError, "snr must be a real number"),
    "snr a list": (json.dumps({**GOOD, "snr": [0.15]}), TypeError, "snr"),
    "sigma_max a bool": (json.dumps({**GOOD, "sigma_max": True}), TypeError, "sigma_max"),
    "correct_steps a bool": (json.dumps({**GOOD, "correct_steps": True}), TypeError, "correct_steps must be an int"),
    "correct_steps a fraction": (json.dumps({**GOOD, "correct_steps": 1.5}), TypeError, "correct_steps must be an int"),
    "num_train_timesteps a string": (json.dumps({**GOOD, "num_train_timesteps": "2000"}), TypeError, "num_train_timesteps"),
    "sigma_min >= sigma_max": (json.dumps({**GOOD, "sigma_min": 2.0, "sigma_max": 1.0}), ValueError, "sigma_min must be < sigma_max"),
    "sigma_min == sigma_max": (json.dumps({**GOOD, "sigma_min": 1.0, "sigma_max": 1.0}), ValueError, "sigma_min must be < sigma_max"),
    "sigma_min zero": (json.dumps({**GOOD, "sigma_min": 0}), ValueError, "sigma_min must be a finite number > 0"),
    "sigma_min negative": (json.dumps({**GOOD, "sigma_min": -0.01}), ValueError, "sigma_min"),
    "sigma_max infinite": ('{"_class_name": "ScoreSdeVeScheduler", "sigma_max": Infinity}', ValueError, "sigma_max must be a finite"),
    "snr NaN": ('{"_class_name": "ScoreSdeVeScheduler", "snr": NaN}', ValueError, "snr must be a finite number > 0"),
    "snr zero": (json.dumps({**GOOD, "snr": 0.0}), ValueError, "snr must be a finite number > 0"),
    "snr negative": (json.dumps({**GOOD, "snr": -0.15}), ValueError, "snr"),
    "num_train_timesteps zero": (json.dumps({**GOOD, "num_train_timesteps": 0}), ValueError, "num_train_timesteps must be >= 1"),
    "correct_steps negative": (json.dumps({**GOOD, "correct_steps": -1}), ValueError, "correct_steps must be >= 0"),
    "sampling_eps zero": (json.dumps({**GOOD, "sampling_eps": 0.0}), ValueError, r"sampling_eps must lie in the open interval \(0, 1\)"),
    "sampling_eps one": (json.dumps({**GOOD, "sampling_eps": 1.0}), ValueError, "sampling_eps"),
    "sampling_eps above one": (json.dumps({**GOOD, "sampling_eps": 2.0}), ValueError, "sampling_eps"),
}


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_raises_with_a_clear_message(tmp_path: Path, loader: str, case: str) -> None:
    text, exc, message = BAD_FILES[case]
    _write(tmp_path, text)
    with pytest.raises(exc, match=message):
        LOADERS[loader](tmp_path)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("loader", list(LOADERS))
def test_missing_file(tmp_path: Path, loader: str) -> None:
    with pytest.raises(ValueError, match=f"no scheduler config at .*{CONFIG_NAME}"):
        LOADERS[loader](tmp_path)  # an empty directory
    with pytest.raises(ValueError, match="no scheduler config at"):
        LOADERS[loader](tmp_path / "does-not-exist")
    with pytest.raises(ValueError, match="nothing is downloaded"):
        LOADERS[loader]("google/ncsnpp-celebahq-256")  # a Hub name: local paths only


def test_undecodable_file(tmp_path: Path) -> None:
    tmp_path.joinpath(CONFIG_NAME).write_bytes(b'{"snr": 0.15, "x": "\xff\xfe"}')
    with pytest.raises(ValueError, match="cannot read"):
        SdeVeConfig.load(tmp_path)


@pytest.mark.parametrize("loader", list(LOADERS))
def test_unknown_keys_warn_and_are_ignored(tmp_path: Path, loader: str) -> None:
    _write(tmp_path, json.dumps({**GOOD, "snr": 0.2, "beta_schedule": "linear", "clip_sample": True}))
    with pytest.warns(UserWarning, match=r"ignoring unknown config keys \['beta_schedule', 'clip_sample'\]"):
        loaded = LOADERS[loader](tmp_path)
    assert loaded == _expected({"snr": 0.2})


def test_metadata_keys_are_not_unknown(tmp_path: Path) -> None:
    """diffusers' own underscore keys (_diffusers_version, _use_default_values, ...) load silently."""
    _write(tmp_path, json.dumps({**GOOD, "_use_default_values": ["snr"], "_name_or_path": "x"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dict(SdeVeConfig.load(tmp_path)) == _expected({})


def test_missing_settings_take_defaults(tmp_path: Path) -> None:
    _write(tmp_path, json.dumps({"_class_name": "ScoreSdeVeScheduler", "snr": 0.25}))
    assert dict(SdeVeConfig.load(tmp_path)) == _expected({"snr": 0.25})


_CODE = "__import__('pathlib').Path(MARKER).write_text('ran')"
PYTHON_TEXTS = {
    "a python statement": _CODE + "\n",
    "a python dict literal calling code": "{'snr': " + _CODE + "}\n",
    "a JSON string holding code": json.dumps({"snr": _CODE}),
}


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("case", list(PYTHON_TEXTS))
def test_python_code_in_a_file_is_never_executed(tmp_path: Path, loader: str, case: str) -> None:
    marker = tmp_path / "ran.txt"
    text = PYTHON_TEXTS[case].replace("MARKER", repr(str(marker)))
    if case != "a JSON string holding code":
        exec(compile(text, "<check>", "exec"), {})  # the text is live code: run as Python it writes the marker
        assert marker.exists()
        marker.unlink()
    _write(tmp_path / "cfg", text)
    with pytest.raises((ValueError, TypeError)) as info:
        LOADERS[loader](tmp_path / "cfg")
    assert "JSON" in str(info.value) or "snr must be a real number" in str(info.value)
    assert not marker.exists()


def test_save_into_a_file_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ValueError, match="is a file; expected a directory"):
        SdeVeConfig().save(target)
