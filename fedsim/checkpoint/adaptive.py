"""A failure law estimated online, the single law of a mixed fleet, and τ* from either (pure functions).

Adaptive checkpointing (the checkpointing paper's mechanism, run per client): a node
keeps its observed up-times (from the start or a repair to the next failure; the
current one censored at the present), refits Weibull k and λ, and checkpoints at the
τ* of the fit. With few failures an MLE of k is wild, so until a node has seen
``min_failures`` failures of its own :func:`estimate_law` keeps the prior's k and
updates only λ, treating the prior as ``prior_failures`` pseudo-failures at the prior
law: with k fixed, λ^k has the conjugate update

    λ̂^k = (n₀ λ₀^k + Σᵢ tᵢ^k) / (n₀ + r),

(r own failures, tᵢ every up-time, censored ones included), so a node that keeps
running without failing sees its λ, and its τ*, grow from the first refit on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import gammaln, logsumexp

from fedsim.checkpoint.cost import Model, optimal_interval
from fedsim.checkpoint.fit import fit_weibull
from fedsim.checkpoint.weibull import require_positive
from fedsim.errors import FedsimError


@dataclass(frozen=True)
class Law:
    """A Weibull failure law: shape k, scale λ (time units of the caller)."""

    shape: float
    scale: float


@dataclass(frozen=True)
class Estimate:
    """An online estimate: the law, how it was obtained (``prior`` or ``fit``), and the data behind it."""

    law: Law
    source: str  # prior: prior k, λ updated by exposure | fit: censored MLE of the node's own up-times
    failures: int  # uncensored up-times seen
    exposure: float  # total up-time seen, censored included


def fleet_law(shares: Sequence[float], shapes: Sequence[float], scales: Sequence[float]) -> Law:
    """The one Weibull that a long failure log of a mixed fleet fits (groups of ``shares`` of the clients).

    A renewed node of group j fails at rate 1/Mⱼ (Mⱼ = λⱼΓ(1 + 1/kⱼ)), so the fleet's
    log holds group j's lifetimes in proportion wⱼ ∝ shareⱼ/Mⱼ: a phone failing every
    minute outweighs a gateway failing every week. Fitting one Weibull to that log
    (the paper's "k, λ estimated from historical failure data") tends, as the log grows,
    to the law closest in Kullback–Leibler divergence to the mixture Σ wⱼ Weibull(kⱼ, λⱼ):
    it maximises the expected log-likelihood, which has a closed form per k, with
    E[log X] = Σ wⱼ(log λⱼ − γ/kⱼ) and E[X^k] = Σ wⱼ λⱼ^k Γ(1 + k/kⱼ). The profile
    λ^k = E[X^k] leaves one function of log k. A single group gives back its own law.
    """
    share, k_j, lam_j = (np.asarray(v, dtype=float) for v in (shares, shapes, scales))
    require_positive("shares", share)
    require_positive("shapes", k_j)
    require_positive("scales", lam_j)
    if not (share.shape == k_j.shape == lam_j.shape):
        raise FedsimError("fleet_law needs one share, shape and scale per group")
    w = share / (lam_j * np.exp(gammaln(1.0 + 1.0 / k_j)))  # failures per unit time of each group
    w = w / w.sum()
    mean_log = float(w @ (np.log(lam_j) - np.euler_gamma / k_j))

    def log_moment(k: float) -> float:  # log E[X^k]
        return float(logsumexp(np.log(w) + k * np.log(lam_j) + gammaln(1.0 + k / k_j)))

    def neg_loglik(log_k: float) -> float:
        k = math.exp(log_k)
        return -(log_k - log_moment(k) + (k - 1.0) * mean_log)

    grid = np.linspace(math.log(0.01), math.log(4.0 * k_j.max()), 200)  # a wide mixture fits a small k
    i = int(np.argmin([neg_loglik(x) for x in grid]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(neg_loglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    k = math.exp(res.x)
    return Law(shape=k, scale=math.exp(log_moment(k) / k))


def estimate_law(
    uptimes: ArrayLike,
    censored: ArrayLike,
    prior: Law | None,
    *,
    min_failures: int,
    prior_failures: float,
) -> Estimate | None:
    """The law a node believes in after seeing ``uptimes`` (see the module docstring).

    ``None`` when there is no prior and too few failures to fit (nothing to base τ on).
    """
    t = np.asarray(uptimes, dtype=float)
    c = np.asarray(censored, dtype=bool)
    keep = t > 0  # a censored up-time of length 0 (refit at the instant of a repair) carries nothing
    t, c = t[keep], c[keep]
    r, exposure = int((~c).sum()), float(t.sum())
    if r >= min_failures:
        try:
            fit = fit_weibull(t, c)
            return Estimate(Law(fit.shape, fit.scale), "fit", r, exposure)
        except FedsimError:  # identical failure times (replayed traces): keep the prior
            pass
    if prior is None:
        return None
    k = prior.shape
    theta = (prior_failures * prior.scale**k + float(np.sum(t**k))) / (prior_failures + r)
    return Estimate(Law(k, theta ** (1.0 / k)), "prior", r, exposure)


def tau_star(law: Law | None, delta: float, restart: float, model: Model = "renewal") -> float:
    """τ* for ``law``; ∞ without failures (``law`` None), 0 (checkpoint every step) when δ = 0."""
    if law is None:
        return math.inf
    if delta <= 0:
        return 0.0
    return optimal_interval(delta, restart, law.shape, law.scale, model).tau
