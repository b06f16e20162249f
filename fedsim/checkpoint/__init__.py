"""Checkpoint-interval theory: Weibull failures, the expected cost C(τ), its minimiser τ*, and fitting k, λ.

Pure functions (no SimPy, no hydra); :mod:`fedsim.sim.checkpointed_job` simulates the
same model to check them. The names below are imported on first use: scipy loads only
when the theory is used, not when the engine stores a checkpoint.
"""

from importlib import import_module

_HOMES = {
    **dict.fromkeys(
        ("MODELS", "Optimum", "daly_interval", "expected_cost", "expected_overhead", "exponential_optimum", "minimal_repair_overhead",
         "optimal_interval", "paper_cost", "renewal_overhead", "segment_overhead", "young_interval"),
        "fedsim.checkpoint.cost",
    ),
    **dict.fromkeys(("WeibullFit", "fit_weibull", "read_failure_log"), "fedsim.checkpoint.fit"),
    "weibull_fail_prob": "fedsim.checkpoint.weibull",
    "weibull_mean": "fedsim.checkpoint.weibull",
}  # fmt: skip


def __getattr__(name: str) -> object:
    """Import on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'fedsim.checkpoint' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


__all__ = sorted(_HOMES)
