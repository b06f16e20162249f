"""Expected cost of periodic checkpointing under Weibull failures, and its minimiser τ*.

Notation (all times in the same unit): τ useful work between checkpoints, δ the
checkpoint cost, R the restart (recovery) cost, k and λ the Weibull shape and scale,
T the job's useful work, w = τ + δ one segment, S(t) = exp(−(t/λ)^k), M = λΓ(1+1/k).

Assumption shared with :mod:`fedsim.sim.checkpointed_job` (so the two agree exactly
in expectation): **failures strike during work and during checkpoints, never during
restarts.** A failure anywhere in a segment (including its checkpoint) loses the whole
segment; the node then spends R down (repair + reload, age frozen) and redoes the
segment. Every segment, including the last, ends with a checkpoint. Overheads are
dimensionless: total time / useful work − 1; costs are times: T × overhead.

Failure models (how a node ages):

* ``"segment"``: as good as new at the start of every segment (the textbook
  approximation). One segment takes, in expectation,
  E = [∫₀ʷ S(t)dt + (1 − S(w))R] / S(w), so overhead = E/τ − 1, with
  ∫₀ʷ S = M·P(1/k, (w/λ)^k) (regularised incomplete gamma).
* ``"renewal"``: as good as new after each repair, ageing across successful
  checkpoints. A failure cycle is one lifetime X plus R and completes ⌊X/w⌋
  segments, so by the renewal-reward theorem the long-run (T → ∞) overhead is
  (M + R) / (τ Σ_{n≥1} S(nw)) − 1.
* ``"minimal_repair"``: repairs do not rejuvenate; failures form a power-law
  (non-homogeneous Poisson) process with cumulative hazard (a/λ)^k in node age a
  (uptime). The long-run rate is degenerate (→ ∞ for k > 1, → δ/τ for k < 1), so this
  model needs a finite job T from a new node, split into n = ⌈T/τ⌉ equal segments of
  T/n. The expectation is computed by :func:`minimal_repair_overhead`.

For k = 1 all three reduce to the exponential case, overhead = (M + R)(e^{w/M} − 1)/τ − 1.
Daly's expectation M·e^{R/M}(e^{w/M} − 1)/τ instead lets failures hit restarts; the R
factor differs (M + R vs M·e^{R/M}, equal to first order in R/M) but the minimiser
in τ is the same, :func:`exponential_optimum`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from scipy.special import gammainc, gammaincc, lambertw

from fedsim.checkpoint.weibull import (
    FloatOrArray,
    require_non_negative,
    require_positive,
    weibull_fail_prob,
    weibull_mean,
)
from fedsim.errors import FedsimError

Model = Literal["paper", "segment", "renewal", "minimal_repair"]
MODELS: tuple[str, ...] = ("paper", "segment", "renewal", "minimal_repair")
_DIRECT_TERMS = 4096  # renewal series: summed term by term up to here, Euler–Maclaurin tail after
STUCK_HAZARD = 30.0  # segment hazard at which success (< e^-30 per attempt) is hopeless: E[time] = ∞
_UNFINISHED = 1e-9  # minimal repair: probability of paths left out of the expectation (see below)
_NEGLIGIBLE = 1e-18  # minimal repair: probability below which a segment's pending attempts are dropped
_CELLS = 64  # minimal repair: age cells per segment on the coarse grid (the fine grid has twice as many)


def _check(tau: ArrayLike, delta: float, restart: float, shape: float, scale: float) -> NDArray[np.float64]:
    require_positive("tau", tau)
    require_non_negative("delta", delta)
    require_non_negative("restart", restart)
    require_positive("shape", shape)
    require_positive("scale", scale)
    return np.asarray(tau, dtype=float)


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x


# --- closed forms for exponential failures -------------------------------------------------


def young_interval(delta: float, mtbf: float) -> float:
    """Young's first-order optimum √(2δM) (Young, CACM 17(9), 1974); relative error ≈ 0.47√(δ/M)."""
    require_positive("delta", delta)
    require_positive("mtbf", mtbf)
    return math.sqrt(2.0 * delta * mtbf)


def daly_interval(delta: float, mtbf: float) -> float:
    """Daly's higher-order estimate (Daly, FGCS 22(3), 2006, eq. 37); relative error O(δ/M).

    τ = √(2δM)[1 + ⅓√(δ/2M) + (1/9)(δ/2M)] − δ for δ < 2M, else τ = M.
    """
    require_positive("delta", delta)
    require_positive("mtbf", mtbf)
    if delta >= 2.0 * mtbf:
        return mtbf
    x = delta / (2.0 * mtbf)
    return math.sqrt(2.0 * delta * mtbf) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta


def exponential_optimum(delta: float, mtbf: float) -> float:
    """The exact minimiser of Daly's exponential expectation, τ* = M(1 + W₀(−e^{−1−δ/M})).

    Setting d/dτ[(e^{(τ+δ)/M} − 1)/τ] = 0 gives (1 − τ/M)e^{τ/M} = e^{−δ/M}; W₀ is the
    principal Lambert-W branch. R only scales the expectation, so it does not move τ*.
    """
    require_positive("delta", delta)
    require_positive("mtbf", mtbf)
    return float(mtbf * (1.0 + lambertw(-math.exp(-1.0 - delta / mtbf), 0).real))


# --- the paper's first-order cost ----------------------------------------------------------


def paper_cost(
    tau: ArrayLike, delta: float, restart: float, shape: float, scale: float, total_work: float = 1.0
) -> FloatOrArray:
    """The paper's C(τ), reconstructed: checkpoints × δ + expected failures × (R + lost work).

    The formula was lost from the paper's text; its description gives, to first order,
    C(τ) = (T/τ)·[δ + F(τ)(R + τ/2)], F(τ) = 1 − exp(−(τ/λ)^k): T/τ intervals, each
    paying δ and failing with the paper's per-interval probability F(τ), a failure
    costing R plus on average half an interval of lost work. It ignores failures
    during checkpoints and re-executions and treats every interval as a new node;
    for k = 1 its minimiser tends to Young's √(2δλ) as δ/λ → 0.
    """
    t = _check(tau, delta, restart, shape, scale)
    require_positive("total_work", total_work)
    fail = np.asarray(weibull_fail_prob(t, shape, scale))
    return _out(total_work / t * (delta + fail * (restart + t / 2.0)))


# --- exact expectations --------------------------------------------------------------------


def segment_overhead(tau: ArrayLike, delta: float, restart: float, shape: float, scale: float) -> FloatOrArray:
    """Overhead when the node is new at every segment start: [∫₀ʷS + (1−S(w))R] / (S(w)τ) − 1."""
    t = _check(tau, delta, restart, shape, scale)
    w = t + delta
    h = (w / scale) ** shape  # cumulative hazard of one segment
    up = weibull_mean(shape, scale) * gammainc(1.0 / shape, h)  # E[min(X, w)] = ∫₀ʷ S
    with np.errstate(over="ignore"):
        seg = up * np.exp(h) + np.expm1(h) * restart  # divide by S(w) = e^{−h}
    return _out(seg / t - 1.0)


def _survival_sum(w: NDArray[np.float64], shape: float, scale: float) -> NDArray[np.float64]:
    """Σ_{n≥1} S(nw) = E⌊X/w⌋: direct terms, then an Euler–Maclaurin tail.

    Terms with (nw/λ)^k > 745 underflow to 0, so when that happens before term 4096
    the sum is exact; otherwise Σ_{n≥N} f(n) = ∫_N^∞ f + f(N)/2 − f'(N)/12 (remainder
    below 1e-12 relative for the smooth tail of f(t) = S(tw)).
    """
    n = np.arange(1, _DIRECT_TERMS, dtype=float)
    head = np.exp(-((np.multiply.outer(w, n) / scale) ** shape)).sum(axis=-1)
    big_n = float(_DIRECT_TERMS)
    x = big_n * w / scale
    h = x**shape
    f = np.exp(-h)
    df = -w * (shape / scale) * x ** (shape - 1.0) * f  # d/dt S(tw) at t = N
    tail = weibull_mean(shape, scale) / w * gammaincc(1.0 / shape, h) + f / 2.0 - df / 12.0
    return head + tail


def renewal_overhead(tau: ArrayLike, delta: float, restart: float, shape: float, scale: float) -> FloatOrArray:
    """Long-run overhead when repairs renew the node: (M + R) / (τ Σ_{n≥1} S(n(τ+δ))) − 1."""
    t = _check(tau, delta, restart, shape, scale)
    done = _survival_sum(np.atleast_1d(t + delta), shape, scale).reshape(t.shape)
    return _out((weibull_mean(shape, scale) + restart) / (t * done) - 1.0)


def segments(tau: float, total_work: float) -> int:
    """n = ⌈T/τ⌉: a finite job checkpoints n times, after equal chunks of T/n ≤ τ."""
    return max(1, math.ceil(total_work / tau - 1e-9))


def _minimal_repair_chain(n: int, w: float, restart: float, shape: float, scale: float, cells: int) -> float:
    """Expected wall time of n segments of length w from a new node, failures rounded up to a grid.

    Markov chain on node age (uptime) with step Δ = w/cells: attempts start on grid
    points; a failure inside cell (a_i, a_{i+1}], probability 1 − S(a_{i+1})/S(a_i) per
    attempt in progress, restarts the segment at a_{i+1}. Working block by block
    (one block = one segment length), attempts started in a block cannot complete in it,
    so the mass in progress obeys a cumulative sum and each block is one numpy step over
    all unfinished segments. Wall time = E[final age] + R·E[failures]. Error is O(Δ).
    """
    dt = w / cells
    m_prev = np.zeros((n, cells))  # attempt-start mass per segment over the previous block
    carry = np.zeros(n)  # restart mass arriving at the block's first grid point
    finished = np.zeros(n)  # completion probability per segment so far
    age_end = failures = 0.0
    lo, top, block = 0, 0, 0  # rows lo..top hold mass; finished rows and empty rows are skipped
    while finished[-1] < 1.0 - _UNFINISHED:
        if ((block * w + w) / scale) ** shape - ((block * w) / scale) ** shape > STUCK_HAZARD:
            return math.inf  # k > 1: some paths reach ages where a segment (almost) never completes
        hi = min(n, top + 2)  # completions of row top start row top + 1
        ages = np.maximum((block - 1) * cells + np.arange(2 * cells + 1), 0) * dt  # previous and this block
        hz = (ages / scale) ** shape
        rel = np.exp(-(hz - hz[0]))  # survival relative to the previous block's start
        cur = rel[cells:]  # this block's grid points and its last cell end
        start_mass = m_prev[lo:hi] / rel[:cells]
        done = start_mass * cur[:-1]  # attempts of the previous block that survive a whole segment
        later = np.cumsum(start_mass[:, :0:-1], axis=1)[:, ::-1]  # Σ_{t' > t}, t = 0..cells-2
        f_prev = np.zeros_like(done)  # previous block's attempts failing in this block's cells
        f_prev[:, :-1] = (cur[:-2] - cur[1:-1]) * later
        inflow = np.zeros_like(done)
        inflow[1:] = done[:-1]  # segment j+1 starts where segment j completes
        if block == 0:
            inflow[0, 0] = 1.0
        inflow[:, 0] += carry[lo:hi]
        inflow[:, 1:] += f_prev[:, :-1]  # restarts one grid point after the failure cell
        in_progress = np.cumsum(inflow, axis=1)  # attempts started this block, still running
        f_cur = in_progress * -np.expm1(-(hz[cells + 1 :] - hz[cells:-1]))
        m = inflow
        m[:, 1:] += f_cur[:, :-1]
        finished[lo:hi] += done.sum(axis=1)
        if hi == n:
            age_end += float(done[-1] @ ages[cells:-1])
        failures += float(f_prev.sum() + f_cur.sum())
        carry[lo:hi] = f_cur[:, -1]
        m_prev[lo:hi] = m
        live = np.flatnonzero(m.sum(axis=1) + carry[lo:hi] > _NEGLIGIBLE)  # rows with attempts under way
        if live.size:  # rows outside lo..top hold < 1e-18 each, neglected
            lo, top = lo + int(live[0]), lo + int(live[-1])
        block += 1
    return age_end + restart * failures


def minimal_repair_overhead(
    tau: float, delta: float, restart: float, shape: float, scale: float, total_work: float
) -> float:
    """Overhead of a job of T useful work from a new node under minimal repair (power-law failures).

    E[wall] = E[A] + R·E[N(A)], A the node's age (uptime) when the last checkpoint
    ends; E[N(A)] = E[(A/λ)^k] by the compensator of the power-law process. The
    distribution of A has no closed form, so the age-grid chain of
    ``_minimal_repair_chain`` is solved at 64 and 128 cells per segment and
    Richardson-extrapolated (2·fine − coarse) to cancel its O(Δ) rounding bias.
    For k > 1 a path can age to where a segment almost never completes, so strictly
    E = ∞ for every τ. The value returned leaves out paths of total probability < 1e-9
    (a simulation of ≤ 10⁵ jobs meets one with probability < 1e-4), and is ``inf`` if
    more probability than that reaches ages where one segment's cumulative hazard
    exceeds 30: keep T well below λ when k > 1.
    """
    _check(tau, delta, restart, shape, scale)
    require_positive("total_work", total_work)
    n = segments(float(tau), total_work)
    w = total_work / n + delta
    coarse = _minimal_repair_chain(n, w, restart, shape, scale, _CELLS)
    if math.isinf(coarse):
        return math.inf
    fine = _minimal_repair_chain(n, w, restart, shape, scale, 2 * _CELLS)
    return (2.0 * fine - coarse) / total_work - 1.0


def expected_overhead(
    tau: ArrayLike,
    delta: float,
    restart: float,
    shape: float,
    scale: float,
    model: Model = "renewal",
    total_work: float | None = None,
) -> FloatOrArray:
    """Expected total time / useful work − 1 under ``model`` (see the module docstring).

    ``total_work`` T is required for ``minimal_repair`` and for ``paper`` is irrelevant
    (C/T); ``segment`` and ``renewal`` are long-run rates, exact for a segment-model job
    of any whole number of segments and the T → ∞ limit for renewal.
    """
    if model == "paper":
        return paper_cost(tau, delta, restart, shape, scale)
    if model == "segment":
        return segment_overhead(tau, delta, restart, shape, scale)
    if model == "renewal":
        return renewal_overhead(tau, delta, restart, shape, scale)
    if model == "minimal_repair":
        if total_work is None:
            raise FedsimError("model='minimal_repair' needs total_work (the job's useful work T): its long-run rate is degenerate")
        taus = _check(tau, delta, restart, shape, scale)
        counts = np.array([segments(float(t), total_work) for t in taus.ravel()])
        unique, index = np.unique(counts, return_inverse=True)  # τ with the same ⌈T/τ⌉ cost the same
        vals = np.array([minimal_repair_overhead(total_work / n, delta, restart, shape, scale, total_work) for n in unique])
        return _out(vals[index].reshape(taus.shape))
    raise FedsimError(f"model must be one of {', '.join(MODELS)}, got {model!r}")


def expected_cost(
    tau: ArrayLike,
    delta: float,
    restart: float,
    shape: float,
    scale: float,
    model: Model = "renewal",
    total_work: float = 1.0,
) -> FloatOrArray:
    """Expected waste C(τ) = E[total time] − T = T × overhead (time units), comparable to :func:`paper_cost`."""
    require_positive("total_work", total_work)
    return _out(total_work * np.asarray(expected_overhead(tau, delta, restart, shape, scale, model, total_work)))


# --- the optimum ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Optimum:
    """τ* and the overhead there."""

    tau: float  # the optimal useful work between checkpoints
    overhead: float  # expected total time / useful work − 1 at τ*
    model: str

    def __float__(self) -> float:
        return self.tau


def optimal_interval(
    delta: float,
    restart: float,
    shape: float,
    scale: float,
    model: Model = "renewal",
    total_work: float | None = None,
) -> Optimum:
    """The τ minimising ``expected_overhead`` (``paper``: ``paper_cost``) by bounded scalar search.

    Bracket: 121 log-spaced τ from 10⁻³·√(2δM) (far below any optimum, where δ/τ
    dominates) to λ·40^{1/k} (a segment survives with probability e^{−40}); the best
    grid point and its neighbours bracket the minimum, which bounded Brent search on
    log τ then polishes. ``minimal_repair`` chooses a whole number of segments n: an
    integer search on n = ⌈T/τ⌉ around the renewal optimum, returning τ* = T/n*.
    """
    require_positive("delta", delta)
    _check(1.0, delta, restart, shape, scale)
    if model == "minimal_repair":
        return _optimal_segments(delta, restart, shape, scale, total_work)

    def f(log_tau: float) -> float:
        return float(expected_overhead(math.exp(log_tau), delta, restart, shape, scale, model))

    lo = 1e-3 * young_interval(delta, weibull_mean(shape, scale))
    hi = max(scale * 40.0 ** (1.0 / shape), 1e3 * lo)
    grid = np.geomspace(lo, hi, 121)
    vals = np.asarray(expected_overhead(grid, delta, restart, shape, scale, model))
    i = int(np.nanargmin(vals))
    a, b = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-9})
    return Optimum(tau=float(math.exp(res.x)), overhead=float(res.fun), model=model)


def _optimal_segments(delta: float, restart: float, shape: float, scale: float, total_work: float | None) -> Optimum:
    """Integer golden-section search on the number of segments n of a minimal-repair job."""
    if total_work is None:
        raise FedsimError("model='minimal_repair' needs total_work (the job's useful work T)")
    require_positive("total_work", total_work)
    cache: dict[int, float] = {}

    def cost(n: int) -> float:
        if n not in cache:
            cache[n] = minimal_repair_overhead(total_work / n, delta, restart, shape, scale, total_work)
        return cache[n]

    guess = segments(optimal_interval(delta, restart, shape, scale, "renewal").tau, total_work)
    lo, hi = max(1, guess // 2), guess * 2
    while lo > 1 and cost(lo) < cost(lo + 1):  # walk the bracket out until the cost rises on both sides
        lo = max(1, lo // 2)
    while cost(hi) < cost(hi - 1):
        hi *= 2
    while hi - lo > 2:
        a = lo + round((hi - lo) * 0.382)
        b = max(a + 1, lo + round((hi - lo) * 0.618))
        if cost(a) <= cost(b):
            hi = b
        else:
            lo = a
    best = min(range(lo, hi + 1), key=cost)
    return Optimum(tau=total_work / best, overhead=cost(best), model="minimal_repair")
