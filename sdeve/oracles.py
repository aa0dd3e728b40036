"""Analytic scores for tests and demos: a Gaussian mixture, exactly, at every noise level.

A mixture ``p(x) = sum_k w_k N(x; mu_k, s_k^2 I)`` perturbed by the VE forward process (noise ``N(0, sigma^2 I)``)
stays a mixture, with variances ``v_k = s_k^2 + sigma^2``. Its score is therefore known in closed form::

    grad_x log p_sigma(x) = sum_k r_k(x) (mu_k - x) / v_k,    r_k = softmax_k(log w_k + log N(x; mu_k, v_k I))

so a sampler driven by :meth:`GaussianMixture.score` should reproduce the mixture, and :meth:`report` measures
how well it did. Everything is written against the array API: the same object scores NumPy, torch, JAX, CuPy,
Dask or ``array_api_strict`` arrays, on their device and in their dtype (at least float32 inside).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from typing import Any

from ._xp import Array, Namespace, array_namespace, compute_dtype, device_of, index_dtype, resolve_namespace
from .backends import backend_for
from .protocols import NoiseSource
from .validation import dtype_name

__all__ = ["GaussianMixture", "MixtureReport"]

MAX_ELEMENTS = 2**62  # what a 64-bit size can count


def _host_array(values: Any) -> Any:
    """``values`` (a nested sequence, or an array of any library and device) as a float64 NumPy array."""
    host = resolve_namespace("numpy")
    if hasattr(values, "compute") and callable(values.compute):  # Dask: compute the graph
        values = values.compute()
    if hasattr(values, "shape") and not isinstance(values, host.ndarray if hasattr(host, "ndarray") else ()):
        if hasattr(values, "detach"):  # torch, possibly on a GPU
            values = values.detach().cpu()
        if hasattr(values, "get") and type(values).__module__.startswith("cupy"):
            values = values.get()
        try:
            values = host.asarray(values)
        except Exception:
            values = host.from_dlpack(values)
    return host.asarray(values, dtype=host.float64)


def _checked_host_array(values: Any, name: str) -> Any:
    """:func:`_host_array`, with ``ValueError`` naming ``name`` for values beyond the float range."""
    try:
        return _host_array(values)
    except OverflowError:
        raise ValueError(f"{name} must be finite floats: some are beyond the float range") from None


@dataclasses.dataclass(frozen=True)
class MixtureReport:
    """How a set of samples matches a :class:`GaussianMixture`, each sample assigned to its most likely
    component (well-separated components make this assignment nearly exact).

    Attributes
    ----------
    n
        Number of samples.
    counts, weights, means, stds
        Per component: samples assigned, their fraction, their mean (flattened, ``(D,)``) and their isotropic
        standard deviation ``sqrt(mean over samples and axes of (x - mean)^2)``.
    weight_error
        ``max_k |weight_k - w_k|``.
    mean_error
        ``max_k ||mean_k - mu_k|| / (s_k sqrt(D))``: the RMS error per axis in units of the component's std
        (about ``1 / sqrt(count_k)`` for exact samples).
    std_error
        ``max_k |std_k / s_k - 1|``.
    log_likelihood
        The mean of ``log p(x)`` over the samples, under the true (noise-free) mixture.
    """

    n: int
    counts: tuple[int, ...]
    weights: tuple[float, ...]
    means: tuple[tuple[float, ...], ...]
    stds: tuple[float, ...]
    weight_error: float
    mean_error: float
    std_error: float
    log_likelihood: float

    def as_dict(self) -> dict[str, float]:
        """The four summary figures."""
        return {"weight_error": self.weight_error, "mean_error": self.mean_error, "std_error": self.std_error,
                "log_likelihood": self.log_likelihood}

    def __str__(self) -> str:
        return (f"weight error {self.weight_error:.4f}, mean error {self.mean_error:.4f} std, "
                f"std error {100 * self.std_error:.2f}%, log-likelihood {self.log_likelihood:.4f} (n={self.n})")


class GaussianMixture:
    """A mixture of isotropic Gaussians with its exact score at every noise level (see the module docstring).

    Parameters
    ----------
    weights
        ``(K,)`` positive mixture weights (normalised here).
    means
        ``(K, *data_shape)`` component means: points (``(K, 2)``), images (``(K, C, H, W)``), anything.
    stds
        ``(K,)`` positive isotropic standard deviations (or one number for all).

    Parameters may be Python sequences or arrays of any library; they are kept on the host in float64 and
    built in the namespace, device and dtype of the arrays they meet (cached).

    The object is a model for :func:`sdeve.sample`: ``mixture(x, sigma)`` is :meth:`score`.
    """

    def __init__(self, weights: Any, means: Any, stds: Any) -> None:
        host = resolve_namespace("numpy")
        w, mu, s = (_checked_host_array(v, name) for v, name in ((weights, "weights"), (means, "means"), (stds, "stds")))
        if w.ndim != 1 or w.shape[0] < 1:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {tuple(w.shape)}")
        k = w.shape[0]
        if mu.ndim < 2 or mu.shape[0] != k:
            raise ValueError(f"means must have shape (K, *data_shape) with K = {k}, got {tuple(mu.shape)}")
        if s.ndim == 0:
            s = host.full((k,), float(s), dtype=host.float64)
        if s.shape != (k,):
            raise ValueError(f"stds must be a number or have shape (K,) = ({k},), got {tuple(s.shape)}")
        if not (bool(host.all(w > 0)) and bool(host.all(host.isfinite(w)))):
            raise ValueError("weights must be finite and > 0")
        if not (bool(host.all(s > 0)) and bool(host.all(host.isfinite(s * s)))):
            raise ValueError("stds must be > 0 with finite squares (variances)")
        if not bool(host.all(host.isfinite(mu))):
            raise ValueError("means must be finite")
        self._weights = w / host.sum(w)
        self._means = mu
        self._stds = s
        self._cache: dict[tuple[str, str, str], tuple[Array, Array, Array, Array]] = {}

    # ------------------------------------------------------------------ description
    @property
    def num_components(self) -> int:
        """``K``."""
        return int(self._weights.shape[0])

    @property
    def data_shape(self) -> tuple[int, ...]:
        """The shape of one sample."""
        return tuple(int(d) for d in self._means.shape[1:])

    @property
    def dim(self) -> int:
        """``D``, the number of values in one sample."""
        return math.prod(self.data_shape)

    @property
    def weights(self) -> tuple[float, ...]:
        """The normalised weights."""
        return tuple(float(v) for v in self._weights)

    @property
    def stds(self) -> tuple[float, ...]:
        """The component standard deviations."""
        return tuple(float(v) for v in self._stds)

    def means(self, xp: Namespace | str | None = None, *, device: Any = None, dtype: Any = None) -> Array:
        """The means ``(K, *data_shape)`` in ``xp`` (default NumPy)."""
        ns = resolve_namespace(xp)
        return ns.asarray(self._means.tolist(), dtype=ns.float64 if dtype is None else dtype, device=device)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.num_components}, data_shape={self.data_shape})"

    # ------------------------------------------------------------------ parameters in a namespace
    def _params(self, xp: Namespace, device: Any, dtype: Any) -> tuple[Array, Array, Array, Array]:
        """``(log_weights (K,), means (K, D), variances (K,), normal quantiles of the weights' cumsum (K-1,))``."""
        key = (getattr(xp, "__name__", str(xp)), str(device), str(dtype))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        k = self.num_components
        cumulative = [float(v) for v in resolve_namespace("numpy").cumsum(self._weights)[:-1]]
        normal = statistics.NormalDist()
        quantiles = [normal.inv_cdf(min(max(c, 1e-300), 1 - 1e-16)) for c in cumulative]
        built = (
            xp.asarray([math.log(float(v)) for v in self._weights], dtype=dtype, device=device),
            xp.asarray(self._means.reshape(k, -1).tolist(), dtype=dtype, device=device),
            xp.asarray([float(v) ** 2 for v in self._stds], dtype=dtype, device=device),
            xp.asarray(quantiles, dtype=dtype, device=device),
        )
        if not backend_for(xp).traced(built[0]):  # arrays built inside a trace die with it
            self._cache[key] = built
        return built

    def _flat(self, x: Array, xp: Namespace) -> tuple[Array, Any]:
        if not xp.isdtype(x.dtype, "real floating"):
            raise TypeError(f"samples must have a real floating dtype, got {x.dtype}")
        if x.ndim < 1 or tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"expected samples of shape (B, *{self.data_shape}), got {tuple(x.shape)}")
        dtype = compute_dtype(xp, x.dtype)
        flat = xp.reshape(x, (x.shape[0], self.dim))
        return (flat if flat.dtype == dtype else xp.astype(flat, dtype)), dtype

    def _noisy_variances(self, var: Array, sigma: Any, batch: int, dtype: Any, xp: Namespace) -> Array:
        """``s_k^2 + sigma^2`` as ``(1, K)`` (scalar sigma) or ``(B, K)`` (``(B,)`` sigma)."""
        if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
            level = float(sigma)
            if not level * level <= float(xp.finfo(dtype).max):
                raise ValueError(f"sigma={level:g} is too large: its square must be a finite {dtype_name(dtype)}")
            return xp.reshape(var + level * level, (1, -1))
        sigma = sigma if sigma.dtype == dtype else xp.astype(sigma, dtype)
        if sigma.ndim == 0:
            return xp.reshape(var + sigma * sigma, (1, -1))
        if sigma.ndim != 1 or sigma.shape[0] != batch:
            raise ValueError(f"sigma must be a number, 0-d, or of shape (B,) = ({batch},), got {tuple(sigma.shape)}")
        sigma = xp.reshape(sigma, (-1, 1))
        return xp.reshape(var, (1, -1)) + sigma * sigma

    def _component_log_probs(self, x: Array, sigma: Any, xp: Namespace) -> tuple[Array, Array, Array, Array]:
        """``(log w_k N(x; mu_k, v_k I) as (B, K), v (B or 1, K), flat x (B, D), means (K, D))``."""
        flat, dtype = self._flat(x, xp)
        log_w, means, var, _ = self._params(xp, device_of(x), dtype)
        v = self._noisy_variances(var, sigma, flat.shape[0], dtype, xp)
        diff = xp.expand_dims(flat, axis=1) - xp.expand_dims(means, axis=0)  # (B, K, D)
        d2 = xp.sum(diff * diff, axis=-1)
        dim = float(self.dim)
        logp = xp.reshape(log_w, (1, -1)) - 0.5 * dim * xp.log(2 * math.pi * v) - d2 / (2 * v)
        return logp, v, flat, means

    # ------------------------------------------------------------------ densities and scores
    def log_prob(self, x: Array, sigma: Any = 0.0, *, xp: Namespace | None = None) -> Array:
        """``log p_sigma(x)``, shape ``(B,)``: the log-density of the mixture convolved with ``N(0, sigma^2 I)``.

        ``x`` has shape ``(B, *data_shape)``; ``sigma`` is a number, a 0-d array or a ``(B,)`` array. The result
        has ``x``'s namespace and device, in at least float32.
        """
        xp = array_namespace(x) if xp is None else xp
        logp, _, _, _ = self._component_log_probs(x, sigma, xp)
        return _logsumexp(logp, xp)

    def posterior(self, x: Array, sigma: Any = 0.0, *, xp: Namespace | None = None) -> Array:
        """``r_k(x)``, shape ``(B, K)``: the probability that ``x`` came from component ``k`` (at level ``sigma``)."""
        xp = array_namespace(x) if xp is None else xp
        logp, _, _, _ = self._component_log_probs(x, sigma, xp)
        return _softmax_from_log(logp, xp)

    def score(self, x: Array, sigma: Any = 0.0, *, xp: Namespace | None = None) -> Array:
        """The exact score ``grad_x log p_sigma(x) = sum_k r_k (mu_k - x) / v_k``: ``x``'s shape and dtype.

        ``sigma``: a number, a 0-d array, or ``(B,)`` as :func:`sdeve.sample` passes it.
        """
        xp = array_namespace(x) if xp is None else xp
        logp, v, flat, means = self._component_log_probs(x, sigma, xp)
        r = _softmax_from_log(logp, xp)  # (B, K)
        r_over_v = r / v
        out = xp.matmul(r_over_v, means) - flat * xp.sum(r_over_v, axis=1, keepdims=True)
        out = xp.reshape(out, tuple(x.shape))
        return out if out.dtype == x.dtype else xp.astype(out, x.dtype)

    __call__ = score

    def divergence(self, x: Array, sigma: Any = 0.0, *, xp: Namespace | None = None) -> Array:
        """The exact divergence of the score, ``div_x grad_x log p_sigma(x)`` (the Laplacian of ``log p_sigma``),
        shape ``(B,)``, in ``x``'s dtype.

        With ``a_k = (mu_k - x) / v_k`` and the score ``s = sum_k r_k a_k``, the Jacobian of the score is
        ``sum_k r_k (a_k (a_k - s)^T - I / v_k)``, whose trace is
        ``sum_k r_k |a_k|^2 - |s|^2 - D sum_k r_k / v_k``. This is what the likelihood's augmented ODE integrates
        (Song et al. 2021, Appendix D.2, with the exact trace). ``sigma`` as in :meth:`score`.
        """
        xp = array_namespace(x) if xp is None else xp
        logp, v, flat, means = self._component_log_probs(x, sigma, xp)
        r = _softmax_from_log(logp, xp)  # (B, K)
        r_over_v = r / v
        s = xp.matmul(r_over_v, means) - flat * xp.sum(r_over_v, axis=1, keepdims=True)  # (B, D)
        diff = xp.expand_dims(flat, axis=1) - xp.expand_dims(means, axis=0)  # (B, K, D)
        a2 = xp.sum(diff * diff, axis=-1) / (v * v)  # |a_k|^2, (B, K)
        out = xp.sum(r * a2, axis=1) - xp.sum(s * s, axis=1) - float(self.dim) * xp.sum(r_over_v, axis=1)
        return out if out.dtype == x.dtype else xp.astype(out, x.dtype)

    def class_score(self, x: Array, sigma: Any, label: Any, *, xp: Namespace | None = None) -> Array:
        """``grad_x log p(y = label | x, sigma) = (mu_y - x) / v_y - score(x, sigma)``: the exact guidance term of
        class-conditional sampling (Song et al. 2021, Sec. 5 and Appendix I.4) when the class is the component.

        ``label``: an int in ``[0, K)`` or a ``(B,)`` integer array. Returns ``x``'s shape and dtype; adding it to
        :meth:`score` gives the score of component ``label`` alone at level ``sigma``.
        """
        xp = array_namespace(x) if xp is None else xp
        logp, v, flat, means = self._component_log_probs(x, sigma, xp)
        r_over_v = _softmax_from_log(logp, xp) / v
        score = xp.matmul(r_over_v, means) - flat * xp.sum(r_over_v, axis=1, keepdims=True)
        k = self.num_components
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < k:
                raise ValueError(f"label must lie in [0, {k}), got {label}")
            onehot = xp.reshape(xp.asarray([float(j == label) for j in range(k)], dtype=v.dtype,
                                            device=device_of(flat)), (1, k))
        else:
            classes = xp.reshape(xp.arange(k, device=device_of(flat)), (1, k))
            onehot = xp.astype(xp.reshape(label, (-1, 1)) == xp.astype(classes, label.dtype), v.dtype)
        inv_v = xp.sum(onehot / v, axis=1, keepdims=True)  # 1 / v_y, (B or 1, 1)
        own = xp.matmul(onehot, means) * inv_v - flat * inv_v  # (mu_y - x) / v_y
        out = xp.reshape(own - score, tuple(x.shape))
        return out if out.dtype == x.dtype else xp.astype(out, x.dtype)

    def component(self, k: int) -> GaussianMixture:
        """Component ``k`` alone, as a one-component mixture (the exact class-conditional distribution)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.num_components:
            raise ValueError(f"k must be an int in [0, {self.num_components}), got {k!r}")
        return GaussianMixture([1.0], self._means[k : k + 1], [float(self._stds[k])])

    # ------------------------------------------------------------------ exact samples
    def sample_from_normals(self, component_noise: Array, noise: Array, *, xp: Namespace | None = None) -> Array:
        """Exact samples from standard normals: ``component_noise`` ``(B,)`` picks the component (by the
        normal quantiles of the cumulative weights, so ``P(k) = w_k``), ``noise`` ``(B, *data_shape)`` gives
        ``x = mu_k + s_k * noise``. The result has ``noise``'s namespace, device and dtype.
        """
        xp = array_namespace(noise) if xp is None else xp
        _, dtype = self._flat(noise, xp)
        quantiles = self._params(xp, device_of(noise), dtype)[3]
        return self._sample_with(component_noise, quantiles, noise, "component_noise", xp=xp)

    def sample_from_uniforms(self, uniforms: Array, noise: Array, *, xp: Namespace | None = None) -> Array:
        """Exact samples from ``uniforms`` ``(B,)`` in [0, 1) (component ``k`` where the cumulative weights pass
        ``u``) and standard normals ``noise`` ``(B, *data_shape)``: ``x = mu_k + s_k * noise``."""
        xp = array_namespace(noise) if xp is None else xp
        _, dtype = self._flat(noise, xp)
        cumulative_host = resolve_namespace("numpy").cumsum(self._weights)[:-1]
        cumulative = xp.asarray([float(v) for v in cumulative_host], dtype=dtype, device=device_of(noise))
        return self._sample_with(uniforms, cumulative, noise, "uniforms", xp=xp)

    def _sample_with(self, picks: Array, thresholds: Array, noise: Array, name: str, *, xp: Namespace) -> Array:
        """Component ``k = #{thresholds < pick}`` per example, then ``mu_k + s_k * noise``."""
        flat, dtype = self._flat(noise, xp)
        batch = flat.shape[0]
        if tuple(picks.shape) != (batch,):
            raise ValueError(f"{name} must have shape (B,) = ({batch},), got {tuple(picks.shape)}")
        device = device_of(noise)
        _, means, var, _ = self._params(xp, device, dtype)
        c = picks if picks.dtype == dtype else xp.astype(picks, dtype)
        above = xp.astype(xp.expand_dims(c, axis=1) > xp.expand_dims(thresholds, axis=0), index_dtype(xp, device))
        if thresholds.shape[0]:
            component = xp.sum(above, axis=1)
        else:  # one component
            component = xp.zeros((batch,), dtype=above.dtype, device=device)
        scale = xp.expand_dims(xp.sqrt(xp.take(var, component, axis=0)), axis=1)
        out = xp.take(means, component, axis=0) + scale * flat
        out = xp.reshape(out, tuple(noise.shape))
        return out if out.dtype == noise.dtype else xp.astype(out, noise.dtype)

    def sample(
        self, n: int, *, generator: Any = None, xp: Namespace | str | None = None, device: Any = None, dtype: Any = None
    ) -> Array:
        """``n`` exact samples, shape ``(n, *data_shape)``, drawn with the framework's generator (or seed)."""
        if not 0 < int(n) <= MAX_ELEMENTS // max(self.dim, 1):
            raise ValueError(f"n must be a positive number of samples of shape {self.data_shape} that an array can "
                             f"hold, got {n}")
        ns = resolve_namespace(xp)
        dtype = ns.float32 if dtype is None else dtype
        backend = backend_for(ns)
        source = NoiseSource(backend, backend.make_generator(generator, device))
        noise = source.draw((int(n), *self.data_shape), dtype=dtype, device=device)
        component_noise = source.draw((int(n),), dtype=dtype, device=device)
        return self.sample_from_normals(component_noise, noise, xp=ns)

    # ------------------------------------------------------------------ quality
    def assign(self, x: Array, *, xp: Namespace | None = None) -> Array:
        """The most likely component of each sample (noise-free), shape ``(B,)``, integer."""
        xp = array_namespace(x) if xp is None else xp
        logp, _, _, _ = self._component_log_probs(x, 0.0, xp)
        return xp.argmax(logp, axis=1)

    def report(self, samples: Array) -> MixtureReport:
        """Compare ``samples`` ``(B, *data_shape)`` (any library, any device) with the mixture; computed on the
        host in float64. See :class:`MixtureReport`."""
        host = resolve_namespace("numpy")
        x = _host_array(samples)
        if x.ndim < 1 or tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"expected samples of shape (B, *{self.data_shape}), got {tuple(x.shape)}")
        n = int(x.shape[0])
        flat = x.reshape(n, self.dim)
        if not bool(host.all(host.isfinite(flat))):
            nan = float("nan")
            k = self.num_components
            inf = math.inf
            return MixtureReport(n, (0,) * k, (nan,) * k, ((nan,),) * k, (nan,) * k, inf, inf, inf, -inf)
        component = self.assign(x, xp=host)
        counts, weights, means, stds = [], [], [], []
        weight_error = mean_error = std_error = 0.0
        for k in range(self.num_components):
            members = flat[component == k]
            count = int(members.shape[0])
            counts.append(count)
            weights.append(count / max(n, 1))
            weight_error = max(weight_error, abs(count / max(n, 1) - float(self._weights[k])))
            if count == 0:
                means.append(tuple(math.nan for _ in range(self.dim)))
                stds.append(math.nan)
                mean_error = std_error = math.inf
                continue
            mean = host.mean(members, axis=0)
            std = float(host.sqrt(host.mean((members - mean) ** 2)))
            means.append(tuple(float(v) for v in mean))
            stds.append(std)
            s_k = float(self._stds[k])
            rms = float(host.sqrt(host.mean((mean - self._means.reshape(self.num_components, -1)[k]) ** 2)))
            mean_error = max(mean_error, rms / s_k)
            std_error = max(std_error, abs(std / s_k - 1.0))
        log_likelihood = float(host.mean(self.log_prob(x, xp=host)))
        return MixtureReport(n, tuple(counts), tuple(weights), tuple(means), tuple(stds), weight_error, mean_error,
                             std_error, log_likelihood)


def _softmax_from_log(logp: Array, xp: Namespace) -> Array:
    """``softmax`` over axis 1 of log-weights ``(B, K)``. Log-ratios below -80 are clamped there before
    ``exp``: ``exp(-80) ~ 2e-35`` is far below float32 resolution of the result, and the clamp keeps
    subnormal numbers (a slow path on CPUs) out of ``exp`` and of the products that follow."""
    shifted = logp - xp.expand_dims(_logsumexp(logp, xp), axis=1)
    return xp.exp(xp.clip(shifted, -80.0, None))


def _logsumexp(values: Array, xp: Namespace) -> Array:
    """``log sum_k exp(values[:, k])``, shape ``(B,)``, stable."""
    top = xp.max(values, axis=1, keepdims=True)
    return xp.reshape(top, (-1,)) + xp.log(xp.sum(xp.exp(values - top), axis=1))


def ring(
    num_components: int = 8, radius: float = 4.0, std: float = 0.35, weights: Sequence[float] | None = None
) -> GaussianMixture:
    """A 2-D mixture of ``num_components`` Gaussians evenly spaced on a circle (unequal weights by default,
    so that weight errors show)."""
    if weights is None:
        weights = [1.0 + (k % 3) for k in range(num_components)]
    means = [[radius * math.cos(2 * math.pi * k / num_components), radius * math.sin(2 * math.pi * k / num_components)]
             for k in range(num_components)]
    return GaussianMixture(weights, means, [std] * num_components)
