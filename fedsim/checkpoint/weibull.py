"""The Weibull failure law and the argument checks every checkpoint formula shares.

A node's lifetime X has survival S(t) = exp(−(t/λ)^k) (shape k, scale λ), so the
cumulative hazard is H(t) = (t/λ)^k and the hazard h(t) = (k/λ)(t/λ)^(k−1): it
falls with age for k < 1 (infant mortality), is constant for k = 1 (exponential,
memoryless) and rises for k > 1 (wear-out). Functions accept numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gamma

from fedsim.errors import FedsimError

FloatOrArray = float | NDArray[np.float64]


def require_positive(name: str, value: ArrayLike) -> None:
    """Raise FedsimError (a ValueError) naming ``name`` unless every value is finite and > 0."""
    _require(name, value, strict=True)


def require_non_negative(name: str, value: ArrayLike) -> None:
    """Raise FedsimError (a ValueError) naming ``name`` unless every value is finite and ≥ 0."""
    _require(name, value, strict=False)


def _require(name: str, value: ArrayLike, strict: bool) -> None:
    if isinstance(value, (int, float)):  # the common case, once per draw in the clocks: no array round trip
        ok = math.isfinite(value) and (value > 0 if strict else value >= 0)
    else:
        arr = np.asarray(value, dtype=float)
        ok = bool(np.all(np.isfinite(arr)) and np.all(arr > 0 if strict else arr >= 0))
    if not ok:
        raise FedsimError(f"{name} must be finite and {'>' if strict else '>='} 0, got {value!r}")


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if x.ndim == 0 else x


def cumulative_hazard(t: ArrayLike, shape: float, scale: float) -> FloatOrArray:
    """H(t) = (t/λ)^k, the expected number of failures by age t under minimal repair."""
    return _out((np.asarray(t, dtype=float) / scale) ** shape)


def survival(t: ArrayLike, shape: float, scale: float) -> FloatOrArray:
    """S(t) = P(X > t) = exp(−(t/λ)^k)."""
    return _out(np.exp(-np.asarray(cumulative_hazard(t, shape, scale))))


def hazard(t: ArrayLike, shape: float, scale: float) -> FloatOrArray:
    """h(t) = (k/λ)(t/λ)^(k−1), the failure rate at age t."""
    return _out(shape / scale * (np.asarray(t, dtype=float) / scale) ** (shape - 1.0))


def weibull_fail_prob(tau: ArrayLike, shape: float, scale: float) -> FloatOrArray:
    """P(a new node fails within τ) = 1 − exp(−(τ/λ)^k), the paper's per-interval failure probability."""
    require_positive("tau", tau)
    require_positive("shape", shape)
    require_positive("scale", scale)
    return _out(-np.expm1(-np.asarray(cumulative_hazard(tau, shape, scale))))


def weibull_mean(shape: float, scale: float) -> float:
    """Mean lifetime (MTBF of a renewed node) λΓ(1 + 1/k)."""
    require_positive("shape", shape)
    require_positive("scale", scale)
    return float(scale * gamma(1.0 + 1.0 / shape))

