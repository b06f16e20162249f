"""How long the server's aggregation takes on the virtual clock, beyond the fixed ``run.aggregation_s``.

- ``constant``: nothing more; every aggregation costs ``run.aggregation_s``.
- ``linear``: ``per_param_s × updates × parameters`` more, so a round with a thousand
  updates costs what summing a thousand model vectors costs. The default coefficient
  is fedsim's own FedAvg sum measured on one CPU core (``benchmarks/bench_aggregation.py``).
- ``measured``: the real wall time of the aggregation call × ``scale`` (``scale`` turns
  this machine's speed into the modelled server's). Not reproducible run to run, and
  meaningless in system-only mode, whose surrogate aggregates one number.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("constant", "linear", "measured")


@dataclass(frozen=True)
class AggregationCost:
    """The variable part of the aggregation time."""

    kind: str = "constant"  # constant | linear | measured
    per_param_s: float = 0.0  # linear: virtual seconds per update × parameter
    scale: float = 1.0  # measured: virtual seconds per wall second
    parameters: int = 0  # linear: entries of the aggregated vector (set by the engine from the model)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown aggregation cost {self.kind!r}; use {', '.join(KINDS)}")

    def extra_s(self, updates: int, wall_s: float) -> float:
        """Virtual seconds on top of the fixed cost, for ``updates`` updates that took ``wall_s`` to aggregate."""
        if self.kind == "linear":
            return self.per_param_s * updates * self.parameters
        if self.kind == "measured":
            return self.scale * wall_s
        return 0.0
