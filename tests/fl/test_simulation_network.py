"""The engine with the network model: shared server links, heterogeneous links, aggregation cost."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_model
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.round_time import fluid_round_s, identical_round_s
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import FaultTolerance, NetworkSpec, SimSettings
from fedsim.fl.strategies import FedAvg
from fedsim.fl.surrogate import LearningCurve, system_only
from fedsim.seeding import rng
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.sim.link_rates import client_links
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec

ROWS, COST = 64, 0.01  # rows per client (2 steps of 32), virtual s per row


def surrogate_run(run_tiny, n, **kw):
    """A system-only run of ``n`` identical clients on the tiny model (real message sizes)."""
    return run_tiny(clients=[ROWS] * n, speeds=np.ones(n), **system_only(LearningCurve(), LocalSpec(batch_size=32)), **kw)


def model_bits(tiny_data) -> tuple[float, int]:
    layout = FlatLayout.of(tiny_model(tiny_data["clients"][0][0].shape[1]))
    return 8.0 * layout.nbytes(), layout.size


@pytest.mark.parametrize("n", [1, 4, 12])
@pytest.mark.parametrize(("server_down", "server_up"), [(None, None), (2e6, 1e6), (4e5, 1e5)])
def test_round_time_of_identical_clients_is_the_closed_form(run_tiny, tiny_data, n, server_down, server_up):
    bits, params = model_bits(tiny_data)
    net = NetworkSpec(latency_s=0.05, down_bps=1e6, up_bps=5e5, server_down_bps=server_down, server_up_bps=server_up)
    agg = AggregationCost("linear", per_param_s=1e-7)
    result = surrogate_run(run_tiny, n, network=net, settings=SimSettings(aggregation_s=0.25, aggregation=agg, stopping=Stopping(max_rounds=2)))
    expected = identical_round_s(
        n, bits=bits, latency_s=0.05, down_bps=1e6, up_bps=5e5, compute_s=ROWS * COST,
        server_down_bps=server_down or np.inf, server_up_bps=server_up or np.inf, aggregation_s=0.25 + 1e-7 * n * params,
    )
    assert result.rounds["round_time_s"].tolist() == pytest.approx([expected] * 2, rel=1e-9)


def test_heterogeneous_links_match_the_fluid_model(run_tiny, tiny_data):
    n, bits = 10, model_bits(tiny_data)[0]
    links = client_links(n, latency_s=0.05, down_bps=1e6, up_bps=5e5, spread=0.6, stream=lambda k: rng(3, "link", k))
    net = NetworkSpec(latency_s=0.05, down_bps=1e6, up_bps=5e5, server_down_bps=3e6, server_up_bps=1.5e6, clients=links)
    result = surrogate_run(run_tiny, n, network=net, settings=SimSettings(stopping=Stopping(max_rounds=1)))
    expected = fluid_round_s(
        bits=bits, latency_s=links.latency_s, down_bps=links.down_bps, up_bps=links.up_bps, compute_s=np.full(n, ROWS * COST),
        server_down_bps=3e6, server_up_bps=1.5e6,
    )
    assert result.rounds["round_time_s"].iloc[0] == pytest.approx(expected, rel=1e-9)


def test_server_link_with_link_failures_resends_and_is_reproducible(run_tiny):
    links = FailureModel(shape=1.0, scale=2.0, repair=repair_sampler("exponential", 0.2))
    settings = SimSettings(seed=4, stopping=Stopping(max_rounds=3), fault=FaultTolerance(link_failure=links))
    net = NetworkSpec(latency_s=0.05, down_bps=1e6, up_bps=5e5, server_down_bps=1e6, server_up_bps=5e5)
    a, b = (surrogate_run(run_tiny, 6, network=net, settings=settings) for _ in range(2))
    assert (a.events["kind"] == "message_lost").sum() > 0 and len(a.rounds) == 3
    pd.testing.assert_frame_equal(a.events, b.events)


class SlowFedAvg(FedAvg):
    """FedAvg whose aggregation takes at least 50 ms of wall time."""

    def aggregate(self, rnd, current, updates):
        time.sleep(0.05)
        return super().aggregate(rnd, current, updates)


def test_measured_aggregation_charges_the_scaled_wall_time(run_tiny):
    base = run_tiny(settings=SimSettings(aggregation_s=0.25, stopping=Stopping(max_rounds=1)))
    agg = AggregationCost("measured", scale=10.0)
    slow = run_tiny(strategy=SlowFedAvg(), settings=SimSettings(aggregation_s=0.25, aggregation=agg, stopping=Stopping(max_rounds=1)))
    extra = slow.rounds["round_time_s"].iloc[0] - base.rounds["round_time_s"].iloc[0]
    assert extra >= 10 * 0.05  # ≥ 50 ms slept, times 10
    assert torch.equal(slow.final, base.final)


def test_aggregation_cost_kinds():
    assert AggregationCost().extra_s(100, 3.0) == 0.0
    assert AggregationCost("linear", per_param_s=2e-9, parameters=1_000_000).extra_s(10, 3.0) == pytest.approx(0.02)
    assert AggregationCost("measured", scale=4.0).extra_s(10, 0.5) == 2.0
    with pytest.raises(ValueError):
        AggregationCost("quadratic")
