"""Maximum-likelihood Weibull k, λ from failure logs with right-censoring, and the log readers.

A node that had not failed by the end of observation contributes only its survival,
so with failures F and all observations i the log-likelihood is

    ℓ(k, λ) = Σ_F [log k − k log λ + (k−1) log tᵢ] − Σ_i (tᵢ/λ)^k.

For fixed k the maximising λ is (Σ_i tᵢ^k / r)^{1/k} (r failures); substituting leaves
one monotone equation in k, solved by bracketing root-finding. Confidence intervals
are Wald intervals on log k and log λ from the observed information (so they stay
positive), accurate once there are a few dozen failures.

Two input formats:

* a failure CSV with a header and columns ``duration`` (time a node ran, > 0) and
  ``failed`` (1 if the run ended in a failure, 0 if it was still up when observation
  stopped); other columns (e.g. ``node``) are ignored;
* fedsim's own event log (``events.csv`` / ``.parquet`` from a run, columns
  ``time_s, kind, client, ...``): each client's lifetimes run from time 0 or its last
  ``repair`` to its next ``failure``; the last one is censored at the log's end.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.stats import norm

from fedsim.errors import FedsimError

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


@dataclass(frozen=True)
class WeibullFit:
    """MLE shape k and scale λ with Wald confidence intervals at ``level``."""

    shape: float
    scale: float
    shape_ci: tuple[float, float]
    scale_ci: tuple[float, float]
    n: int  # observations
    failures: int  # uncensored observations
    loglik: float
    level: float = 0.95


def fit_weibull(durations: ArrayLike, censored: ArrayLike | None = None, level: float = 0.95) -> WeibullFit:
    """Fit Weibull(k, λ) to ``durations``; ``censored[i]`` is True when node i had not failed yet."""
    t = np.asarray(durations, dtype=float).ravel()
    c = np.zeros(t.shape, bool) if censored is None else np.asarray(censored, dtype=bool).ravel()
    if c.shape != t.shape:
        raise FedsimError(f"censored has {c.size} entries but durations has {t.size}; pass one flag per duration")
    bad = np.flatnonzero(~(np.isfinite(t) & (t > 0)))
    if bad.size:
        raise FedsimError(f"durations must be finite and > 0: durations[{bad[0]}] = {t[bad[0]]!r}; drop or fix that record")
    if not 0 < level < 1:
        raise FedsimError(f"level must be in (0, 1), got {level!r}")
    failed = t[~c]
    r = failed.size
    if r < 2 or np.ptp(failed) == 0:
        raise FedsimError(f"need at least two distinct failure durations to fit a Weibull, got {r} failures")
    u = t / t.max()  # k is scale-free; working in t/max(t) keeps u^k in range
    log_u, log_uf = np.log(u), np.log(failed / t.max())

    def score(log_k: float) -> float:  # ∂ℓ/∂k at the profile λ, times k (monotone decreasing)
        k = math.exp(log_k)
        p = u**k
        return r + k * log_uf.sum() - r * k * (p @ log_u) / p.sum()

    lo, hi = -1.0, 1.0
    while score(lo) < 0:
        lo -= 2.0
    while score(hi) > 0:
        hi += 2.0
    k = math.exp(brentq(score, lo, hi, xtol=1e-13))
    lam = float(t.max() * ((u**k).sum() / r) ** (1.0 / k))
    z = t / lam
    zk, log_z = z**k, np.log(z)
    loglik = r * math.log(k) - r * k * math.log(lam) + (k - 1) * np.log(failed).sum() - zk.sum()
    # observed information −∇²ℓ in (k, λ)
    i_kk = r / k**2 + zk @ log_z**2
    i_ll = -r * k / lam**2 + k * (k + 1) / lam**2 * zk.sum()
    i_kl = r / lam - zk.sum() / lam - k / lam * (zk @ log_z)
    cov = np.linalg.inv(np.array([[i_kk, i_kl], [i_kl, i_ll]]))
    q = norm.ppf(0.5 + level / 2)
    se_log_k, se_log_lam = math.sqrt(cov[0, 0]) / k, math.sqrt(cov[1, 1]) / lam
    return WeibullFit(
        shape=k,
        scale=lam,
        shape_ci=(k * math.exp(-q * se_log_k), k * math.exp(q * se_log_k)),
        scale_ci=(lam * math.exp(-q * se_log_lam), lam * math.exp(q * se_log_lam)),
        n=t.size,
        failures=r,
        loglik=float(loglik),
        level=level,
    )


def read_failure_csv(path: str | Path) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``(durations, censored)`` from a CSV with columns ``duration`` and ``failed``; errors name the line."""
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"duration", "failed"} - set(reader.fieldnames or [])
        if missing:
            raise FedsimError(f"{path}: missing column(s) {sorted(missing)}; the header needs duration,failed")
        durations, censored = [], []
        for row in reader:
            line = reader.line_num
            raw_d, raw_f = (row.get("duration") or "").strip(), (row.get("failed") or "").strip().lower()
            try:
                d = float(raw_d)
            except ValueError:
                raise FedsimError(f"{path}, line {line}: duration {raw_d!r} is not a number") from None
            if not (math.isfinite(d) and d > 0):
                raise FedsimError(f"{path}, line {line}: duration {raw_d!r} must be > 0")
            if raw_f not in _TRUE | _FALSE:
                raise FedsimError(f"{path}, line {line}: failed {raw_f!r} must be 1 or 0 (true/false)")
            durations.append(d)
            censored.append(raw_f in _FALSE)
    if not durations:
        raise FedsimError(f"{path}: no rows after the header")
    return np.asarray(durations), np.asarray(censored)


def event_log_lifetimes(events: pd.DataFrame, end: float | None = None) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``(durations, censored)`` per client from a fedsim event table (``time_s, kind, client``)."""
    missing = {"time_s", "kind", "client"} - set(events.columns)
    if missing:
        raise FedsimError(f"event log lacks column(s) {sorted(missing)}; pass a fedsim events table or a duration,failed CSV")
    stop = float(events["time_s"].max()) if end is None else float(end)
    durations: list[float] = []
    censored: list[bool] = []
    for _, rows in events[events["client"] >= 0].sort_values("time_s", kind="stable").groupby("client"):
        up_since = 0.0
        for time_s, kind in zip(rows["time_s"], rows["kind"]):
            if kind == "failure":
                durations.append(time_s - up_since)
                censored.append(False)
                up_since = math.nan  # down until repaired
            elif kind == "repair":
                up_since = time_s
        if not math.isnan(up_since) and stop > up_since:
            durations.append(stop - up_since)
            censored.append(True)
    return np.asarray(durations, dtype=float), np.asarray(censored, dtype=bool)


def read_failure_log(path: str | Path) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``(durations, censored)`` from a failure CSV or a fedsim event log (``.csv`` or ``.parquet``)."""
    path = Path(path)
    if not path.is_file():
        raise FedsimError(f"failure log {path} not found; pass a duration,failed CSV or a run's events file")
    if path.suffix == ".parquet":
        return event_log_lifetimes(pd.read_parquet(path))
    with path.open(newline="") as fh:
        header = next(csv.reader(fh), [])
    if {"time_s", "kind", "client"} <= set(header):
        try:
            events = pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as exc:
            raise FedsimError(f"{path}: not a readable events table ({str(exc).strip().splitlines()[0]}); pass a run's events.csv or a duration,failed CSV") from None
        return event_log_lifetimes(events)
    return read_failure_csv(path)
