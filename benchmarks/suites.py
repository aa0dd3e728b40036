"""The benchmark groups of issue 5. Each takes :class:`Settings` and the filters, and returns rows, checks and
skips (see :mod:`benchmarks` for the definitions of the floor and the targets).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from ._kits import FRONT_ENDS, Kit, make_kit
from ._report import Check, Ratio, Row, Skip
from ._timing import Case, interleaved

__all__ = ["GROUPS", "Result", "Settings"]

# Bytes a step must move, in units of one array of the sample's size (see the package docstring).
BYTES_MOVED = {"step_pred": 5, "step_correct": 6}


@dataclasses.dataclass
class Settings:
    quick: bool = False
    repeats: int = 11
    warmup: int = 2
    min_sample_s: float = 0.02
    small: tuple[int, ...] = (1, 3, 32, 32)
    medium: tuple[int, ...] = (4, 3, 256, 256)
    large: tuple[int, ...] = (16, 4, 256, 256)  # 16 MiB per float32 array
    large_gpu: tuple[int, ...] = (64, 4, 256, 256)  # 64 MiB per float32 array
    tiny: tuple[tuple[int, ...], ...] = ((1, 3, 32, 32), (8, 2))
    loop_steps: int = 1000
    loop_shapes: tuple[tuple[int, ...], ...] = ((16, 2), (1, 3, 32, 32))
    backends: tuple[str, ...] | None = None  # None: all
    ops: tuple[str, ...] | None = None  # None: all

    @classmethod
    def make(cls, quick: bool, **overrides: Any) -> Settings:
        if quick:
            base = cls(quick=True, repeats=3, warmup=1, min_sample_s=0.002, large=(4, 4, 64, 64),
                       large_gpu=(16, 4, 256, 256), tiny=((1, 3, 32, 32),), loop_steps=200, loop_shapes=((16, 2),))
        else:
            base = cls()
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def wants_backend(self, name: str) -> bool:
        return self.backends is None or name in self.backends

    def wants_op(self, op: str) -> bool:
        return self.ops is None or op in self.ops

    def time(self, cases: dict[str, Case], repeats: int | None = None) -> dict[str, Any]:
        return interleaved(cases, repeats=repeats or self.repeats, warmup=self.warmup, min_sample_s=self.min_sample_s)


@dataclasses.dataclass
class Result:
    rows: list[Row] = dataclasses.field(default_factory=list)
    checks: list[Check] = dataclasses.field(default_factory=list)
    skips: list[Skip] = dataclasses.field(default_factory=list)

    def extend(self, other: Result) -> None:
        self.rows += other.rows
        self.checks += other.checks
        self.skips += other.skips


def _ratio(times: dict[str, Any], name: str, num: list[str], den: list[str], target: tuple[str, float] | None) -> Ratio:
    from ._timing import median_ratio

    return Ratio(name, median_ratio(times, num, den), num, den, target)


def _load(group: str, name: str, result: Result, op: str = "*") -> Kit | None:
    try:
        return make_kit(name)
    except (ImportError, RuntimeError) as exc:
        result.skips.append(Skip(group, op, name, f"backend not available: {exc}"))
        return None


def _step_cases(kit: Kit, front_end: str, op: str, shape: tuple[int, ...], *, diffusers: bool) -> dict[str, Case]:
    """ours (the step drawing its noise), [update (noise given)], [diffusers], draw, copy."""
    sample, score = kit.inputs(shape)
    fns = kit.steps(front_end, sample, score)
    key = "pred" if op == "step_pred" else "correct"
    cases = {"ours": kit.case(getattr(fns, key))}
    update = getattr(fns, f"{key}_update")
    if update is not None:
        cases["update"] = kit.case(update)
    if diffusers:
        cases["diffusers"] = kit.case(_diffusers_step(kit, op, sample, score))
    size = math.prod(shape)
    cases["draw"] = kit.case(kit.draw(sample))
    cases["copy"] = kit.case(kit.copy(size * BYTES_MOVED[op] // 2, size))
    return cases


def _diffusers_step(kit: Kit, op: str, sample: Any, score: Any) -> Callable[[], Any]:
    import torch
    from diffusers import ScoreSdeVeScheduler

    from ._kits import NUM_STEPS, STEP_INDEX

    sched = ScoreSdeVeScheduler()
    sched.set_timesteps(NUM_STEPS, device=sample.device)
    sched.set_sigmas(NUM_STEPS)
    t = sched.timesteps[STEP_INDEX]
    gen = torch.Generator(device=sample.device).manual_seed(0)
    if op == "step_pred":
        return lambda: sched.step_pred(score, t, sample, generator=gen, return_dict=False)
    if sample.device.type != "cpu":
        gen = torch.Generator().manual_seed(0)  # diffusers' step_correct draws on the generator's device, then moves
    return lambda: sched.step_correct(score, sample, generator=gen, return_dict=False)[0]


def _step_row(group: str, kit: Kit, front_end: str, op: str, shape: tuple[int, ...], settings: Settings, *,
              diffusers: bool, diffusers_target: float | None, floor_target: float | None) -> Row:
    times = settings.time(_step_cases(kit, front_end, op, shape, diffusers=diffusers))
    ratios = []
    if diffusers:
        ratios.append(_ratio(times, "ours/diffusers", ["ours"], ["diffusers"],
                             None if diffusers_target is None else ("<=", diffusers_target)))
        # The best ratio any implementation drawing diffusers' numbers could reach here.
        ratios.append(_ratio(times, "floor/diffusers", ["draw", "copy"], ["diffusers"], None))
    ratios.append(_ratio(times, "ours/floor", ["ours"], ["draw", "copy"],
                         None if floor_target is None else ("<=", floor_target)))
    if "update" in times:
        bandwidth_target = (">=", 0.7) if kit.gpu and group == "floor" else None
        ratios.append(_ratio(times, "copy/update", ["copy"], ["update"], bandwidth_target))
    return Row(group, op, kit.name, front_end, shape, times, ratios)


# ---------------------------------------------------------------------------------------------------- groups
def diffusers_group(settings: Settings) -> Result:
    """torch CPU drop-in against diffusers, per call, same generator seed and inputs."""
    result = Result()
    if not settings.wants_backend("torch"):
        return result
    try:
        import diffusers  # noqa: F401
    except ImportError as exc:
        result.skips.append(Skip("diffusers", "*", "torch", f"diffusers not installed: {exc}"))
        return result
    kit = _load("diffusers", "torch", result)
    if kit is None:
        return result
    for shape, target in ((settings.small, 0.5), (settings.medium, 0.8)):
        for op in ("step_pred", "step_correct"):
            if settings.wants_op(op):
                result.rows.append(_step_row("diffusers", kit, "drop-in", op, shape, settings, diffusers=True,
                                             diffusers_target=target, floor_target=None))
    if settings.wants_op("construct"):
        result.rows.append(_construct_row(settings))
    return result


def _construct_row(settings: Settings) -> Row:
    from diffusers import ScoreSdeVeScheduler as Diffusers

    import sdeve
    from sdeve_backends.torch import ScoreSdeVeScheduler as DropIn

    def build(cls: Any) -> Callable[[], Any]:
        def run() -> Any:
            s = cls()
            s.set_timesteps(2000)
            s.set_sigmas(2000)
            return s
        return run

    cases = {"ours": Case(build(DropIn)), "generic": Case(build(sdeve.ScoreSdeVeScheduler)),
             "diffusers": Case(build(Diffusers))}
    times = settings.time(cases, repeats=max(3, settings.repeats // 2))
    ratios = [_ratio(times, "ours/diffusers", ["ours"], ["diffusers"], ("<=", 0.1)),
              _ratio(times, "generic/diffusers", ["generic"], ["diffusers"], None)]
    return Row("diffusers", "construct+set_timesteps(2000)+set_sigmas(2000)", "torch", "drop-in", None, times,
               ratios, dtype=None)


def floor_group(settings: Settings) -> Result:
    """Every backend and front end at large arrays: the step against draw + copy."""
    result = Result()
    for name, front_ends in FRONT_ENDS.items():
        if not settings.wants_backend(name):
            continue
        kit = _load("floor", name, result)
        if kit is None:
            continue
        shape = settings.large_gpu if kit.gpu else settings.large
        for i, front_end in enumerate(front_ends[:1] if settings.quick else front_ends):
            for op in ("step_pred", "step_correct"):
                if not settings.wants_op(op):
                    continue
                with_diffusers = kit.module == "torch" and front_end == "drop-in"
                try:
                    result.rows.append(_step_row(
                        "floor", kit, front_end, op, shape, settings, diffusers=with_diffusers, diffusers_target=None,
                        floor_target=1.25 if i == 0 else None))
                except Exception as exc:  # noqa: BLE001 - report and go on: one broken path must not hide the rest
                    result.skips.append(Skip("floor", f"{op} ({front_end})", name, f"failed: {type(exc).__name__}: {exc}"))
    return result


def overhead_group(settings: Settings) -> Result:
    """Per-call cost of the generic scheduler against the framework's own front end at tiny sizes."""
    result = Result()
    pairs = {"torch": ("generic", "drop-in"), "jax": ("generic", "flax"), "torch:cuda": ("generic", "drop-in"),
             "jax:gpu": ("generic", "flax")}
    jit_pairs = {"jax": ("generic+jit", "flax+jit"), "jax:gpu": ("generic+jit", "flax+jit")}
    for name, pair in pairs.items():
        if not settings.wants_backend(name):
            continue
        kit = _load("overhead", name, result)
        if kit is None:
            continue
        for shape in settings.tiny:
            for ours_fe, theirs_fe in [pair] + ([jit_pairs[name]] if name in jit_pairs else []):
                sample, score = kit.inputs(shape)
                ours = kit.steps(ours_fe, sample, score)
                theirs = kit.steps(theirs_fe, sample, score)
                for op, key in (("step_pred", "pred"), ("step_correct", "correct")):
                    if not settings.wants_op(op):
                        continue
                    times = settings.time({"ours": kit.case(getattr(ours, key)),
                                           "front_end": kit.case(getattr(theirs, key))})
                    target = ("<=", 1.5) if not ours_fe.endswith("jit") else None
                    ratio = _ratio(times, f"{ours_fe}/{theirs_fe}", ["ours"], ["front_end"], target)
                    result.rows.append(Row("overhead", op, name, f"{ours_fe} vs {theirs_fe}", shape, times, [ratio]))
    return result


def jax_loop_group(settings: Settings) -> Result:
    """A predictor-corrector loop compiled as one program against the same loop stepped from Python."""
    from . import _jax_loop

    result = Result()
    if not settings.wants_op("pc_loop"):
        return result
    for name in ("jax", "jax:gpu"):
        if not settings.wants_backend(name):
            continue
        kit = _load("jax_loop", name, result, "pc_loop")
        if kit is None:
            continue
        for shape in settings.loop_shapes:
            variants = [("flax (fori_loop built here)", _jax_loop.loops(kit.device, shape, settings.loop_steps))]
            library = _jax_loop.sampler_loops(kit.device, shape, settings.loop_steps)
            if library is None:
                result.skips.append(Skip("jax_loop", "pc_loop (sampler)", name,
                                         "sdeve.sample / sdeve_backends.jax.sample not available"))
            else:
                variants.append(("sdeve.sample", library))
            draws = kit.case(_jax_loop.draws_loop(kit.device, shape, settings.loop_steps))
            for front_end, (compiled, stepped, note) in variants:
                try:
                    times = settings.time({"compiled": kit.case(compiled), "stepped": kit.case(stepped),
                                           "draws": draws},
                                          repeats=2 if settings.quick else max(3, settings.repeats // 3))
                except Exception as exc:  # noqa: BLE001
                    result.skips.append(Skip("jax_loop", f"pc_loop ({front_end})", name,
                                             f"failed: {type(exc).__name__}: {exc}"))
                    continue
                ratios = [_ratio(times, "stepped/compiled", ["stepped"], ["compiled"], (">=", 10.0)),
                          # How close the compiled loop is to its random numbers alone (its bound).
                          _ratio(times, "compiled/draws", ["compiled"], ["draws"], None)]
                result.rows.append(Row("jax_loop", f"pc_loop({settings.loop_steps} steps)", name, front_end, shape,
                                       times, ratios, note=note))
    return result


def gpu_group(settings: Settings) -> Result:
    """Checks that need a GPU: kernels per step, no host sync, transfer guard, CUDA-graph replay."""
    from . import _gpu

    return _gpu.run(settings)


GROUPS: dict[str, Callable[[Settings], Result]] = {
    "diffusers": diffusers_group,
    "floor": floor_group,
    "overhead": overhead_group,
    "jax_loop": jax_loop_group,
    "gpu": gpu_group,
}
