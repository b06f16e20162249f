"""Asynchronous versions: FedBuff and FedAsync on the virtual clock, with failures, staleness and concurrency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_classifier
from fedsim.errors import FedsimError
from fedsim.fl.client import Client
from fedsim.fl.messages import Update
from fedsim.fl.recovery import Checkpointing, Detection, Drop
from fedsim.fl.simulation import FaultTolerance, SimSettings
from fedsim.fl.monitor import Stopping
from fedsim.fl.strategies import FedAsync, FedAvg, FedBuff
from fedsim.fl.strategies.fedasync import staleness_weight
from fedsim.seeding import rng
from fedsim.sim.failures import FailureModel, repair_sampler

def test_fedbuff_with_k_equal_to_concurrency_and_every_client_is_fedavg_round_for_round():
    """K = concurrency = every client, equal speeds and shards, η_g = 1, no staleness weighting: every version is the
    mean of the clients' models, trained from the last version, as FedAvg's round is. The two compute it in float64
    differently (x + mean(x_i − x) against mean(x_i)) and round to float32 once: at most an ulp apart per round,
    which plain SGD on a smooth model does not amplify over four rounds; 1e-6 is ~100 ulps of these weights."""
    sync, sync_models = run_classifier(FedAvg())
    buff, buff_models = run_classifier(FedBuff(buffer_size=3, concurrency=3, server_lr=1.0, staleness_weighting=False))
    assert len(sync_models) == len(buff_models) == 4
    for a, b in zip(sync_models, buff_models):
        assert float((a - b).abs().max()) <= 1e-6
    assert (buff.clients["staleness"] == 0).all() and (buff.rounds["participants"] == 3).all()
    assert not torch.equal(sync_models[0], sync_models[-1])  # the models did move


def test_fedasync_step_is_the_mixing_formula():
    current, base, client = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([3.0, -2.0])
    update = Update(client=0, round=3, flat=client, num_samples=10, loss=0.0, version=0)
    for kind, a, b, staleness in [("constant", 0.5, 4, 2), ("polynomial", 0.5, 4, 3), ("hinge", 10.0, 4, 2), ("hinge", 10.0, 4, 7)]:
        strategy = FedAsync(alpha=0.6, staleness=kind, a=a, b=b)
        assert strategy.receive(current, base, update, staleness)
        s = {"constant": 1.0, "polynomial": (1 + staleness) ** -a, "hinge": 1.0 if staleness <= b else 1 / (a * (staleness - b) + 1)}[kind]
        assert s == staleness_weight(staleness, kind, a, b)
        torch.testing.assert_close(strategy.step(current), (1 - 0.6 * s) * current + 0.6 * s * client)


def _failing(**fault) -> SimSettings:
    law = FailureModel(0.9, 6.0, repair_sampler("exponential", 1.5))
    return SimSettings(seed=3, stopping=Stopping(max_rounds=25), failure=law, dropout=0.1, fault=FaultTolerance(**fault))


def test_no_client_trains_two_jobs_and_staleness_is_the_version_difference(monkeypatch):
    serving: dict[int, int] = {}
    serve = Client.serve

    def one_at_a_time(self, rnd, job):
        serving[self.cid] = serving.get(self.cid, 0) + 1
        assert serving[self.cid] == 1, f"client {self.cid} serves two tasks at once"
        try:
            yield from serve(self, rnd, job)
        finally:
            serving[self.cid] -= 1

    monkeypatch.setattr(Client, "serve", one_at_a_time)
    ckpt = dict(checkpointing=Checkpointing(tau_steps=1, delta_s=0.01, restart_s=0.2), recovery="restore_checkpoint")
    speeds = rng(0, "speeds").lognormal(0, 1.0, 6)
    result, _ = run_classifier(FedBuff(buffer_size=2, concurrency=4), n_clients=6, speeds=speeds, settings=_failing(**ckpt))
    kinds = set(result.events["kind"])
    assert {"failure", "repair", "restore", "dropout", "work_lost"} <= kinds
    clients = result.clients
    assert len(result.rounds) == 25 and (clients["staleness"] == clients["round"] - 1 - clients["version"]).all()
    assert clients["staleness"].max() >= 2  # slow and restored clients come back stale
    restored = result.events.query("kind == 'restore'")
    assert len(restored) and restored["round"].isin(clients["version"] + 1).any()


def test_staler_than_the_bound_is_dropped():
    speeds = np.array([1.0, 1.0, 0.1])  # client 2 is ten times slower: its updates arrive many versions late
    result, _ = run_classifier(FedAsync(concurrency=3, max_staleness=1), speeds=speeds, rounds=40)
    stale = result.events.query("kind == 'stale'")
    assert len(stale) and (stale["client"] == 2).all() and (stale["value"] > 1).all()
    assert (result.clients["staleness"] <= 1).all()


def test_detected_failures_free_the_slot_under_drop():
    fault = dict(detection=Detection(0.5, 1.5), on_failure=Drop())
    result, _ = run_classifier(FedBuff(buffer_size=2, concurrency=3), n_clients=5, settings=_failing(**fault))
    events = result.events
    assert "detected" in set(events["kind"]) and len(result.rounds) == 25


def test_paired_traces_across_sync_and_async_strategies():
    """Failures and repairs are the clients' own clocks: every strategy, synchronous or not, meets the same ones."""
    traces = []
    for strategy in (FedAvg(), FedBuff(buffer_size=2, concurrency=3), FedAsync(concurrency=2)):
        result, _ = run_classifier(strategy, n_clients=5, settings=_failing())
        events = result.events
        traces.append(events[events["kind"].isin(["failure", "repair"])].reset_index(drop=True))
    horizon = min(float(t["time_s"].max()) for t in traces)
    first = [t[t["time_s"] <= horizon].reset_index(drop=True) for t in traces]
    assert len(first[0]) > 5
    for other in first[1:]:
        pd.testing.assert_frame_equal(other, first[0])


def test_synchronous_settings_are_refused_by_an_asynchronous_strategy():
    from fedsim.fl.server import RoundPolicy

    with pytest.raises(FedsimError, match="synchronous"):
        run_classifier(FedBuff(), settings=SimSettings(seed=0, policy=RoundPolicy("deadline", 5.0)))


def test_a_time_budget_ends_every_protocol_at_its_instant():
    """A client 100× slower than the others, failing every few virtual seconds, never finishes its work: a synchronous
    round that waits for it never ends. The budget ends every run at its instant; an open round is not recorded."""
    law = FailureModel(0.8, 3.0, repair_sampler("exponential", 1.0))
    budget = SimSettings(seed=0, stopping=Stopping(max_rounds=10**6, max_time_s=40.0), failure=law)
    speeds = np.array([1.0, 1.0, 0.01])
    sync, _ = run_classifier(FedAvg(), speeds=speeds, settings=budget)
    buff, _ = run_classifier(FedBuff(buffer_size=2, concurrency=3), speeds=speeds, settings=budget)
    for result in (sync, buff):
        assert result.stop_reason == "time_budget" and result.virtual_s == 40.0
    assert sync.rounds.empty and len(buff.rounds) > 5  # the slow client holds the round, not the buffer
