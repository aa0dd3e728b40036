"""JAX: noise from PRNG keys, ``jax.lax`` loops, compiled programs with bounded caches, autodiff, and the
state-passing Flax API (``FlaxScoreSdeVeScheduler``) that works on current JAX, under ``jax.jit`` and inside
``jax.lax`` loops.

Compared with the last diffusers release that had it (0.31), which fails on current JAX:

- ``step_pred`` indexes with ``astype`` rather than torch's ``.long()``, so it runs, also with a traced timestep.
- Noise is drawn from the key as given (shape ``()`` typed keys or ``(2,)`` raw keys), not from the ``(1, 2)``
  array that ``random.split(key, num=1)`` returns.
- The corrector uses the per-example-norm rule of every other backend (batch mean of per-example norms), not
  one norm over the whole batch.
- ``set_sigmas`` passes ``sampling_eps`` as the sampling epsilon (0.31 passed it as ``shape``, ignoring it).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import types
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sdeve import BackendBase, register_backend, SamplerState
from sdeve import samplers as _samplers
from sdeve import schedule as _schedule
from sdeve import updates as _updates
from sdeve._xp import schedule_dtype
from sdeve.config import SdeVeConfig
from sdeve.sampling import resolve
from sdeve.validation import check_pair, check_seed, is_python_scalar

__all__ = [
    "ADAPTER",
    "BACKEND",
    "FlaxScoreSdeVeScheduler",
    "FlaxSdeVeOutput",
    "JaxBackend",
    "ScoreSdeVeSchedulerState",
    "as_key",
    "sample",
]

# Compiled programs kept per model kind and settings; the least recently used go first.
PROGRAM_CACHE_SIZE = 32


# Eagerly, jax.random's functions dispatch their primitives one by one (a draw of 16 numbers took 120 µs on a
# 2-core CPU, a split 510 µs); compiled once per shape and dtype, each is one dispatch (23 µs), with the same bits.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _normal(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.normal(key, shape, dtype=dtype)


_split = jax.jit(jax.random.split, static_argnums=(1,))


@functools.lru_cache(maxsize=64)
def _is_key_dtype(dtype: Any) -> bool:
    """A typed PRNG key's dtype (asked once a dtype: ``issubdtype`` costs microseconds on every step)."""
    return bool(jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key))


def as_key(generator: Any) -> jax.Array:
    """A JAX PRNG key from a key (typed, or raw ``uint32[2]``, also ``[1, 2]``), an int seed in
    ``[0, 2**63 - 1]``, or ``None`` (fresh entropy from the operating system)."""
    if generator is None:
        return jax.random.PRNGKey(int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0]))
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return jax.random.PRNGKey(check_seed(generator))
    if isinstance(generator, (jax.Array, np.ndarray)):
        # Shapes are checked first: a key already in shape is returned with no dispatch (this is on every step).
        if _is_key_dtype(generator.dtype):
            if generator.shape == ():
                return generator
            if generator.shape != (1,):
                raise ValueError(f"expected one PRNG key, got a key array of shape {generator.shape}")
            return generator.reshape(())
        if generator.dtype == jnp.uint32 and generator.size == 2:
            return generator if generator.shape == (2,) else jnp.reshape(generator, (2,))
        raise TypeError(f"expected a JAX PRNG key, got an array of dtype {generator.dtype} and shape {generator.shape}")
    raise TypeError(f"expected a JAX PRNG key, an int seed or None, got {type(generator).__name__}")


def _tracing(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def _concrete(x: Any) -> bool:
    """A value that is not traced and lives in host memory: reading it is free."""
    return not isinstance(x, jax.core.Tracer) and all(d.platform == "cpu" for d in x.devices())


# ---------------------------------------------------------------------- pytrees for the core's dataclasses
_REGISTERED: set[type] = set()


def register_pytree(cls: type) -> None:
    """Make a frozen dataclass of the core a pytree: fields marked static (``sdeve.samplers._loop.static_field``)
    are metadata, the others data."""
    if cls in _REGISTERED:
        return
    fields = dataclasses.fields(cls)
    meta = [f.name for f in fields if f.metadata.get("static")]
    data = [f.name for f in fields if not f.metadata.get("static")]
    jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
    _REGISTERED.add(cls)


def _prepare(tree: Any) -> Any:
    """Register the dataclasses in ``tree`` and drop their host-only copies (so that other values reuse the
    compiled program)."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(_prepare(v) for v in tree)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        register_pytree(type(tree))
        changes = {f.name: (None if f.metadata.get("host_only") else _prepare(getattr(tree, f.name)))
                   for f in dataclasses.fields(tree) if not f.metadata.get("static") or f.metadata.get("host_only")}
        return dataclasses.replace(tree, **changes)
    return tree


register_pytree(SamplerState)


# ---------------------------------------------------------------------- compiled programs, keyed by model kind
def _array_tree(value: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(value)
    return bool(leaves) and all(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves)


def _split_function(model: types.FunctionType) -> tuple[Any, tuple[Any, ...], Callable[[Any], Any]]:
    """A function's static part (code, globals, defaults, non-array closure values) and its array closure
    values, with a rebuild: a fresh ``lambda x, s: net.apply(params, x, s)`` per call reuses one program."""
    values = [cell.cell_contents for cell in (model.__closure__ or ())]
    arrays = tuple(v if _array_tree(v) else None for v in values)
    static = tuple(None if a is not None else v for v, a in zip(values, arrays))
    key = (model.__code__, id(model.__globals__), model.__defaults__, static)
    hash(key)  # TypeError for an unhashable closure value: the caller keys on the function itself

    code, scope, name, defaults = model.__code__, model.__globals__, model.__name__, model.__defaults__

    def rebuild(dynamic: tuple[Any, ...]) -> Any:  # holds the function's parts, never the function itself
        cells = tuple(types.CellType(d if d is not None else s) for d, s in zip(dynamic, static))
        return types.FunctionType(code, scope, name, defaults, cells)

    return key, arrays, rebuild


class _Programs:
    """A bounded cache of compiled programs. Plain functions are keyed by their code and static closure values,
    with array closure values passed as arguments; any other model by identity, through a weak reference, so
    that the cache never keeps a model (or its parameters) alive and forgets it when it dies."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: collections.OrderedDict[Any, Any] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def _put(self, key: Any, entry: Any) -> None:
        self._entries[key] = entry
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def run(self, fn: Callable[..., Any], model: Any, dynamic: Any, static: Any) -> Any:
        """``fn(model, dynamic, static)`` compiled (``static`` hashable, ``dynamic`` a pytree)."""
        if isinstance(model, types.FunctionType):
            try:
                key, arrays, rebuild = _split_function(model)
            except TypeError:
                pass
            else:
                program = self._entries.get((fn, key, static))
                if program is None:
                    program = jax.jit(lambda parts, dyn: fn(rebuild(parts), dyn, static))
                    self._put((fn, key, static), program)
                self._entries.move_to_end((fn, key, static))
                return program(arrays, dynamic)
        return self._by_identity(fn, model, dynamic, static)

    def _by_identity(self, fn: Callable[..., Any], model: Any, dynamic: Any, static: Any) -> Any:
        key = (fn, "model", id(model), static)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is model:
            self._entries.move_to_end(key)
            return entry[1](dynamic)
        try:
            ref = weakref.ref(model, lambda _, key=key: self._entries.pop(key, None))
        except TypeError:  # not weakly referenceable: compile for this call only
            return jax.jit(lambda dyn: fn(model, dyn, static))(dynamic)
        program = jax.jit(lambda dyn: fn(ref(), dyn, static))
        self._put(key, (ref, program))
        return program(dynamic)


# Raised while tracing a model that is not a pure JAX function (it reads values, converts to NumPy, ...).
_UNTRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


class JaxBackend(BackendBase):
    """Noise from a JAX PRNG key (or an int seed; ``None`` for fresh entropy): the same key gives the same
    noise, so keys are split before every draw. Loops are ``jax.lax`` loops when traced; whole sampling runs
    compile into one program (cached per model kind, bounded); autodiff is ``jax.vjp``/``jax.jvp``."""

    name = "jax"

    def __init__(self) -> None:
        self.programs = _Programs(PROGRAM_CACHE_SIZE)
        self._jitted: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def make_generator(self, generator: Any, device: Any = None) -> jax.Array:
        """A PRNG key (see :func:`as_key`)."""
        return as_key(generator)

    def split(self, source: Any) -> tuple[jax.Array, jax.Array]:
        """``(key to draw from, key to carry on)``: ``jax.random.split``, so no key is used twice."""
        later, now = _split(as_key(source))
        return now, later

    def normal(self, source: Any, shape: tuple[int, ...], *, dtype: Any, device: Any = None,
               like: Any = None) -> jax.Array:
        # jax.random.normal in float16/bfloat16 transforms half-precision uniforms: bfloat16 draws are visibly
        # skewed. Draw in float32 and round once.
        draw = dtype if jnp.dtype(dtype).itemsize >= 4 else jnp.float32
        noise = _normal(as_key(source), tuple(shape), jnp.dtype(draw))
        noise = noise if draw == dtype else noise.astype(dtype)
        if device is not None and not isinstance(noise, jax.core.Tracer) and noise.sharding.device_set != {device}:
            noise = jax.device_put(noise, device)
        return noise

    def readable(self, x: Any) -> bool:
        """Concrete values in host memory (not traced, not on an accelerator). The core reads them only where
        it gives what ``jax.jit`` gives: an index taken in the value's dtype, coefficients rounded once."""
        return _concrete(x)

    def traced(self, x: Any) -> bool:
        return isinstance(x, jax.core.Tracer)

    def fori_loop(self, lower: int, upper: int, body: Callable[[Any, Any], Any], carry: Any) -> Any:
        if _tracing(carry):
            return jax.lax.fori_loop(lower, upper, body, carry)
        return super().fori_loop(lower, upper, body, carry)

    def while_loop(self, cond: Callable[[Any], Any], body: Callable[[Any], Any], carry: Any) -> Any:
        if _tracing(carry):
            return jax.lax.while_loop(cond, body, carry)
        return super().while_loop(cond, body, carry)

    def jit(self, fn: Callable[..., Any], *, static_argnames: tuple[str, ...] = ()) -> Callable[..., Any]:
        key = (fn, tuple(static_argnames))
        compiled = self._jitted.get(key)
        if compiled is None:
            compiled = self._jitted[key] = jax.jit(fn, static_argnames=static_argnames)
        return compiled

    def compile_program(self, fn: Callable[..., Any], model: Any, dynamic: Any, static: Any, *,
                        strict: bool = False) -> Any:
        """``fn(model, dynamic, static)`` as one compiled program, reused for models of the same kind (see
        :class:`_Programs`); step by step when ``model`` cannot be traced (``TypeError`` when ``strict``)."""
        try:
            return self.programs.run(fn, model, _prepare(dynamic), static)
        except _UNTRACEABLE as exc:
            if strict:
                raise TypeError(f"the model must be written in JAX (traceable by jax.jit): {exc}") from exc
            return fn(model, dynamic, static)

    def combine(self, x: Any, a: Any, s: Any, b: Any, z: Any, *, reuse: bool) -> tuple[Any, Any] | None:
        """The core's :func:`~sdeve.updates.combine` compiled: one dispatch for an eager update."""
        if _tracing((x, a, b, s, z)):
            return None
        return _combine(x, a, s, b, z)  # type: ignore[no-any-return]

    def vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        return jax.vjp(fn, x)[1](v)[0]

    def value_and_vjp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> tuple[Any, Any]:
        value, pullback = jax.vjp(fn, x)
        return value, pullback(v)[0]

    def jvp(self, fn: Callable[[Any], Any], x: Any, v: Any) -> Any:
        return jax.jvp(fn, (x,), (v,))[1]


@jax.jit
def _combine(x: jax.Array, a: Any, s: jax.Array, b: Any, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _updates.combine(x, a, s, b, z, xp=jnp)


BACKEND = ADAPTER = JaxBackend()
# Imported, the adapter is also registered, so that a first lookup needs no entry-point scan (which
# torch.compile cannot trace).
register_backend("jax", BACKEND)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ScoreSdeVeSchedulerState:
    """The Flax scheduler's state, a pytree: ``timesteps`` ``(M,)``, ``discrete_sigmas`` ``(N,)`` and
    ``sigmas`` ``(M,)`` (each ``None`` until set)."""

    timesteps: jax.Array | None = None
    discrete_sigmas: jax.Array | None = None
    sigmas: jax.Array | None = None

    @classmethod
    def create(cls) -> ScoreSdeVeSchedulerState:
        """An empty state."""
        return cls()

    def replace(self, **changes: Any) -> ScoreSdeVeSchedulerState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FlaxSdeVeOutput:
    """Output of the Flax step methods: ``state``, ``prev_sample`` and (``step_pred`` only) ``prev_sample_mean``."""

    state: ScoreSdeVeSchedulerState
    prev_sample: jax.Array
    prev_sample_mean: jax.Array | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return (self.state, self.prev_sample, self.prev_sample_mean)


# The Flax step methods validate in Python and then run one compiled kernel, the core's own functions with the
# draw: eager calls are one dispatch and give the bits of `jax.jit(scheduler.step_pred)` (compiled, XLA contracts
# `a + b * c` into fused multiply-adds, op-by-op eager JAX does not).
@jax.jit
def _predictor_kernel(timesteps: jax.Array, discrete: jax.Array, model_output: jax.Array, t: jax.Array,
                      sample: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    index = _schedule.timestep_index(t, timesteps.shape[0], xp=jnp)
    sigma = discrete[index]
    adjacent = _schedule.adjacent_sigmas(discrete, index, xp=jnp)
    noise = BACKEND.normal(key, tuple(sample.shape), dtype=sample.dtype)
    return _updates.predictor_update(sample, model_output, noise, sigma, adjacent, xp=jnp)


@jax.jit
def _corrector_kernel(model_output: jax.Array, sample: jax.Array, key: jax.Array, snr: Any) -> jax.Array:
    # snr is traced, not static: one program serves every value.
    noise = BACKEND.normal(key, tuple(sample.shape), dtype=sample.dtype)
    return _updates.corrector_update(sample, model_output, noise, snr, xp=jnp)[0]


def _static_flag(value: Any, name: str) -> bool:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"{name} must be a static Python bool: under jax.jit mark it static (static_argnames=('{name}',))")
    return bool(value)


class FlaxScoreSdeVeScheduler:
    """The state-passing VE SDE scheduler of diffusers' Flax API, on the sdeve core.

    Every method takes a :class:`ScoreSdeVeSchedulerState` and returns a new one; nothing is mutated, so
    ``jax.jit(scheduler.step_pred)`` and ``jax.jit(scheduler.step_correct)`` work with traced timesteps and
    inside ``jax.lax.fori_loop``/``scan``. Schedules are float64 with ``jax_enable_x64`` on, else float32
    (or ``dtype=`` given).
    """

    has_state: bool = True
    order: int = 1

    def __init__(
        self,
        num_train_timesteps: int = 2000,
        snr: float = 0.15,
        sigma_min: float = 0.01,
        sigma_max: float = 1348.0,
        sampling_eps: float = 1e-5,
        correct_steps: int = 1,
        dtype: Any = None,
    ) -> None:
        self.config = SdeVeConfig(num_train_timesteps, snr, sigma_min, sigma_max, sampling_eps, correct_steps)
        if dtype is not None and not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
            raise TypeError(f"dtype must be a real floating dtype for the schedule, got {jnp.dtype(dtype)}")
        self.dtype = dtype
        self.init_noise_sigma = self.config.sigma_max

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    def _dtype(self) -> Any:
        return self.dtype if self.dtype is not None else schedule_dtype(jnp)

    def create_state(self) -> ScoreSdeVeSchedulerState:
        """A state with the training schedule (``num_train_timesteps`` levels) set."""
        cfg = self.config
        return self.set_sigmas(ScoreSdeVeSchedulerState.create(), cfg.num_train_timesteps, cfg.sigma_min, cfg.sigma_max, cfg.sampling_eps)

    def set_timesteps(
        self, state: ScoreSdeVeSchedulerState, num_inference_steps: int, shape: tuple[int, ...] = (), sampling_eps: float | None = None
    ) -> ScoreSdeVeSchedulerState:
        """``state`` with ``timesteps = linspace(1, sampling_eps, num_inference_steps)``. ``shape`` is accepted
        for diffusers' signature and unused."""
        eps = self.config.sampling_eps if sampling_eps is None else self.config.replace(sampling_eps=sampling_eps).sampling_eps
        return state.replace(timesteps=_schedule.timesteps(num_inference_steps, eps, xp=jnp, dtype=self._dtype()))

    def set_sigmas(
        self,
        state: ScoreSdeVeSchedulerState,
        num_inference_steps: int,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        sampling_eps: float | None = None,
    ) -> ScoreSdeVeSchedulerState:
        """``state`` with ``discrete_sigmas`` (``num_inference_steps`` levels) and ``sigmas`` for its timesteps
        (set first from ``num_inference_steps`` and ``sampling_eps`` when the state has none)."""
        overrides = {k: v for k, v in (("sigma_min", sigma_min), ("sigma_max", sigma_max),
                                       ("sampling_eps", sampling_eps)) if v is not None}
        checked = self.config.replace(**overrides)  # the config's type and range checks
        sigma_min, sigma_max, eps = checked.sigma_min, checked.sigma_max, checked.sampling_eps
        if state.timesteps is None:
            state = self.set_timesteps(state, num_inference_steps, sampling_eps=eps)
        discrete = _schedule.discrete_sigmas(num_inference_steps, sigma_min, sigma_max, xp=jnp, dtype=self._dtype())
        sigmas = _schedule.continuous_sigmas(state.timesteps, sigma_min, sigma_max, xp=jnp)
        return state.replace(discrete_sigmas=discrete, sigmas=sigmas)

    def get_adjacent_sigma(self, state: ScoreSdeVeSchedulerState, timesteps: jax.Array, t: jax.Array) -> jax.Array:
        """``discrete_sigmas[timesteps - 1]``, 0 where ``timesteps == 0``; ``timesteps`` are integer indices
        (checked against the schedule where their values are concrete)."""
        self._require(state)
        index = jnp.asarray(timesteps)
        if not jnp.issubdtype(index.dtype, jnp.integer):
            raise TypeError(f"timesteps must be integer indices into discrete_sigmas, got dtype {index.dtype}")
        levels = state.discrete_sigmas.shape[0]
        if _concrete(index) and not bool(jnp.all((index >= 0) & (index < levels))):
            raise ValueError(f"timesteps must lie in [0, {levels - 1}]")
        return _schedule.adjacent_sigmas(state.discrete_sigmas, index, xp=jnp)

    @staticmethod
    def _require(state: ScoreSdeVeSchedulerState) -> None:
        if state.timesteps is None or state.discrete_sigmas is None:
            raise ValueError("state.timesteps is not set: call set_timesteps and set_sigmas (or create_state) first")
        if state.timesteps.shape[0] > state.discrete_sigmas.shape[0]:
            raise ValueError(
                f"the state has {state.timesteps.shape[0]} timesteps but {state.discrete_sigmas.shape[0]} discrete "
                "sigmas: call set_sigmas with the same number of steps"
            )

    def step_pred(
        self,
        state: ScoreSdeVeSchedulerState,
        model_output: jax.Array,
        timestep: Any,
        sample: jax.Array,
        key: jax.Array,
        return_dict: bool = True,
    ) -> FlaxSdeVeOutput | tuple[jax.Array, jax.Array, ScoreSdeVeSchedulerState]:
        """Predictor step; see :meth:`sdeve.ScoreSdeVeScheduler.step_pred`. ``timestep`` may be traced.

        Returns ``FlaxSdeVeOutput(state, prev_sample, prev_sample_mean)`` or
        ``(prev_sample, prev_sample_mean, state)``.
        """
        return_dict = _static_flag(return_dict, "return_dict")
        self._require(state)
        check_pair(model_output, sample)
        if isinstance(timestep, (str, bytes, bool)) or not (is_python_scalar(timestep) or hasattr(timestep, "dtype")):
            raise TypeError(f"timestep must be a real number or an array, got {type(timestep).__name__}")
        t = jnp.asarray(timestep, dtype=state.timesteps.dtype)
        if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, sample.shape[0])):
            raise ValueError(f"timestep must be a scalar or of shape (B,), got {t.shape}")
        # Values are read only where that is free (host memory, not traced): on a GPU a read would synchronise
        # every step; there an out-of-range time is clamped to the nearest end of the schedule instead.
        if isinstance(timestep, (int, float)) and not isinstance(timestep, bool):
            if not 0.0 <= float(timestep) <= 1.0:
                raise ValueError(f"timestep must be a continuous time in [0, 1], got {timestep}")
        elif _concrete(t) and not bool(jnp.all((t >= 0) & (t <= 1))):
            raise ValueError("timestep must be a continuous time in [0, 1]")
        prev, prev_mean = _predictor_kernel(state.timesteps, state.discrete_sigmas, model_output, t, sample, as_key(key))
        if not return_dict:
            return (prev, prev_mean, state)
        return FlaxSdeVeOutput(state=state, prev_sample=prev, prev_sample_mean=prev_mean)

    def step_correct(
        self,
        state: ScoreSdeVeSchedulerState,
        model_output: jax.Array,
        sample: jax.Array,
        key: jax.Array,
        return_dict: bool = True,
    ) -> FlaxSdeVeOutput | tuple[jax.Array, ScoreSdeVeSchedulerState]:
        """Corrector step (batch mean of per-example norms, as every backend); returns
        ``FlaxSdeVeOutput(state, prev_sample)`` or ``(prev_sample, state)``."""
        return_dict = _static_flag(return_dict, "return_dict")
        self._require(state)
        check_pair(model_output, sample)
        prev = _corrector_kernel(model_output, sample, as_key(key), self.config.snr)
        if not return_dict:
            return (prev, state)
        return FlaxSdeVeOutput(state=state, prev_sample=prev)

    # -- persistence, diffusers' Flax names
    def save_pretrained(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write ``scheduler_config.json`` (diffusers' format)."""
        if push_to_hub:
            raise ValueError("push_to_hub is not supported: sdeve reads and writes local files only")
        self.config.save(save_directory)

    save_config = save_pretrained

    @classmethod
    def from_config(cls, config: Any = None, **kwargs: Any) -> FlaxScoreSdeVeScheduler:
        """A scheduler from an :class:`SdeVeConfig` or mapping; keyword arguments override."""
        base = config if isinstance(config, SdeVeConfig) else SdeVeConfig.from_dict(dict(config or {}))
        dtype = kwargs.pop("dtype", None)
        return cls(**base.replace(**kwargs).to_dict(), dtype=dtype)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], subfolder: str | None = None, **kwargs: Any
    ) -> tuple[FlaxScoreSdeVeScheduler, ScoreSdeVeSchedulerState]:
        """``(scheduler, state)`` from a local ``scheduler_config.json``, as diffusers' Flax ``from_pretrained``."""
        scheduler = cls.from_config(SdeVeConfig.load(pretrained_model_name_or_path, subfolder=subfolder), **kwargs)
        return scheduler, scheduler.create_state()




# ---------------------------------------------------------------------- sampling: one compiled program
def sample(model: Any, shape: Any, *, sampler: str = "pc", **kwargs: Any) -> jax.Array:
    """:func:`sdeve.sample` for a JAX model, with the whole loop compiled into one program.

    Same arguments as :func:`sdeve.sample` (``generator`` a PRNG key or an int seed), less ``progress`` and
    ``callback``, which need the host between steps. The model must be traceable by ``jax.jit``.
    ``sdeve.sample`` takes this path by itself for JAX arrays when no callback or progress bar is asked for.
    """
    for name in ("progress", "callback"):
        if kwargs.get(name):
            raise TypeError(f"{name} is not available in the compiled loop: use sdeve.sample(...) for it")
        kwargs.pop(name, None)
    spec = _samplers.lookup(sampler)
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in spec.options}
    kwargs.setdefault("xp", jnp)
    kwargs["denoise"] = bool(kwargs.get("denoise", True))
    run = resolve(model, shape, **kwargs)
    run.strict = True
    return spec.run(run, **options)  # type: ignore[no-any-return]
