"""The backends under test: namespace x device, each importable or skipped with a reason.

One list, used by ``python -m conformance``, by ``pytest conformance`` and by ``tests/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "CONFORMANCE_BACKENDS", "Backend", "LoadedBackend", "load_backend"]


@dataclasses.dataclass(frozen=True)
class Backend:
    """A namespace on a device. ``gpu`` backends need a CUDA GPU."""

    name: str  # readable id: numpy, numpy_readonly, array_api_strict, torch, torch:cuda, jax, jax:x64, jax:gpu, cupy, dask
    module: str  # the module the user passes as xp
    gpu: bool = False
    x64: bool = False  # JAX only: run inside ``jax.enable_x64(True)``

    @property
    def id(self) -> str:
        return self.name


BACKENDS: tuple[Backend, ...] = (
    Backend("numpy", "numpy"),
    Backend("numpy_readonly", "numpy"),
    Backend("array_api_strict", "array_api_strict"),
    Backend("torch", "torch"),
    Backend("jax", "jax.numpy"),
    Backend("dask", "dask.array"),
    Backend("torch:cuda", "torch", gpu=True),
    Backend("jax:gpu", "jax.numpy", gpu=True),
    Backend("cupy", "cupy", gpu=True),
)

# The conformance suite also runs JAX with 64-bit mode on (a context, so the rest of the process keeps
# JAX's default); ``tests/`` uses BACKENDS, where ``jax`` means JAX as configured.
CONFORMANCE_BACKENDS: tuple[Backend, ...] = (
    *BACKENDS[:5],
    Backend("jax:x64", "jax.numpy", x64=True),
    *BACKENDS[5:],
)


@dataclasses.dataclass
class LoadedBackend:
    """An importable backend: its standard namespace ``xp``, the ``device`` to use, and helpers that move
    NumPy data in and out."""

    backend: Backend
    xp: Any
    device: Any

    @property
    def name(self) -> str:
        return self.backend.name

    def context(self) -> Any:
        """The context the backend runs in: ``jax.enable_x64(True)`` for ``jax:x64``, else nothing."""
        if self.backend.x64:
            import jax

            return jax.enable_x64(True)
        return contextlib.nullcontext()

    @property
    def device_name(self) -> str:
        """The device as the table prints it."""
        return "cpu" if self.device is None else str(self.device)

    def dtypes(self) -> dict[str, Any]:
        """The floating dtypes this backend has on its device, by name."""
        names = ["float16", "bfloat16", "float32", "float64"]
        out: dict[str, Any] = {}
        for name in names:
            dtype = getattr(self.xp, name, None)
            if dtype is None and self.backend.module in ("numpy", "dask.array") and name == "float16":
                dtype = np.float16
            if dtype is None:
                continue
            if name == "float64" and not _has_float64(self.xp, self.device):
                continue
            out[name] = dtype
        if self.backend.name == "array_api_strict":
            out.pop("float16", None)
        return out

    def asarray(self, values: np.ndarray, dtype: Any = None) -> Any:
        """``values`` (NumPy) as an array of this backend, on its device, in ``dtype``."""
        xp = self.xp
        if self.backend.module == "torch":
            import torch

            out = torch.as_tensor(np.array(values, order="C"), device=self.device)
            return out if dtype is None else out.to(dtype)
        if self.backend.module == "jax.numpy":
            import jax

            out = jax.device_put(np.asarray(values), self.device)
            return out if dtype is None else out.astype(dtype)
        if self.backend.module == "dask.array":
            import dask.array as da

            arr = np.asarray(values)
            chunks = tuple(max(1, (s + 1) // 2) for s in arr.shape) if arr.ndim else ()
            out = da.from_array(arr, chunks=chunks) if arr.ndim else da.from_array(arr)
            return out if dtype is None else out.astype(dtype)
        if self.backend.module == "cupy":
            import cupy

            out = cupy.asarray(values)
            return out if dtype is None else out.astype(dtype)
        if self.backend.name == "numpy_readonly":
            out = np.array(values, dtype=dtype, copy=True)
            out.flags.writeable = False
            return out
        out = xp.asarray(values) if self.backend.module != "numpy" else np.asarray(values)
        return out if dtype is None else xp.astype(out, dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """``x`` as a float64 NumPy array (computing Dask graphs, copying off devices)."""
        module = self.backend.module
        if module == "torch":
            return x.detach().to("cpu").double().numpy()
        if module == "cupy":
            return x.get().astype(np.float64)
        if module == "dask.array":
            return np.asarray(x.compute(), dtype=np.float64)
        if module == "array_api_strict":
            import array_api_strict as s

            return np.asarray(s.astype(x, s.float64)) if x.dtype != s.float64 else np.asarray(x)
        return np.asarray(x).astype(np.float64)


def _has_float64(xp: Any, device: Any) -> bool:
    try:
        return "float64" in xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    except Exception:  # noqa: BLE001 - a namespace without the inspection API
        return hasattr(xp, "float64")


def load_backend(backend: Backend) -> LoadedBackend:
    """Import ``backend`` and pick its device; raises ``ImportError``/``RuntimeError`` saying why it cannot run."""
    from sdeve._xp import resolve_namespace

    root = backend.module.split(".")[0]
    importlib.import_module(root)
    xp = resolve_namespace(backend.module)
    device: Any = None
    if backend.name == "torch":
        device = "cpu"
    elif backend.name == "torch:cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device")
        device = torch.device("cuda")
    elif backend.name in ("jax", "jax:x64"):
        import jax

        device = jax.devices("cpu")[0]
    elif backend.name == "jax:gpu":
        import jax

        try:
            device = jax.devices("gpu")[0]
        except RuntimeError as exc:
            raise RuntimeError(f"no JAX GPU device: {exc}") from None
    elif backend.name == "cupy":
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
        device = cupy.cuda.Device(0)
    return LoadedBackend(backend, xp, device)
