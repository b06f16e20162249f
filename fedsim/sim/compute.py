"""How long local work takes on the simulated clock.

Virtual duration = rows processed × cost per row ÷ client speed. Speeds are drawn
once per client so a fleet is heterogeneous but reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ComputeModel:
    """Seconds of virtual time per training row on a speed-1 client."""

    cost_per_sample_s: float

    def duration(self, samples: int, speed: float) -> float:
        """Virtual seconds to process ``samples`` rows at ``speed``."""
        return samples * self.cost_per_sample_s / speed


def draw_speeds(rng: np.random.Generator, n: int, dist: str, spread: float) -> np.ndarray:
    """Relative client speeds (mean 1): ``fixed``, ``lognormal`` (σ = spread) or ``uniform`` (1 ± spread)."""
    if dist == "fixed":
        return np.ones(n)
    if dist == "lognormal":
        return rng.lognormal(-(spread**2) / 2, spread, size=n)
    if dist == "uniform":
        return rng.uniform(1 - spread, 1 + spread, size=n)
    raise ValueError(f"unknown speed distribution {dist!r}; use fixed, lognormal or uniform")
