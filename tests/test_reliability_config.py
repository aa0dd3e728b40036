"""Every value a config can be given gets a clear answer (issue 12, classes 1-3 in ``sdeve.config``): a config,
or ``TypeError``/``ConfigError`` naming the setting. Never ``OverflowError``, ``RecursionError``, ``IndexError``
or a config that holds a value the schedule cannot use. The ranges are documented in :mod:`sdeve.config`."""

from __future__ import annotations

import decimal
import fractions
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sdeve
from sdeve.config import (
    CONFIG_NAME,
    MAX_CONFIG_BYTES,
    MAX_CORRECT_STEPS,
    MAX_SNR,
    MAX_TIMESTEPS,
    MIN_SIGMA,
    ConfigError,
    SdeVeConfig,
)

INT_FIELDS = ("num_train_timesteps", "correct_steps")
FLOAT_FIELDS = ("snr", "sigma_min", "sigma_max", "sampling_eps")
FIELDS = INT_FIELDS + FLOAT_FIELDS
DEFAULTS = SdeVeConfig().to_dict()


def _refused(exc: type[BaseException], field: str, **settings: Any) -> BaseException:
    """Build a config from ``settings``, expect ``exc`` naming ``field`` in a short message; return it."""
    with pytest.raises(exc) as info:
        SdeVeConfig(**{**DEFAULTS, **settings})
    message = str(info.value)
    assert field in message and len(message) < 300, message
    if isinstance(info.value, ConfigError):
        assert info.value.setting == field
    return info.value


# ---------------------------------------------------------------------------------------------- huge integers
@pytest.mark.parametrize("value", [MAX_TIMESTEPS + 1, 2**31, 2**63 - 1, 2**64, 10**400, 10**5000],
                         ids=["max+1", "2**31", "2**63-1", "2**64", "10**400", "10**5000"])
def test_huge_num_train_timesteps_is_a_config_error(value: int) -> None:
    _refused(ConfigError, "num_train_timesteps", num_train_timesteps=value)


def test_huge_num_train_timesteps_never_reaches_the_schedule() -> None:
    """``ScoreSdeVeScheduler(num_train_timesteps=2**63-1)`` raised ``IndexError`` from inside ``linspace``."""
    with pytest.raises(ConfigError, match="num_train_timesteps must be <= 1000000"):
        sdeve.ScoreSdeVeScheduler(num_train_timesteps=2**63 - 1)


@given(st.integers(min_value=MAX_TIMESTEPS + 1))
def test_any_too_large_count_is_refused(value: int) -> None:
    _refused(ConfigError, "num_train_timesteps", num_train_timesteps=value)
    if value > MAX_CORRECT_STEPS:
        _refused(ConfigError, "correct_steps", correct_steps=value)


@pytest.mark.parametrize("value", [MAX_CORRECT_STEPS + 1, 2**63 - 1, 10**400], ids=["max+1", "2**63-1", "10**400"])
def test_huge_correct_steps_is_a_config_error(value: int) -> None:
    _refused(ConfigError, "correct_steps", correct_steps=value)


def test_the_largest_counts_are_accepted() -> None:
    config = SdeVeConfig(num_train_timesteps=MAX_TIMESTEPS, correct_steps=MAX_CORRECT_STEPS)
    assert (config.num_train_timesteps, config.correct_steps) == (MAX_TIMESTEPS, MAX_CORRECT_STEPS)
    # a whole number written as a float (as JSON may) is an int, range-checked like one
    assert SdeVeConfig(num_train_timesteps=1e6).num_train_timesteps == 10**6
    _refused(ConfigError, "num_train_timesteps", num_train_timesteps=1e300)


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@given(value=st.integers(min_value=2**1024) | st.integers(max_value=-(2**1024)))
def test_an_int_beyond_float_range_is_a_config_error(field: str, value: int) -> None:
    _refused(ConfigError, field, **{field: value})


# ---------------------------------------------------------------------------------------------- snr
@pytest.mark.parametrize("value", [1.0000001, 2.0, 1e10, 1e200, sys.float_info.max])
def test_snr_above_one_is_refused(value: float) -> None:
    error = _refused(ConfigError, "snr", snr=value)
    assert "snr must be <= 1" in str(error)


@given(st.floats(min_value=MAX_SNR, max_value=sys.float_info.max, exclude_min=True))
def test_any_snr_above_the_maximum_is_refused(value: float) -> None:
    _refused(ConfigError, "snr", snr=value)


@given(st.floats(min_value=0.0, max_value=MAX_SNR, exclude_min=True))
def test_any_snr_in_range_is_kept_exactly(value: float) -> None:
    assert SdeVeConfig(snr=value).snr == value


# ---------------------------------------------------------------------------------------------- sigmas
def test_a_huge_sigma_ratio_is_a_valid_config() -> None:
    """The ratio ``1e400`` is beyond float64, but each level is not: the schedule takes logs first."""
    config = SdeVeConfig(sigma_min=1e-200, sigma_max=1e200)
    assert (config.sigma_min, config.sigma_max) == (1e-200, 1e200)
    assert SdeVeConfig.from_json_string(config.to_json_string()) == config
    extreme = SdeVeConfig(sigma_min=MIN_SIGMA, sigma_max=sys.float_info.max)
    assert math.isfinite(math.log(extreme.sigma_max) - math.log(extreme.sigma_min))


@pytest.mark.parametrize("value", [5e-324, 1e-310, math.nextafter(MIN_SIGMA, 0.0)])
def test_a_subnormal_sigma_min_is_refused(value: float) -> None:
    error = _refused(ConfigError, "sigma_min", sigma_min=value)
    assert "smallest normal float64" in str(error)


@given(st.floats(min_value=MIN_SIGMA, max_value=1e300), st.floats(min_value=1.0, max_value=1e300, exclude_min=True))
def test_any_positive_normal_sigma_pair_is_valid(sigma_min: float, ratio: float) -> None:
    sigma_max = sigma_min * ratio
    if math.isfinite(sigma_max) and sigma_max > sigma_min:
        assert SdeVeConfig(sigma_min=sigma_min, sigma_max=sigma_max).sigma_max == sigma_max


# ---------------------------------------------------------------------------------------------- kinds of number
EQUAL_HALVES = [0.5, np.float64(0.5), np.float32(0.5), np.float16(0.5), np.longdouble(0.5), fractions.Fraction(1, 2),
                decimal.Decimal("0.5"), type("MyFloat", (float,), {})(0.5)]


@pytest.mark.parametrize("value", EQUAL_HALVES, ids=lambda v: type(v).__name__)
def test_every_kind_of_real_number_is_accepted_alike(value: Any) -> None:
    """``np.float32(0.5)`` was refused where ``np.float64(0.5)`` was accepted."""
    config = SdeVeConfig(snr=value, sampling_eps=value)
    assert type(config.snr) is float and config == SdeVeConfig(snr=0.5, sampling_eps=0.5)


WHOLE_TENS = [10, np.int64(10), np.int32(10), np.uint8(10), 10.0, np.float32(10.0), fractions.Fraction(10),
              decimal.Decimal(10), type("MyInt", (int,), {})(10)]


@pytest.mark.parametrize("value", WHOLE_TENS, ids=lambda v: type(v).__name__)
def test_every_kind_of_whole_number_is_accepted_alike(value: Any) -> None:
    config = SdeVeConfig(num_train_timesteps=value, correct_steps=value)
    assert type(config.num_train_timesteps) is int and type(config.correct_steps) is int
    assert config == SdeVeConfig(num_train_timesteps=10, correct_steps=10)
    json.loads(config.to_json_string())  # plain Python numbers: the file is plain JSON


NOT_NUMBERS = [True, False, np.bool_(True), "0.5", b"0.5", None, 0.5 + 0j, np.complex64(0.5), np.array(0.5),
               np.array([0.5]), [0.5], {"value": 0.5}, object()]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", NOT_NUMBERS, ids=lambda v: type(v).__name__)
def test_values_that_are_not_numbers_are_a_type_error(field: str, value: Any) -> None:
    _refused(TypeError, field, **{field: value})


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value", [2.5, np.float32(2.5), math.inf, -math.inf, math.nan, fractions.Fraction(5, 2),
                                   decimal.Decimal("2.5"), decimal.Decimal("sNaN"), decimal.Decimal("Infinity")],
                         ids=repr)
def test_counts_that_are_not_whole_are_a_type_error(field: str, value: Any) -> None:
    _refused(TypeError, field, **{field: value})


NOT_FINITE_OR_POSITIVE = {
    "nan": lambda: math.nan, "inf": lambda: math.inf, "-inf": lambda: -math.inf, "-0.0": lambda: -0.0,
    "0.0": lambda: 0.0, "Decimal NaN": lambda: decimal.Decimal("NaN"), "Decimal sNaN": lambda: decimal.Decimal("sNaN"),
    "Decimal -Infinity": lambda: decimal.Decimal("-Infinity"), "float32 nan": lambda: np.float32("nan"),
    "longdouble beyond float64": lambda: np.longdouble(sys.float_info.max) * 16,
    "Fraction -1/10**400": lambda: fractions.Fraction(-1, 10**400),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("kind", list(NOT_FINITE_OR_POSITIVE))
def test_non_finite_and_non_positive_reals_are_a_config_error(field: str, kind: str) -> None:
    _refused(ConfigError, field, **{field: NOT_FINITE_OR_POSITIVE[kind]()})


def test_tiny_positive_values_that_are_still_meaningful_are_kept() -> None:
    """A subnormal snr or sampling_eps is a number the updates can use (a negligible corrector, a last time
    next to 0); a subnormal sigma is not (see test_a_subnormal_sigma_min_is_refused)."""
    assert SdeVeConfig(snr=5e-324, sampling_eps=5e-324).snr == 5e-324
    assert SdeVeConfig(sampling_eps=math.nextafter(1.0, 0.0)).sampling_eps < 1.0


def test_replace_names_unknown_settings() -> None:
    with pytest.raises(TypeError, match=r"unknown settings \['snrr'\]"):
        SdeVeConfig().replace(snrr=0.1)
    with pytest.raises(ConfigError, match="snr must be <= 1") as info:
        SdeVeConfig().replace(snr=1e200)
    assert info.value.setting == "snr"


# ---------------------------------------------------------------------------------------------- JSON
def _json(**settings: Any) -> str:
    return json.dumps({"_class_name": "ScoreSdeVeScheduler", **settings})


@pytest.mark.parametrize("field", FIELDS)
def test_a_401_digit_json_number_is_a_config_error(field: str) -> None:
    text = _json().replace("}", f', "{field}": {"9" * 401}}}')
    with pytest.raises(ConfigError, match=field):
        SdeVeConfig.from_json_string(text)


@pytest.mark.parametrize("digits", [4301, 100_000])
def test_a_json_number_of_more_digits_than_python_converts_is_a_config_error(digits: int) -> None:
    with pytest.raises(ConfigError, match="not a scheduler config"):
        SdeVeConfig.from_json_string('{"snr": ' + "1" * digits + "}")


@pytest.mark.parametrize("depth", [2_000, 100_000])
@pytest.mark.parametrize("kind", ["array", "object", "in a value"])
def test_deeply_nested_json_is_a_config_error(kind: str, depth: int) -> None:
    if kind == "array":
        text = "[" * depth + "]" * depth
    elif kind == "object":
        text = '{"a": ' * depth + "1" + "}" * depth
    else:
        text = '{"snr": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(ConfigError, match="nested too deeply"):
        SdeVeConfig.from_json_string(text)


def test_nesting_that_python_can_parse_is_named_in_a_short_message() -> None:
    with pytest.raises(TypeError, match="snr must be a real number, got list") as info:
        SdeVeConfig.from_json_string('{"snr": ' + "[" * 500 + "]" * 500 + "}")
    assert len(str(info.value)) < 200


def test_a_huge_text_or_file_is_refused_before_parsing(tmp_path: Path) -> None:
    padding = " " * MAX_CONFIG_BYTES
    with pytest.raises(ConfigError, match="too long for a scheduler config"):
        SdeVeConfig.from_json_string(_json() + padding)
    (tmp_path / CONFIG_NAME).write_text(_json() + padding, encoding="utf-8")
    with pytest.raises(ConfigError, match="too long for a scheduler config"):
        SdeVeConfig.load(tmp_path)


@pytest.mark.parametrize("text", [None, 3, ["{}"]], ids=repr)
def test_config_text_that_is_not_text_is_a_type_error(text: Any) -> None:
    with pytest.raises(TypeError, match="must be JSON text"):
        SdeVeConfig.from_json_string(text)


def test_bytes_that_are_not_unicode_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a scheduler config"):
        SdeVeConfig.from_json_string(b'{"snr": 0.1, "x": "\xff\xfe\xfd"}')


def test_file_messages_name_the_file_and_the_setting(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text(_json(snr=1e200), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scheduler_config\.json: snr must be <= 1") as info:
        SdeVeConfig.load(tmp_path)
    assert info.value.setting == "snr"


def test_a_bytes_path_loads_like_a_str_path(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text(_json(snr=0.2), encoding="utf-8")
    assert SdeVeConfig.load(str(tmp_path).encode()) == SdeVeConfig.load(tmp_path) == SdeVeConfig(snr=0.2)


def test_many_unknown_keys_give_a_short_warning() -> None:
    text = json.dumps({f"key{i}": i for i in range(10_000)})
    with pytest.warns(UserWarning, match=r"ignoring unknown config keys \['key0', .*, \.\.\.\]") as record:
        SdeVeConfig.from_json_string(text)
    assert len(str(record[0].message)) < 400


_json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(min_value=2**63) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=8,
)


@given(field=st.sampled_from(FIELDS), value=_json_values)
def test_any_json_value_gives_a_config_or_names_the_setting(field: str, value: Any) -> None:
    text = json.dumps({"_class_name": "ScoreSdeVeScheduler", field: value})
    try:
        config = SdeVeConfig.from_json_string(text)
    except (TypeError, ConfigError) as exc:
        assert field in str(exc) and len(str(exc)) < 400
        return
    assert SdeVeConfig.from_json_string(config.to_json_string()) == config


@given(
    steps=st.integers(1, MAX_TIMESTEPS), correct=st.integers(0, MAX_CORRECT_STEPS),
    snr=st.floats(0.0, MAX_SNR, exclude_min=True), sigma_min=st.floats(MIN_SIGMA, 1e300),
    log_ratio=st.floats(1e-9, 1400.0), eps=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
)
def test_any_valid_config_survives_a_json_round_trip(
    steps: int, correct: int, snr: float, sigma_min: float, log_ratio: float, eps: float
) -> None:
    sigma_max = math.exp(math.log(sigma_min) + log_ratio) if math.log(sigma_min) + log_ratio < 709.0 else math.inf
    if not (math.isfinite(sigma_max) and sigma_max > sigma_min):
        return
    config = SdeVeConfig(steps, snr, sigma_min, sigma_max, eps, correct)
    assert SdeVeConfig.from_json_string(config.to_json_string()) == config
