"""Checkpoint-interval theory: Weibull failures, the expected cost C(τ), its minimiser τ*, and fitting k, λ.

Pure functions (no SimPy, no hydra); :mod:`fedsim.sim.checkpointed_job` simulates the
same model to check them.
"""

from fedsim.checkpoint.cost import (
    MODELS,
    Optimum,
    daly_interval,
    expected_cost,
    expected_overhead,
    exponential_optimum,
    minimal_repair_overhead,
    optimal_interval,
    paper_cost,
    renewal_overhead,
    segment_overhead,
    young_interval,
)
from fedsim.checkpoint.weibull import weibull_fail_prob, weibull_mean

_FIT = ("WeibullFit", "fit_weibull", "read_failure_log")  # fit.py needs scipy.stats: loaded on first use


def __getattr__(name: str) -> object:
    """``fit_weibull`` and friends, imported when first asked for (the engine imports this package)."""
    if name in _FIT:
        from fedsim.checkpoint import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'fedsim.checkpoint' has no attribute {name!r}")

__all__ = [
    "MODELS",
    "Optimum",
    "daly_interval",
    "expected_cost",
    "expected_overhead",
    "fit_weibull",
    "read_failure_log",
    "WeibullFit",
    "exponential_optimum",
    "minimal_repair_overhead",
    "optimal_interval",
    "paper_cost",
    "renewal_overhead",
    "segment_overhead",
    "weibull_fail_prob",
    "weibull_mean",
    "young_interval",
]
