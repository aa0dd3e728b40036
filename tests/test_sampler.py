"""sdeve.sample and the init/step interface, checked against the exact Gaussian-mixture oracle.

Tolerances were measured over seeds 0-2 on numpy, torch and jax (see the closing note of issue 4) and set
with a margin of about 1.5x the worst case seen; the figures are sampling noise of the batch sizes used
(n=2000 points, n=400 images) plus the sampler's own error at 200 steps.
"""

from __future__ import annotations

import numpy as np
import pytest

import sdeve
from sdeve.oracles import GaussianMixture, ring
from tests.test_oracles import image_mixture

SCHEDULER = sdeve.ScoreSdeVeScheduler(sigma_min=0.01, sigma_max=12.0)
XPS = ["numpy", "torch", "jax"]

# name -> (mixture, shape, {corrector_norm: (weight, mean, std) tolerances})
CASES = {
    "points": (ring, (2000, 2), {"batch": (0.05, 0.35, 0.15)}),
    "images": (image_mixture, (400, 2, 4, 4), {"batch": (0.1, 0.2, 0.08), "example": (0.1, 0.22, 0.15)}),
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """These problems are tiny: torch's thread pool only adds contention on a shared 2-core machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _numpy(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().double().numpy()  # type: ignore[attr-defined, no-any-return]
    return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("xp_name", XPS)
@pytest.mark.parametrize(("case", "norm"), [("points", "batch"), ("images", "batch"), ("images", "example")])
def test_sample_reproduces_the_mixture(xp_name: str, case: str, norm: str) -> None:
    pytest.importorskip(xp_name)
    make, shape, tolerances = CASES[case]
    gm = make()
    out = sdeve.sample(gm, shape, scheduler=SCHEDULER, num_inference_steps=200, generator=0, xp=xp_name,
                       corrector_norm=norm)  # type: ignore[arg-type]
    assert tuple(out.shape) == shape
    report = gm.report(out)
    weight_tol, mean_tol, std_tol = tolerances[norm]
    assert report.weight_error < weight_tol, report
    assert report.mean_error < mean_tol, report
    assert report.std_error < std_tol, report


def test_more_steps_are_not_worse() -> None:
    gm = ring()
    reports = {n: gm.report(sdeve.sample(gm, (2000, 2), scheduler=SCHEDULER, num_inference_steps=n, generator=1))
               for n in (8, 25, 200)}
    assert reports[8].std_error > 0.3  # too few steps: visibly too wide
    assert reports[25].std_error < reports[8].std_error
    assert reports[200].std_error <= reports[25].std_error + 0.03
    assert reports[200].log_likelihood >= reports[25].log_likelihood - 0.03 > reports[8].log_likelihood


def test_every_level_is_visited_once() -> None:
    # eps * (N - 1) >= 1: diffusers' continuous-time index would repeat levels and never reach level 0.
    scheduler = sdeve.ScoreSdeVeScheduler(sampling_eps=1e-2, correct_steps=0)
    n = 150
    means: list[np.ndarray] = []
    samples: list[np.ndarray] = []

    def record(info: dict) -> None:
        samples.append(np.asarray(info["sample"], dtype=np.float64))
        means.append(np.asarray(info["sample_mean"], dtype=np.float64))

    # A score of 1 everywhere: each predictor mean is the previous sample plus g_j^2 = sigma_j^2 - sigma_{j-1}^2.
    sdeve.sample(lambda x, s: np.ones_like(x), (2, 3), scheduler=scheduler, num_inference_steps=n, generator=0,
                 dtype="float64", callback=record)
    levels = np.exp(np.linspace(np.log(0.01), np.log(1348.0), n))[::-1]
    below = np.concatenate([levels[1:], [0.0]])
    steps = [m - x for m, x in zip(means[1:], samples[:-1])]
    np.testing.assert_allclose([float(v.mean()) for v in steps], (levels**2 - below**2)[1:], rtol=1e-9, atol=1e-8)


def test_model_calls_sigma_and_callback() -> None:
    calls: list[np.ndarray] = []
    events: list[dict] = []

    def model(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        assert sigma.shape == (x.shape[0],) and sigma.dtype == x.dtype
        calls.append(sigma.copy())
        return -x / (1 + sigma[:, None] ** 2)

    scheduler = sdeve.ScoreSdeVeScheduler(sigma_max=5.0, correct_steps=2)
    out = sdeve.sample(model, (3, 2), scheduler=scheduler, num_inference_steps=7, generator=0, callback=events.append,
                       dtype=np.float32)
    assert out.dtype == np.float32 and len(calls) == 7 * 3 and len(events) == 7
    assert all(set(e) == {"i", "t", "sigma", "sample", "sample_mean"} for e in events)
    assert [e["i"] for e in events] == list(range(7))
    assert events[0]["t"] == 1.0 and events[-1]["t"] == pytest.approx(scheduler.config.sampling_eps)
    np.testing.assert_allclose([e["sigma"] for e in events], [c[0] for c in calls[::3]], rtol=1e-6)
    np.testing.assert_array_equal(out, events[-1]["sample_mean"])
    noisy = sdeve.sample(model, (3, 2), scheduler=scheduler, num_inference_steps=7, generator=0, denoise=False,
                         dtype=np.float32)
    np.testing.assert_array_equal(noisy, events[-1]["sample"])


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    sdeve.sample(lambda x, s: -x, (2, 2), scheduler=SCHEDULER, num_inference_steps=5, generator=0, progress=True)
    assert "5/5" in capsys.readouterr().err


def test_same_generator_same_result_and_seeds() -> None:
    gm = ring()
    kwargs = dict(scheduler=SCHEDULER, num_inference_steps=20)
    a = sdeve.sample(gm, (5, 2), generator=np.random.default_rng(3), **kwargs)
    b = sdeve.sample(gm, (5, 2), generator=3, **kwargs)
    c = sdeve.sample(gm, (5, 2), generator=4, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_namespace_follows_the_generator() -> None:
    torch = pytest.importorskip("torch")
    gm = ring()
    generator = torch.Generator().manual_seed(0)
    out = sdeve.sample(gm, (4, 2), scheduler=SCHEDULER, num_inference_steps=5, generator=generator)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    jax = pytest.importorskip("jax")
    out = sdeve.sample(gm, (4, 2), scheduler=SCHEDULER, num_inference_steps=5, generator=jax.random.PRNGKey(0))
    assert isinstance(out, jax.Array)


@pytest.mark.parametrize("xp_name", XPS)
def test_init_step_drives_the_same_numbers(xp_name: str) -> None:
    pytest.importorskip(xp_name)
    gm = ring()
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_max=12.0, correct_steps=2)
    n, shape = 15, (8, 2)

    def gen():  # type: ignore[no-untyped-def]
        if xp_name == "torch":
            import torch

            return torch.Generator().manual_seed(5)
        return 5

    expected = sdeve.sample(gm, shape, scheduler=scheduler, num_inference_steps=n, generator=gen(), xp=xp_name,
                            dtype=None)
    state, sigmas = scheduler.init(n, shape, generator=gen(), xp=xp_name)
    assert tuple(sigmas.shape) == (n * 3,)
    state, x = scheduler.initial_sample(state, dtype=expected.dtype)
    step = scheduler.step
    if xp_name == "jax":
        import jax

        step = jax.jit(scheduler.step)
    xp = sdeve._xp.resolve_namespace(xp_name)
    for k in range(n * 3):
        sigma = xp.astype(sigmas[k] * xp.ones((shape[0],), dtype=x.dtype), x.dtype)
        state, x = step(state, x, gm(x, sigma))
    np.testing.assert_allclose(_numpy(x), _numpy(expected), rtol=1e-5, atol=1e-5)
    assert int(state.counter) == n * 3
    if xp_name != "jax":
        with pytest.raises(ValueError, match="done"):
            scheduler.step(state, x, gm(x, sigma))


def test_init_sigmas_repeat_per_model_call() -> None:
    scheduler = sdeve.ScoreSdeVeScheduler(correct_steps=1)
    state, sigmas = scheduler.init(4, (2, 3))
    assert isinstance(state, sdeve.SamplerState) and state.num_inference_steps == 4
    t = np.linspace(1, 1e-5, 4)
    np.testing.assert_allclose(sigmas, np.repeat(0.01 * (1348 / 0.01) ** t, 2), rtol=1e-12)


def test_example_norm_makes_results_independent_of_the_batch() -> None:
    torch = pytest.importorskip("torch")
    gm = image_mixture()
    shape = (6, 2, 4, 4)

    def run(batch: list[int], norm: str):  # type: ignore[no-untyped-def]
        gens = [torch.Generator().manual_seed(100 + b) for b in batch]
        return sdeve.sample(gm, (len(batch), *shape[1:]), scheduler=SCHEDULER, num_inference_steps=30, generator=gens,
                            xp="torch", dtype=torch.float64, corrector_norm=norm)

    full = run(list(range(6)), "example")
    part = run([1, 4], "example")
    torch.testing.assert_close(part, full[[1, 4]], rtol=1e-12, atol=1e-12)
    # the batch rule couples the examples (that is diffusers' and Song et al.'s behaviour)
    assert not torch.allclose(run([1, 4], "batch"), run(list(range(6)), "batch")[[1, 4]])


def test_img2img_keeps_the_init_at_low_strength() -> None:
    gm = image_mixture()
    init = gm.sample(64, generator=0, dtype=np.float64)
    calls = []

    def model(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        calls.append(1)
        return gm.score(x, sigma)

    out = sdeve.sample(model, init.shape, scheduler=SCHEDULER, num_inference_steps=100, generator=1, init=init,
                       strength=0.3)
    assert len(calls) == 30 * 2
    # at sigma(0.3 of the schedule) ~ 0.1, samples stay in their component
    assert np.mean(gm.assign(out) == gm.assign(init)) > 0.95
    assert gm.report(out).std_error < 0.2
    fresh = sdeve.sample(gm, init.shape, scheduler=SCHEDULER, num_inference_steps=100, generator=1, init=init,
                         strength=1.0)
    assert np.mean(gm.assign(fresh) == gm.assign(init)) < 0.8


@pytest.mark.parametrize("xp_name", ["numpy", "torch", "jax"])
def test_inpainting_keeps_the_known_part_and_completes_the_rest(xp_name: str) -> None:
    pytest.importorskip(xp_name)
    gm = image_mixture()
    init_np = gm.sample(200, generator=2, dtype=np.float64)
    mask_np = np.zeros((1, 2, 4, 4))
    mask_np[..., :2] = 1.0  # the left half of every image is known
    xp = sdeve._xp.resolve_namespace(xp_name)
    init = xp.asarray(init_np.astype(np.float32))
    mask = xp.asarray(mask_np.astype(np.float32))
    out = sdeve.sample(gm, init.shape, scheduler=SCHEDULER, num_inference_steps=200, generator=3, init=init, mask=mask)
    out_np = _numpy(out)
    np.testing.assert_array_equal(out_np[..., :2], _numpy(init)[..., :2])
    # the known half fixes the component: the completed images belong to the init's component
    assert np.mean(gm.assign(out_np) == gm.assign(init_np)) > 0.97
    comp = gm.assign(init_np)
    resid = out_np[..., 2:] - gm.means()[comp][..., 2:]
    ratio = np.sqrt(np.mean(resid**2, axis=(1, 2, 3))) / np.asarray(gm.stds)[comp]
    assert 0.8 < float(np.mean(ratio)) < 1.2


def test_dask_and_array_api_strict_run() -> None:
    gm = ring()
    for name in ("dask", "array_api_strict"):
        pytest.importorskip(name.split(".")[0])
        out = sdeve.sample(gm, (300, 2), scheduler=SCHEDULER, num_inference_steps=40, generator=0, xp=name)
        assert tuple(out.shape) == (300, 2)
        assert gm.report(out).weight_error < 0.1


def test_jax_compiled_loop_matches_the_step_by_step_loop() -> None:
    jax = pytest.importorskip("jax")
    import sdeve_backends.jax as sj

    gm = ring()
    kwargs = dict(scheduler=SCHEDULER, num_inference_steps=40, generator=jax.random.PRNGKey(7))
    fast = sj.sample(gm, (64, 2), **kwargs)
    slow = sdeve.sample(gm, (64, 2), xp="jax", callback=lambda info: None, **kwargs)
    auto = sdeve.sample(gm, (64, 2), xp="jax", **kwargs)
    # One XLA program against op-by-op dispatch: XLA contracts a*b + c into FMAs in the fused program, as the
    # host's instruction set allows, so the two round differently every step. Most samples agree to a few ulps;
    # the mixture score's Jacobian (up to 1/sigma_min^2) carries a few of them to ~1e-5 over 40 steps.
    difference = np.abs(np.asarray(fast) - np.asarray(slow))
    assert np.median(difference) <= 1e-6, np.median(difference)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(slow), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(auto))

    def host_model(x, sigma):  # type: ignore[no-untyped-def]  # not traceable: goes through NumPy
        return jax.numpy.asarray(gm(np.asarray(x), np.asarray(sigma)))

    fallback = sdeve.sample(host_model, (64, 2), xp="jax", **kwargs)
    np.testing.assert_allclose(np.asarray(fallback), np.asarray(slow), rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="traceable"):
        sj.sample(host_model, (64, 2), **kwargs)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_fullgraph() -> None:
    torch = pytest.importorskip("torch")
    import sdeve_backends.torch as st

    gm = ring()
    kwargs = dict(scheduler=SCHEDULER, num_inference_steps=20, generator=3)
    eager = st.sample(gm, (32, 2), compile=False, **kwargs)
    # dynamo must capture a whole timestep in one graph; the aot_eager backend skips C++ code generation,
    # which would take a minute on a small CPU.
    compiled = st.sample(gm, (32, 2), backend="aot_eager", fullgraph=True, **kwargs)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(_numpy(eager), _numpy(sdeve.sample(gm, (32, 2), xp="torch", **kwargs)))


@pytest.mark.gpu
def test_torch_cuda_loop_never_synchronises() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import sdeve_backends.torch as st

    gm = image_mixture()
    shape = (64, 2, 4, 4)
    generator = torch.Generator(device="cuda").manual_seed(0)
    init = gm.sample(64, generator=1, xp="torch", device="cuda")
    mask = torch.zeros((1, 2, 4, 4), device="cuda")
    mask[..., :2] = 1
    gm.score(init, torch.ones(64, device="cuda"))  # build (and cache) the oracle's arrays on the device first
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_max=12.0)
    state, sigmas = scheduler.init(10, shape, generator=torch.Generator(device="cuda").manual_seed(0), xp="torch",
                                   device="cuda")
    state, x0 = scheduler.initial_sample(state, dtype=torch.float32)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = sdeve.sample(gm, shape, scheduler=scheduler, num_inference_steps=50, generator=generator, xp="torch",
                           device="cuda", init=init, mask=mask, strength=0.8)
        out2 = st.sample(gm, shape, scheduler=scheduler, num_inference_steps=50, generator=generator, device="cuda",
                         compile=False, corrector_norm="example")
        x = x0
        for k in range(sigmas.shape[0]):
            state, x = scheduler.step(state, x, gm(x, sigmas[k].float() * torch.ones(64, device="cuda")))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.is_cuda and out2.is_cuda and x.is_cuda
    assert gm.report(out).weight_error < 0.2


def test_bad_arguments() -> None:
    gm = ring()
    with pytest.raises(ValueError, match="strength"):
        sdeve.sample(gm, (2, 2), strength=0.0, init=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="needs init"):
        sdeve.sample(gm, (2, 2), strength=0.5)
    with pytest.raises(ValueError, match="needs init"):
        sdeve.sample(gm, (2, 2), mask=np.ones((2, 2)))
    with pytest.raises(ValueError, match="init must have"):
        sdeve.sample(gm, (2, 2), init=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="mask"):
        sdeve.sample(gm, (2, 2), init=np.zeros((2, 2)), mask=np.ones((3, 2)))
    with pytest.raises(ValueError, match="corrector_norm"):
        sdeve.sample(gm, (2, 2), corrector_norm="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score with x's shape"):
        sdeve.sample(lambda x, s: x[:1], (2, 2), num_inference_steps=3)
    with pytest.raises(TypeError, match="callable"):
        sdeve.sample(None, (2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        sdeve.sample(gm, ())
    with pytest.raises(ValueError, match="num_inference_steps"):
        sdeve.sample(gm, (2, 2), num_inference_steps=0)
    with pytest.raises(ValueError, match="sample must have the shape"):
        scheduler = sdeve.ScoreSdeVeScheduler()
        state, _ = scheduler.init(3, (2, 2))
        scheduler.step(state, np.zeros((3, 2)), np.zeros((3, 2)))


def test_gaussian_mixture_is_exported_model() -> None:
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [1.0])
    out = sdeve.sample(gm, (500, 2), scheduler=SCHEDULER, num_inference_steps=50, generator=0)
    assert abs(float(np.std(out)) - 1.0) < 0.1


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize(("steps", "correct_steps"), [(60, 1), (40, 2)])
def test_sample_reproduces_the_diffusers_loop(steps: int, correct_steps: int) -> None:
    """diffusers' ScoreSdeVePipeline loop with diffusers' own scheduler, from the same torch.Generator seed: the
    same draws in the same order (initial sample, correctors, predictor), so the same samples to float32
    rounding while the continuous-time index repeats no level (sampling_eps * (N - 1) < 1)."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from diffusers.utils.torch_utils import randn_tensor

    gm = image_mixture()
    shape = (8, 2, 4, 4)
    reference = diffusers.ScoreSdeVeScheduler(sigma_max=12.0, correct_steps=correct_steps)
    reference.set_timesteps(steps)
    reference.set_sigmas(steps)
    generator = torch.Generator().manual_seed(0)
    x = randn_tensor(shape, generator=generator) * reference.init_noise_sigma
    for i, t in enumerate(reference.timesteps):
        sigma = reference.sigmas[i] * torch.ones(shape[0])
        for _ in range(correct_steps):
            x = reference.step_correct(gm(x, sigma), x, generator=generator).prev_sample
        out = reference.step_pred(gm(x, sigma), t, x, generator=generator)
        x, x_mean = out.prev_sample, out.prev_sample_mean
    ours = sdeve.sample(gm, shape, scheduler=sdeve.ScoreSdeVeScheduler(sigma_max=12.0, correct_steps=correct_steps),
                        num_inference_steps=steps, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours, x_mean, rtol=1e-5, atol=1e-5)


def test_sample_pc_in_k_diffusions_shape_equals_sdeve_sample() -> None:
    """The PC sampler as a plain function over (model, x, sigmas, *, noise, ...) gives sdeve.sample's numbers."""
    from sdeve.backends import backend_for
    from sdeve.protocols import NoiseSource
    from sdeve.samplers.pc import sample_pc, schedule_levels
    from sdeve.schedule import Schedule

    gm, n = ring(), 40
    scheduler = sdeve.ScoreSdeVeScheduler(sigma_max=12.0)
    config = scheduler.config
    want = sdeve.sample(gm, (64, 2), scheduler=scheduler, num_inference_steps=n, generator=5, dtype="float64")
    levels, model_sigmas = schedule_levels(Schedule.build(n, n, config.sigma_min, config.sigma_max,
                                                          config.sampling_eps))
    backend = backend_for(np)
    noise = NoiseSource(backend, backend.make_generator(5))
    x = noise.draw((64, 2), dtype=np.float64) * levels[0]
    got = sample_pc(gm, x, levels, noise=noise, model_sigmas=model_sigmas, snr=config.snr)
    np.testing.assert_array_equal(got, want)
