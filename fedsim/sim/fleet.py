"""Mixed fleets: which failure group each client belongs to.

The assignment has its own seeded stream, so it is the same whatever the clients do
(checkpoint interval, recovery policy): methods compared on one seed see the same
clients in the same groups, and, each client's failure clock having its own stream
too, the same failure trace.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def group_counts(num_clients: int, shares: Sequence[float]) -> np.ndarray:
    """Clients per group: ``shares`` of ``num_clients``, rounded by largest remainder (sums exactly)."""
    s = np.asarray(shares, dtype=float)
    exact = num_clients * s / s.sum()
    counts = np.floor(exact).astype(int)
    short = num_clients - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def assign_groups(num_clients: int, shares: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Group index of each client: exact :func:`group_counts`, in an order shuffled by ``rng``."""
    groups = np.repeat(np.arange(len(shares)), group_counts(num_clients, shares))
    return rng.permutation(groups)
