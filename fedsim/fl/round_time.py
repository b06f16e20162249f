"""The round time the network model predicts for a synchronous round, and where the server link takes over.

A ``wait_all`` round in which every client takes part and nothing fails: each client
downloads the global model (after its latency, at its max-min fair share of the
server's egress), trains, uploads (latency, then its share of the server's ingress),
and the round ends with the aggregation. For identical clients that start together
this has a closed form; for heterogeneous clients the phases are played through the
fluid model (:func:`fedsim.sim.fairshare.fluid_finish_times`). The study in
``results/network/`` plots both over the simulated points.
"""

from __future__ import annotations

import math

import numpy as np

from fedsim.sim.fairshare import fluid_finish_times


def identical_round_s(
    n: float,
    *,
    bits: float,
    latency_s: float,
    down_bps: float,
    up_bps: float,
    compute_s: float,
    server_down_bps: float = math.inf,
    server_up_bps: float = math.inf,
    aggregation_s: float = 0.0,
) -> float:
    """Closed form for ``n`` identical clients: 2ℓ + bits·max(1/d, n/C_d) + compute + bits·max(1/u, n/C_u) + aggregation."""
    down = bits * max(1 / down_bps, n / server_down_bps)
    up = bits * max(1 / up_bps, n / server_up_bps)
    return 2 * latency_s + down + compute_s + up + aggregation_s


def fluid_round_s(
    *,
    bits: float,
    latency_s: np.ndarray,
    down_bps: np.ndarray,
    up_bps: np.ndarray,
    compute_s: np.ndarray,
    server_down_bps: float = math.inf,
    server_up_bps: float = math.inf,
    aggregation_s: float = 0.0,
) -> float:
    """Round time for clients with their own latency, rates and compute time (arrays, one entry per client)."""
    n = len(latency_s)
    downloaded = fluid_finish_times(latency_s, np.full(n, bits), down_bps, server_down_bps)
    uploaded = fluid_finish_times(downloaded + compute_s + latency_s, np.full(n, bits), up_bps, server_up_bps)
    return float(uploaded.max()) + aggregation_s


def knee(server_bps: float, client_bps: float) -> float:
    """Clients beyond which the server's fair share ``C/n`` is below each client's own rate: ``C/r``."""
    return server_bps / client_bps
