"""End-to-end behaviour of the engine on a tiny federation."""

from __future__ import annotations

import copy
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_model
from fedsim.fl.server import RoundPolicy, Stopping
from fedsim.fl.simulation import NetworkSpec, SimSettings
from fedsim.seeding import torch_generator, torch_seed
from fedsim.sim.compute import ComputeModel
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.train.flat import FlatLayout
from fedsim.train.local import batch_bounds, samples_in_steps

WALL = ["wall_s"]


def plain_fedavg(clients, rounds: int, seed: int, batch_size: int, lr: float) -> dict[str, torch.Tensor]:
    """A textbook torch FedAvg loop: deep-copy, train with Adam, average state dicts."""
    global_model = tiny_model(clients[0][0].shape[1])
    for rnd in range(1, rounds + 1):
        states, sizes = [], []
        for cid, (x, y) in enumerate(clients):
            local = copy.deepcopy(global_model)
            local.train()
            opt = torch.optim.Adam(local.parameters(), lr=lr)
            client_seed = torch_seed(seed, "train", rnd, cid)
            bounds = batch_bounds(len(x), batch_size)
            perm = torch.randperm(len(x), generator=torch_generator(client_seed, "batches", 0))
            with torch.random.fork_rng(devices=[]):
                for step in range(len(bounds) - 1):
                    torch.manual_seed(torch_seed(client_seed, "dropout", step))
                    rows = perm[bounds[step] : bounds[step + 1]]
                    opt.zero_grad()
                    torch.nn.functional.binary_cross_entropy_with_logits(local(x[rows]), y[rows].float()).backward()
                    opt.step()
            states.append(local.state_dict())
            sizes.append(len(x))
        avg = {}
        for k, v in states[0].items():
            mix = sum(s[k].double() * n for s, n in zip(states, sizes)) / sum(sizes)
            avg[k] = mix.to(v.dtype) if v.dtype.is_floating_point else mix.round().to(v.dtype)
        global_model.load_state_dict(avg)
    return global_model.state_dict()


def test_simulation_does_not_change_the_learning(run_tiny, tiny_data):
    result = run_tiny(settings=SimSettings(seed=0, stopping=Stopping(max_rounds=3)))
    reference = plain_fedavg(tiny_data["clients"], rounds=3, seed=0, batch_size=32, lr=1e-3)
    model = tiny_model(tiny_data["clients"][0][0].shape[1])
    ref_flat = FlatLayout.of(model).flatten_state(reference)
    assert float((result.final - ref_flat).abs().max()) <= 1e-6


def test_round_time_is_the_analytic_sum(run_tiny, tiny_data):
    net = NetworkSpec(latency_s=0.05, down_bps=1e6, up_bps=5e5)
    result = run_tiny(network=net, compute=ComputeModel(0.01), settings=SimSettings(aggregation_s=0.25, stopping=Stopping(max_rounds=2)))
    layout = FlatLayout.of(tiny_model(tiny_data["clients"][0][0].shape[1]))
    bits = 8 * layout.nbytes()
    slowest = max(samples_in_steps(len(x), 32, 0, len(batch_bounds(len(x), 32)) - 1) for x, _ in tiny_data["clients"])
    expected = (0.05 + bits / 1e6) + slowest * 0.01 + (0.05 + bits / 5e5) + 0.25
    assert result.rounds["round_time_s"].tolist() == pytest.approx([expected, expected], rel=1e-12)
    assert result.virtual_s == pytest.approx(2 * expected, rel=1e-12)


def _failing(seed: int, **kw) -> SimSettings:
    model = FailureModel(shape=1.5, scale=3.0, repair=repair_sampler("exponential", 0.5))
    return SimSettings(seed=seed, failure=model, dropout=0.2, stopping=Stopping(max_rounds=3), **kw)


def test_same_seed_same_tables_and_different_seed_differs(run_tiny):
    a, b, c = run_tiny(settings=_failing(1)), run_tiny(settings=_failing(1)), run_tiny(settings=_failing(2))
    pd.testing.assert_frame_equal(a.rounds.drop(columns=WALL), b.rounds.drop(columns=WALL))
    pd.testing.assert_frame_equal(a.events, b.events)
    assert torch.equal(a.final, b.final)
    assert not a.events.equals(c.events)


def test_failures_interrupt_work_and_clients_rejoin(run_tiny):
    result = run_tiny(settings=_failing(3))
    kinds = result.events["kind"].value_counts()
    assert kinds.get("failure", 0) > 0 and kinds.get("work_lost", 0) > 0
    # wait_all: every selected client that did not drop out reported, after repairs
    r = result.rounds
    assert (r["participants"] == r["selected"] - r["dropouts"]).all()
    # a lost attempt is followed, for the same client and round, by a later broadcast (re-download)
    ev = result.events
    lost = ev[ev.kind == "work_lost"].iloc[0]
    later = ev[(ev.time_s > lost.time_s) & (ev.client == lost.client) & (ev["round"] == lost["round"])]
    assert "broadcast" in set(later.kind) and "receive" in set(later.kind)


def test_event_log_lifetimes_are_the_weibull_draws(run_tiny):
    model = FailureModel(shape=0.8, scale=2.0, repair=repair_sampler("fixed", 0.1))
    result = run_tiny(settings=SimSettings(seed=5, failure=model, stopping=Stopping(max_rounds=4)))
    ev = result.events[result.events.kind.isin(["failure", "repair"])]
    observed = []
    for _, g in ev.groupby("client"):
        up_since = 0.0
        for t, kind in zip(g.time_s, g.kind):
            if kind == "failure":
                observed.append(t - up_since)
            else:
                up_since = t
    # every failure in the log happened exactly one drawn lifetime after the last repair
    assert len(observed) > 10
    drawn = np.sort(result.lifetimes)
    assert all(np.isclose(drawn, t, rtol=0, atol=1e-9).any() for t in observed)


def test_dropouts_never_report(run_tiny):
    result = run_tiny(settings=SimSettings(seed=4, dropout=0.5, stopping=Stopping(max_rounds=4)))
    r = result.rounds
    assert r["dropouts"].sum() > 0
    assert (r["participants"] == r["selected"] - r["dropouts"]).all()


def test_deadline_drops_stragglers(run_tiny):
    speeds = np.array([1.0, 1.0, 0.05])  # client 2 is 20x slower
    result = run_tiny(speeds=speeds, settings=SimSettings(policy=RoundPolicy("deadline", 3.0), stopping=Stopping(max_rounds=2)))
    assert result.rounds["participants"].tolist() == [2, 2]
    assert result.rounds["round_time_s"].iloc[0] == pytest.approx(3.0)
    assert (result.events["kind"] == "cancelled").sum() == 2


def test_early_stopping_with_patience(run_tiny):
    result = run_tiny(settings=SimSettings(stopping=Stopping(max_rounds=50, patience=2, min_delta=1e9)))
    # round 1 improves on +inf; no later round can improve by 1e9, so rounds 2-3 are stale
    assert result.stop_reason == "early_stopping"
    assert len(result.rounds) == 3
