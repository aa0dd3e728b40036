"""``sdeve_backends.torch.ScoreSdeVeScheduler`` is a drop-in for ``diffusers.ScoreSdeVeScheduler``.

Parity: from the same ``torch.Generator`` seeds the drop-in gives diffusers' numbers (float32, ``rtol 1e-5``
relative to the largest magnitude of diffusers' result) in every step method, over diffusers' own test configs,
sample ranks 2..5, batch sizes 1..8, scalar, 0-d and per-example timesteps, single generators, lists of them and
torch's global generator; it reproduces diffusers' ``test_full_loop_no_noise`` figures and runs inside diffusers'
``ScoreSdeVePipeline`` with the same images out.

Documented differences (each a fix): ``step_correct`` keeps half-precision dtypes, ``add_noise`` takes any rank,
an all-zero score leaves the sample unchanged in ``step_correct``, a CUDA generator works in both steps, and the
timestep index never makes a host round-trip on CUDA.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conformance.tolerances import assert_close, rtol_for  # noqa: E402
from sdeve_backends.torch import ScoreSdeVeScheduler  # noqa: E402

PARITY_RTOL = 1e-5  # float32 parity with diffusers, relative to the largest |value| of diffusers' result

# diffusers' tests/schedulers/test_scheduler_score_sde_ve.py: get_scheduler_config and the configs of
# test_timesteps and test_sigmas.
BASE_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 2000, "snr": 0.15, "sigma_min": 0.01, "sigma_max": 1348, "sampling_eps": 1e-5,
}
CONFIGS = {
    "default": {},
    "train10": {"num_train_timesteps": 10},
    "train100": {"num_train_timesteps": 100},
    "train1000": {"num_train_timesteps": 1000},
    "sigmas-1e-4-1": {"sigma_min": 0.0001, "sigma_max": 1},
    "sigmas-1e-3-100": {"sigma_min": 0.001, "sigma_max": 100},
    "sigmas-1e-2-1000": {"sigma_min": 0.01, "sigma_max": 1000},
}
# Ranks 2..5, batch sizes 1..8.
SHAPES = [(1, 7), (3, 5, 6), (4, 3, 8, 8), (8, 2, 3, 5), (2, 3, 4, 4, 2)]
TIMESTEPS = [0.0, 1.0, 0.1, 0.5, 0.75, "0-d tensor", "per-example", "per-example float64"]


@pytest.fixture(scope="module")
def diffusers() -> Any:
    return pytest.importorskip("diffusers")


def _config(name: str) -> dict[str, Any]:
    return {**BASE_CONFIG, **CONFIGS[name]}


def _pair(diffusers: Any, **config: Any) -> tuple[Any, Any]:
    """(ours, diffusers') schedulers with the same config."""
    return ScoreSdeVeScheduler(**config), diffusers.ScoreSdeVeScheduler(**config)


def _data(shape: tuple[int, ...], seed: int = 1, dtype: Any = None) -> tuple[Any, Any]:
    """A sample in [0, 1) and a score of either sign, reproducible."""
    gen = torch.Generator().manual_seed(seed)
    sample = torch.rand(shape, generator=gen)
    model_output = torch.randn(shape, generator=gen) * 0.1
    if dtype is not None:
        sample, model_output = sample.to(dtype), model_output.to(dtype)
    return sample, model_output


def _timestep(kind: Any, batch: int) -> Any:
    if kind == "0-d tensor":
        return torch.tensor(0.3)
    if kind == "per-example":
        return torch.linspace(0.0, 1.0, batch)
    if kind == "per-example float64":
        return torch.linspace(1.0, 0.05, batch, dtype=torch.float64)
    return kind


def _generator(kind: str, batch: int, seed: int = 0) -> Any:
    """A fresh generator argument; for ``"global"`` reseed torch's global generator and return ``None``."""
    if kind == "seed":
        return torch.Generator().manual_seed(seed)
    if kind == "list":
        return [torch.Generator().manual_seed(seed + 10 * i) for i in range(batch)]
    torch.manual_seed(seed)
    return None


def _match(ours: Any, theirs: Any, rtol: float = PARITY_RTOL) -> float:
    """Ours equals diffusers': same type, shape, dtype and device, values within ``rtol`` of the largest |value|."""
    assert isinstance(ours, torch.Tensor), type(ours)
    return assert_close(ours, theirs.double().cpu().numpy(), like=theirs, rtol=rtol)


# --------------------------------------------------------------------------- diffusers' full loop
def _dummy_sample_deter() -> Any:
    num_elems = 4 * 3 * 8 * 8
    sample = torch.arange(num_elems).reshape(3, 8, 8, 4) / num_elems
    return sample.permute(3, 0, 1, 2)


def _full_loop(scheduler: Any, return_dict: bool = True) -> Any:
    """diffusers' ``test_full_loop_no_noise``, verbatim but for the scheduler."""
    model = lambda sample, t: sample * t / (t + 1)  # noqa: E731 - diffusers' dummy model
    scheduler.set_sigmas(3)
    scheduler.set_timesteps(3)
    sample = _dummy_sample_deter()
    generator = torch.manual_seed(0)
    for i, t in enumerate(scheduler.timesteps):
        sigma_t = scheduler.sigmas[i]
        for _ in range(scheduler.config.correct_steps):
            with torch.no_grad():
                model_output = model(sample, sigma_t)
            out = scheduler.step_correct(model_output, sample, generator=generator, return_dict=return_dict)
            sample = out.prev_sample if return_dict else out[0]
        with torch.no_grad():
            model_output = model(sample, sigma_t)
        output = scheduler.step_pred(model_output, t, sample, generator=generator, return_dict=return_dict)
        sample, _ = (output.prev_sample, output.prev_sample_mean) if return_dict else output
    return sample


@pytest.mark.parametrize("return_dict", [True, False])
def test_full_loop_no_noise_figures(return_dict: bool) -> None:
    sample = _full_loop(ScoreSdeVeScheduler(**BASE_CONFIG), return_dict)
    assert sample.dtype == torch.float32 and sample.shape == (4, 3, 8, 8)
    result_sum = torch.sum(torch.abs(sample))
    result_mean = torch.mean(torch.abs(sample))
    assert np.isclose(result_sum.item(), 14372758528.0)
    assert np.isclose(result_mean.item(), 18714530.0)


def test_full_loop_no_noise_side_by_side(diffusers: Any) -> None:
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    _match(_full_loop(ours), _full_loop(theirs))
    # The loop leaves both schedulers in the same (quirky) state: sigmas still follow the 2000 timesteps.
    assert ours.sigmas.shape == theirs.sigmas.shape == (2000,)
    _match(ours.sigmas, theirs.sigmas)


# --------------------------------------------------------------------------- step-by-step parity
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("timestep", TIMESTEPS, ids=str)
def test_step_pred_matches_diffusers(diffusers: Any, config: str, shape: tuple[int, ...], timestep: Any) -> None:
    ours, theirs = _pair(diffusers, **_config(config))
    sample, model_output = _data(shape)
    t = _timestep(timestep, shape[0])
    mine = ours.step_pred(model_output, t, sample, generator=torch.manual_seed(0))
    ref = theirs.step_pred(model_output, t, sample, generator=torch.manual_seed(0))
    for a, b in ((mine.prev_sample, ref.prev_sample), (mine.prev_sample_mean, ref.prev_sample_mean)):
        # diffusers' result takes a float64 timestep's dtype; ours keeps the sample's.
        assert a.dtype == sample.dtype
        _match(a, b.to(sample.dtype))


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("generator", ["seed", "list", "global"])
def test_step_correct_matches_diffusers(diffusers: Any, config: str, shape: tuple[int, ...], generator: str) -> None:
    ours, theirs = _pair(diffusers, **_config(config))
    sample, model_output = _data(shape, seed=2)
    mine = ours.step_correct(model_output, sample, generator=_generator(generator, shape[0]))
    ref = theirs.step_correct(model_output, sample, generator=_generator(generator, shape[0]))
    _match(mine.prev_sample, ref.prev_sample)
    # The step changes the sample (noise is drawn): the comparison is not between two copies of the input.
    assert not torch.equal(mine.prev_sample, sample)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("generator", ["list", "global"])
def test_step_pred_generators_match_diffusers(diffusers: Any, shape: tuple[int, ...], generator: str) -> None:
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    ours.set_timesteps(10), theirs.set_timesteps(10)
    ours.set_sigmas(10), theirs.set_sigmas(10)
    sample, model_output = _data(shape, seed=3)
    for t in (ours.timesteps[0], ours.timesteps[4], ours.timesteps[-1]):
        mine = ours.step_pred(model_output, t, sample, generator=_generator(generator, shape[0]))
        ref = theirs.step_pred(model_output, t, sample, generator=_generator(generator, shape[0]))
        _match(mine.prev_sample, ref.prev_sample)
        _match(mine.prev_sample_mean, ref.prev_sample_mean)


def test_generator_list_draws_one_example_each() -> None:
    """A list of generators gives example b the numbers generator b alone would give it (randn_tensor's rule)."""
    scheduler = ScoreSdeVeScheduler(**BASE_CONFIG)
    sample, model_output = _data((3, 2, 4, 4))
    batch = scheduler.step_pred(model_output, 0.5, sample, generator=_generator("list", 3)).prev_sample
    for b in range(3):
        alone = scheduler.step_pred(model_output[b:b + 1], 0.5, sample[b:b + 1],
                                    generator=torch.Generator().manual_seed(10 * b)).prev_sample
        torch.testing.assert_close(batch[b:b + 1], alone, rtol=0, atol=0)


def test_return_dict_false_tuples_match_diffusers(diffusers: Any) -> None:
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    sample, model_output = _data((2, 3, 4, 4))
    for method, args in (("step_pred", (model_output, 0.4, sample)), ("step_correct", (model_output, sample))):
        mine = getattr(ours, method)(*args, generator=torch.manual_seed(5), return_dict=False)
        ref = getattr(theirs, method)(*args, generator=torch.manual_seed(5), return_dict=False)
        assert isinstance(mine, tuple) and isinstance(ref, tuple)
        assert len(mine) == len(ref) == (2 if method == "step_pred" else 1)
        for a, b in zip(mine, ref):
            _match(a, b)
        # The dict output holds the same fields, in the same order.
        as_dict = getattr(ours, method)(*args, generator=torch.manual_seed(5))
        ref_dict = getattr(theirs, method)(*args, generator=torch.manual_seed(5))
        assert list(as_dict.keys()) == list(ref_dict.keys())
        for a, b in zip(as_dict.to_tuple(), mine):
            assert torch.equal(a, b)


# --------------------------------------------------------------------------- schedule arrays
_SCHEDULE_CALLS = {
    "constructor": [],
    "pipeline order": [("set_timesteps", (10,), {}), ("set_sigmas", (10,), {})],
    "diffusers test order (sigmas follow old timesteps)": [("set_sigmas", (3,), {}), ("set_timesteps", (3,), {})],
    "overrides": [("set_timesteps", (7,), {"sampling_eps": 1e-3}),
                  ("set_sigmas", (7,), {"sigma_min": 0.1, "sigma_max": 50.0, "sampling_eps": 1e-2})],
    "sigmas then more timesteps": [("set_sigmas", (12,), {}), ("set_timesteps", (5,), {}), ("set_sigmas", (5,), {})],
}


@pytest.mark.parametrize("config", ["train100", "default"])
@pytest.mark.parametrize("calls", list(_SCHEDULE_CALLS))
def test_schedule_arrays_match_diffusers(diffusers: Any, config: str, calls: str) -> None:
    ours, theirs = _pair(diffusers, **_config(config))
    for name, args, kwargs in [("init", (), {}), *_SCHEDULE_CALLS[calls]]:
        if name != "init":
            getattr(ours, name)(*args, **kwargs)
            getattr(theirs, name)(*args, **kwargs)
        for attr in ("timesteps", "sigmas", "discrete_sigmas"):
            mine, ref = getattr(ours, attr), getattr(theirs, attr)
            assert isinstance(mine, torch.Tensor), (name, attr)
            assert mine.shape == ref.shape and mine.dtype == ref.dtype == torch.float32, (name, attr, mine.shape, ref.shape)
            torch.testing.assert_close(mine, ref, rtol=PARITY_RTOL, atol=0, msg=f"{attr} after {name}")


def test_set_sigmas_follows_current_timesteps(diffusers: Any) -> None:
    """The quirk diffusers' own test relies on: set_sigmas(3) keeps sigmas on the 2000 constructor timesteps."""
    ours = ScoreSdeVeScheduler(**BASE_CONFIG)
    ours.set_sigmas(3)
    assert ours.timesteps.shape == (2000,) and ours.sigmas.shape == (2000,) and ours.discrete_sigmas.shape == (3,)
    ours.set_timesteps(3)
    assert ours.timesteps.shape == (3,) and ours.sigmas.shape == (2000,)
    torch.testing.assert_close(ours.discrete_sigmas, torch.tensor([0.01, 0.01 * 134800**0.5, 1348.0]), rtol=1e-6, atol=0)


def test_set_timesteps_device_argument(diffusers: Any) -> None:
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    ours.set_timesteps(4, device="cpu"), theirs.set_timesteps(4, device="cpu")
    assert ours.timesteps.device == theirs.timesteps.device == torch.device("cpu")
    _match(ours.timesteps, theirs.timesteps)


@pytest.mark.parametrize("config", ["default", "train10"])
def test_get_adjacent_sigma_matches_diffusers(diffusers: Any, config: str) -> None:
    ours, theirs = _pair(diffusers, **_config(config))
    last = _config(config)["num_train_timesteps"] - 1
    for indices in ([0, 1, 2, last], [last], [0]):
        index = torch.tensor(indices)
        t = index.to(torch.float32) / last
        mine, ref = ours.get_adjacent_sigma(index, t), theirs.get_adjacent_sigma(index, t)
        _match(mine, ref)
        assert (mine[index == 0] == 0).all() and (mine[index > 0] > 0).all()


# --------------------------------------------------------------------------- attributes and methods
@pytest.mark.parametrize("config", ["default", "train10", "sigmas-1e-4-1"])
def test_attributes_match_diffusers(diffusers: Any, config: str) -> None:
    ours, theirs = _pair(diffusers, **_config(config), correct_steps=2)
    assert ours.order == theirs.order == 1
    assert ours.init_noise_sigma == theirs.init_noise_sigma == _config(config)["sigma_max"]
    assert len(ours) == len(theirs) == _config(config)["num_train_timesteps"]
    assert ours.config.correct_steps == theirs.config.correct_steps == 2
    for key in ("num_train_timesteps", "snr", "sigma_min", "sigma_max", "sampling_eps", "correct_steps"):
        assert getattr(ours.config, key) == getattr(theirs.config, key) == ours.config[key], key
    assert {k: v for k, v in dict(theirs.config).items() if not k.startswith("_")} == {
        k: v for k, v in dict(ours.config).items() if not k.startswith("_")}
    sample, _ = _data((2, 3, 4, 4))
    assert ours.scale_model_input(sample, 0.5) is sample
    assert torch.equal(ours.scale_model_input(sample), theirs.scale_model_input(sample))


def test_from_config_both_ways(diffusers: Any) -> None:
    """``OtherScheduler.from_config(scheduler.config)``, diffusers' way of swapping schedulers, works both ways."""
    config = {**BASE_CONFIG, "snr": 0.2, "correct_steps": 3}
    theirs = diffusers.ScoreSdeVeScheduler(**config)
    ours = ScoreSdeVeScheduler.from_config(theirs.config)
    assert isinstance(ours, ScoreSdeVeScheduler)
    back = diffusers.ScoreSdeVeScheduler.from_config(ours.config)
    assert isinstance(back, diffusers.ScoreSdeVeScheduler)
    for key, value in config.items():
        assert ours.config[key] == back.config[key] == value, key
    # Another diffusers scheduler reads the shared keys of our config, as it would diffusers'.
    ddpm = diffusers.DDPMScheduler.from_config(ours.config)
    assert ddpm.config.num_train_timesteps == 2000


def test_copy_and_pickle_keep_the_schedule(diffusers: Any) -> None:
    """``copy.deepcopy(pipe.scheduler)`` and pickling work, as with diffusers' class, and the copy steps alike."""
    ours = ScoreSdeVeScheduler(**BASE_CONFIG, correct_steps=2)
    ours.set_timesteps(6)
    ours.set_sigmas(6)
    sample, model_output = _data((2, 3, 4, 4))
    ours.step_pred(model_output, ours.timesteps[1], sample)  # fills the per-device cache
    want = ours.step_pred(model_output, ours.timesteps[1], sample, generator=torch.manual_seed(0)).prev_sample
    for copied in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert isinstance(copied, ScoreSdeVeScheduler) and copied.config == ours.config
        assert torch.equal(copied.timesteps, ours.timesteps) and torch.equal(copied.discrete_sigmas, ours.discrete_sigmas)
        got = copied.step_pred(model_output, ours.timesteps[1], sample, generator=torch.manual_seed(0)).prev_sample
        assert torch.equal(got, want)
    assert copy.deepcopy(ours.config) == ours.config


def test_config_is_read_only() -> None:
    scheduler = ScoreSdeVeScheduler()
    with pytest.raises(Exception):
        scheduler.config.snr = 1.0  # type: ignore[misc]
    with pytest.raises(Exception):
        scheduler.config["snr"] = 1.0  # type: ignore[index]
    assert scheduler.config.snr == 0.15


# --------------------------------------------------------------------------- add_noise
def test_add_noise_4d_matches_diffusers(diffusers: Any) -> None:
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    original, noise = _data((4, 3, 8, 8), seed=4)
    indices = torch.tensor([0, 5, 1000, 1999])
    _match(ours.add_noise(original, noise, indices), theirs.add_noise(original, noise, indices))
    # noise=None draws with torch.randn_like from the global generator, as diffusers does.
    torch.manual_seed(9)
    mine = ours.add_noise(original, None, indices)
    torch.manual_seed(9)
    _match(mine, theirs.add_noise(original, None, indices))


@pytest.mark.parametrize("shape", [(3, 7), (3, 2, 5), (3, 2, 3, 2, 2), (1, 4)], ids=str)
def test_add_noise_any_rank(diffusers: Any, shape: tuple[int, ...]) -> None:
    """diffusers' add_noise is 4-D only; ours equals it on the same data folded into (B, -1, 1, 1)."""
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    original, noise = _data(shape, seed=5)
    indices = torch.tensor([7, 1500, 1999][: shape[0]])
    folded = (shape[0], -1, 1, 1)
    ref = theirs.add_noise(original.reshape(folded), noise.reshape(folded), indices).reshape(shape)
    _match(ours.add_noise(original, noise, indices), ref)


# --------------------------------------------------------------------------- the documented fixes
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5), (3, 2, 4, 4, 2)], ids=str)
def test_half_precision_keeps_dtype_and_matches_float32(diffusers: Any, dtype: str, shape: tuple[int, ...]) -> None:
    """diffusers returns float32 for a half sample; ours keeps the dtype, and its values are diffusers' float32
    result rounded (within half-precision tolerance)."""
    half = getattr(torch, dtype)
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    sample, model_output = _data(shape, seed=6, dtype=half)
    mine = ours.step_correct(model_output, sample, generator=torch.manual_seed(0)).prev_sample
    # diffusers draws the corrector's noise in float32 whatever the dtype: upcast inputs give its float32 result.
    ref = theirs.step_correct(model_output.float(), sample.float(), generator=torch.manual_seed(0)).prev_sample
    assert mine.dtype == half
    assert ref.dtype == torch.float32
    assert_close(mine, ref.double().numpy(), rtol=rtol_for(half))
    # step_pred draws its noise in the sample's dtype in both; diffusers promotes the result to float32.
    pred = ours.step_pred(model_output, 0.6, sample, generator=torch.manual_seed(1))
    ref_pred = theirs.step_pred(model_output, 0.6, sample, generator=torch.manual_seed(1))
    for mine_out, ref_out in ((pred.prev_sample, ref_pred.prev_sample), (pred.prev_sample_mean, ref_pred.prev_sample_mean)):
        assert mine_out.dtype == half
        assert_close(mine_out, ref_out.double().numpy(), rtol=rtol_for(half))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(1, 6), (3, 3, 4, 4), (2, 2, 3, 2, 2)], ids=str)
def test_zero_score_leaves_sample_unchanged(dtype: str, shape: tuple[int, ...]) -> None:
    """The corrector's step size would be infinite (diffusers returns NaN); ours returns the sample as it was."""
    sample, _ = _data(shape, dtype=getattr(torch, dtype))
    scheduler = ScoreSdeVeScheduler(**BASE_CONFIG)
    out = scheduler.step_correct(torch.zeros_like(sample), sample, generator=torch.manual_seed(0)).prev_sample
    assert out.dtype == sample.dtype
    assert torch.equal(out, sample)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_at_sigma_max_with_a_realistic_score(diffusers: Any, dtype: str) -> None:
    """Sampling N(0, 0.5^2) data at sigma_max=1348 in half precision: the score ~ -x/sigma^2 is ~1e-3 and
    sigma^2 ~ 1.8e6 overflows float16; no step may overflow or give NaN, and each step equals diffusers' float32
    step within half-precision tolerance."""
    half = getattr(torch, dtype)
    data_var = 0.25
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    steps = 20
    for s in (ours, theirs):
        s.set_timesteps(steps)
        s.set_sigmas(steps)
    gen = torch.Generator().manual_seed(0)
    sample = (torch.randn((2, 3, 16, 16), generator=gen) * ours.init_noise_sigma).to(half)
    assert torch.isfinite(sample).all()
    for i, t in enumerate(ours.timesteps):
        sigma = float(ours.sigmas[i])
        score = lambda x: (-x.float() / (data_var + sigma**2)).to(half)  # noqa: E731
        model_output = score(sample)
        assert torch.isfinite(model_output).all() and (model_output != 0).any()
        corrected = ours.step_correct(model_output, sample, generator=torch.manual_seed(i)).prev_sample
        ref = theirs.step_correct(model_output.float(), sample.float(), generator=torch.manual_seed(i)).prev_sample
        assert corrected.dtype == half and torch.isfinite(corrected).all(), i
        assert_close(corrected, ref.double().numpy(), rtol=rtol_for(half))
        model_output = score(corrected)
        out = ours.step_pred(model_output, t, corrected, generator=torch.manual_seed(100 + i))
        ref_out = theirs.step_pred(model_output, t, corrected, generator=torch.manual_seed(100 + i))
        for mine, want in ((out.prev_sample, ref_out.prev_sample), (out.prev_sample_mean, ref_out.prev_sample_mean)):
            assert mine.dtype == half and torch.isfinite(mine).all(), i
            assert_close(mine, want.double().numpy(), rtol=rtol_for(half))
        sample = out.prev_sample
    # The sampler did its job: the denoised sample has about the data's spread, not sigma_max's.
    std = float(out.prev_sample_mean.float().std())
    assert 0.3 < std < 0.8, std


def test_more_timesteps_than_sigmas_raises_value_error(diffusers: Any) -> None:
    """diffusers indexes past discrete_sigmas (an IndexError for late timesteps); ours says what to call."""
    ours = ScoreSdeVeScheduler(**BASE_CONFIG)
    ours.set_sigmas(3)
    ours.set_timesteps(10)
    sample, model_output = _data((2, 4))
    with pytest.raises(ValueError, match="set_sigmas"):
        ours.step_pred(model_output, 0.9, sample)


# --------------------------------------------------------------------------- inside diffusers' pipeline
PIPELINE_CONFIG = {**BASE_CONFIG, "sigma_max": 0.5, "sigma_min": 0.01, "snr": 0.05}  # images not all clamped


@pytest.fixture(scope="module")
def unet(diffusers: Any) -> Any:
    torch.manual_seed(0)
    model = diffusers.UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
        norm_num_groups=4, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    )
    return model.eval()


def _pipeline_images(diffusers: Any, unet: Any, scheduler: Any, generator: Any, batch_size: int = 2, steps: int = 4) -> Any:
    pipe = diffusers.ScoreSdeVePipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe(batch_size=batch_size, num_inference_steps=steps, generator=generator, output_type="np").images


def _assert_images_match(mine: Any, ref: Any) -> None:
    assert isinstance(mine, np.ndarray) and mine.shape == ref.shape and mine.dtype == ref.dtype
    # Not all pixels are clamped to 0 or 1: the comparison sees the sampler's values.
    assert ((ref > 0.01) & (ref < 0.99)).mean() > 0.2
    np.testing.assert_allclose(mine, ref, rtol=0, atol=PARITY_RTOL)


@pytest.mark.parametrize(("generator", "correct_steps"), [("seed", 1), ("list", 2)])
def test_pipeline_images_match_diffusers(diffusers: Any, unet: Any, generator: str, correct_steps: int) -> None:
    config = {**PIPELINE_CONFIG, "correct_steps": correct_steps}
    mine = _pipeline_images(diffusers, unet, ScoreSdeVeScheduler(**config), _generator(generator, 2))
    ref = _pipeline_images(diffusers, unet, diffusers.ScoreSdeVeScheduler(**config), _generator(generator, 2))
    assert mine.shape == (2, 8, 8, 3)
    _assert_images_match(mine, ref)


def test_pipeline_default_config_matches_diffusers(diffusers: Any, unet: Any) -> None:
    """The default sigma_max=1348 saturates a random network's images; they still agree pixel for pixel."""
    mine = _pipeline_images(diffusers, unet, ScoreSdeVeScheduler(), torch.manual_seed(3), batch_size=1, steps=3)
    ref = _pipeline_images(diffusers, unet, diffusers.ScoreSdeVeScheduler(), torch.manual_seed(3), batch_size=1, steps=3)
    np.testing.assert_allclose(mine, ref, rtol=0, atol=PARITY_RTOL)


def test_pipeline_scheduler_swap_by_from_config(diffusers: Any, unet: Any) -> None:
    """diffusers' idiom ``pipe.scheduler = Cls.from_config(pipe.scheduler.config)``, both ways."""
    pipe = diffusers.ScoreSdeVePipeline(unet=unet, scheduler=diffusers.ScoreSdeVeScheduler(**PIPELINE_CONFIG))
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(batch_size=2, num_inference_steps=4, generator=torch.manual_seed(1), output_type="np").images
    pipe.scheduler = ScoreSdeVeScheduler.from_config(pipe.scheduler.config)
    assert isinstance(pipe.scheduler, ScoreSdeVeScheduler)
    mine = pipe(batch_size=2, num_inference_steps=4, generator=torch.manual_seed(1), output_type="np").images
    _assert_images_match(mine, ref)
    pipe.scheduler = diffusers.ScoreSdeVeScheduler.from_config(pipe.scheduler.config)
    assert isinstance(pipe.scheduler, diffusers.ScoreSdeVeScheduler)
    again = pipe(batch_size=2, num_inference_steps=4, generator=torch.manual_seed(1), output_type="np").images
    np.testing.assert_array_equal(again, ref)


def test_pipeline_save_and_load(diffusers: Any, unet: Any, tmp_path: Any, caplog: Any) -> None:
    """What works offline with a local directory.

    diffusers' ``DiffusionPipeline.save_pretrained`` saves only subclasses of its own base classes: it skips our
    scheduler (logging "cannot be saved") and records ``"scheduler": [null, null]`` in ``model_index.json``, and
    ``from_pretrained`` refuses a model index naming ``sdeve_backends.torch``. So: save the scheduler beside the
    pipeline with its own ``save_pretrained`` and hand it to ``from_pretrained`` (``scheduler=``). The config we
    write is diffusers' format: a model index naming diffusers' class loads diffusers' scheduler from it.
    """
    config = {**PIPELINE_CONFIG, "snr": 0.07}
    pipe = diffusers.ScoreSdeVePipeline(unet=unet, scheduler=ScoreSdeVeScheduler(**config))
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(batch_size=2, num_inference_steps=4, generator=torch.manual_seed(2), output_type="np").images
    with caplog.at_level(logging.WARNING):
        pipe.save_pretrained(tmp_path)
    pipe.scheduler.save_pretrained(tmp_path / "scheduler")
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["scheduler"] == [None, None]
    scheduler_file = json.loads((tmp_path / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler_file["_class_name"] == "ScoreSdeVeScheduler" and scheduler_file["snr"] == 0.07

    # 1. Our scheduler passed in by hand.
    loaded = diffusers.ScoreSdeVePipeline.from_pretrained(
        tmp_path, scheduler=ScoreSdeVeScheduler.from_pretrained(tmp_path, subfolder="scheduler"))
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.scheduler, ScoreSdeVeScheduler) and loaded.scheduler.config.snr == 0.07
    mine = loaded(batch_size=2, num_inference_steps=4, generator=torch.manual_seed(2), output_type="np").images
    _assert_images_match(mine, ref)

    # 2. diffusers' own scheduler from the file we wrote, by naming its class in the model index.
    index["scheduler"] = ["diffusers", "ScoreSdeVeScheduler"]
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    theirs = diffusers.ScoreSdeVePipeline.from_pretrained(tmp_path)
    theirs.set_progress_bar_config(disable=True)
    assert isinstance(theirs.scheduler, diffusers.ScoreSdeVeScheduler) and theirs.scheduler.config.snr == 0.07
    ref2 = theirs(batch_size=2, num_inference_steps=4, generator=torch.manual_seed(2), output_type="np").images
    _assert_images_match(ref2, ref)

    # 3. Our class from a pipeline directory diffusers saved.
    theirs.save_pretrained(tmp_path / "saved_by_diffusers")
    ours = ScoreSdeVeScheduler.from_pretrained(tmp_path / "saved_by_diffusers", subfolder="scheduler")
    assert dict(ours.config) == {k: v for k, v in theirs.scheduler.config.items() if not k.startswith("_")}

    # A model index naming our module is refused by diffusers (our class has no diffusers base class).
    index["scheduler"] = ["sdeve_backends.torch", "ScoreSdeVeScheduler"]
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError):
        diffusers.ScoreSdeVePipeline.from_pretrained(tmp_path)


# --------------------------------------------------------------------------- CUDA
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _cuda_data(shape: tuple[int, ...] = (3, 3, 8, 8), dtype: Any = torch.float32) -> tuple[Any, Any]:
    sample, model_output = _data(shape, seed=8, dtype=dtype)
    return sample.cuda(), model_output.cuda()


@pytest.mark.gpu
@cuda
def test_cuda_generator_in_both_steps(diffusers: Any) -> None:
    """A CUDA generator works in step_pred (as in diffusers) and in step_correct (diffusers raises)."""
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    sample, model_output = _cuda_data()
    cuda_gen = lambda: torch.Generator(device="cuda").manual_seed(0)  # noqa: E731
    mine = ours.step_pred(model_output, 0.5, sample, generator=cuda_gen())
    ref = theirs.step_pred(model_output, 0.5, sample, generator=cuda_gen())
    _match(mine.prev_sample, ref.prev_sample)
    _match(mine.prev_sample_mean, ref.prev_sample_mean)
    with pytest.raises(ValueError):
        theirs.step_correct(model_output, sample, generator=cuda_gen())
    corrected = ours.step_correct(model_output, sample, generator=cuda_gen()).prev_sample
    assert corrected.device == sample.device and corrected.dtype == sample.dtype
    # The numbers: diffusers' rule on the CPU with the noise that generator draws.
    noise = torch.randn(sample.shape, generator=cuda_gen(), device="cuda").double().cpu()
    x, s = sample.double().cpu(), model_output.double().cpu()
    step = 2 * (0.15 * noise.flatten(1).norm(dim=1).mean() / s.flatten(1).norm(dim=1).mean()) ** 2
    want = x + step * s + (2 * step) ** 0.5 * noise
    assert_close(corrected, want.numpy(), rtol=PARITY_RTOL)
    # A list of CUDA generators too.
    gens = [torch.Generator(device="cuda").manual_seed(i) for i in range(sample.shape[0])]
    assert ours.step_correct(model_output, sample, generator=gens).prev_sample.device == sample.device


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cuda_sample_with_cpu_generator_matches_diffusers_cpu(diffusers: Any, dtype: str) -> None:
    """A CUDA sample and a CPU generator draw on the CPU and move the noise, so they give diffusers' CPU numbers."""
    ours, theirs = _pair(diffusers, **BASE_CONFIG)
    for s in (ours, theirs):
        s.set_timesteps(10)
        s.set_sigmas(10)
    sample, model_output = _cuda_data(dtype=getattr(torch, dtype))
    cpu_sample, cpu_output = sample.cpu().float(), model_output.cpu().float()
    rtol = PARITY_RTOL if dtype == "float32" else rtol_for(getattr(torch, dtype))
    mine = ours.step_correct(model_output, sample, generator=torch.manual_seed(0)).prev_sample
    ref = theirs.step_correct(cpu_output, cpu_sample, generator=torch.manual_seed(0)).prev_sample
    assert mine.device == sample.device and mine.dtype == sample.dtype
    assert_close(mine, ref.double().numpy(), rtol=rtol)
    t = ours.timesteps[3]
    pred = ours.step_pred(model_output, t.cuda(), sample, generator=torch.manual_seed(1))
    # step_pred draws in the sample's dtype: give diffusers the same dtype on the CPU.
    ref_pred = theirs.step_pred(model_output.cpu(), t, sample.cpu(), generator=torch.manual_seed(1))
    for a, b in ((pred.prev_sample, ref_pred.prev_sample), (pred.prev_sample_mean, ref_pred.prev_sample_mean)):
        assert a.device == sample.device and a.dtype == sample.dtype
        assert_close(a, b.double().numpy(), rtol=rtol)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("timestep", ["0-d", "per-example"])
def test_cuda_steps_make_no_host_sync(timestep: str) -> None:
    """The timestep index stays on the device: no synchronising copy in step_pred (diffusers copies the index to
    the CPU schedule and back every step)."""
    scheduler = ScoreSdeVeScheduler(**BASE_CONFIG)
    scheduler.set_timesteps(10, device="cuda")
    scheduler.set_sigmas(10)
    sample, model_output = _cuda_data()
    t = scheduler.timesteps[4] if timestep == "0-d" else scheduler.timesteps[2:5]
    assert t.device.type == "cuda"
    gen = torch.Generator(device="cuda").manual_seed(0)
    scheduler.step_pred(model_output, t, sample, generator=gen)  # warm-up: builds and caches the schedule
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = scheduler.step_pred(model_output, t, sample, generator=gen)
        corrected = scheduler.step_correct(model_output, out.prev_sample, generator=gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.prev_sample.device.type == "cuda" and corrected.prev_sample.device.type == "cuda"
    # And the numbers are those of the CPU path with the same noise.
    cpu = ScoreSdeVeScheduler(**BASE_CONFIG)
    cpu.set_timesteps(10)
    cpu.set_sigmas(10)
    noise = torch.randn(sample.shape, generator=torch.Generator(device="cuda").manual_seed(0), device="cuda")
    want = cpu.step_pred(model_output.cpu(), t.cpu(), sample.cpu(), noise=noise.cpu())
    redo = scheduler.step_pred(model_output, t, sample, noise=noise)
    assert_close(redo.prev_sample, want.prev_sample.double().numpy(), rtol=PARITY_RTOL)
    assert_close(redo.prev_sample_mean, want.prev_sample_mean.double().numpy(), rtol=PARITY_RTOL)
