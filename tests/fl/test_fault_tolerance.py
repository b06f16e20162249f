"""Checkpointing, recovery policies, detection and the time accounting, on deterministic traces."""

from __future__ import annotations

import logging

import pytest
import torch

from fedsim.checkpoint.store import DiskStore
from fedsim.fl.recovery import Checkpointing, Detection, Drop, Redistribute
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import FaultTolerance, SimSettings
from fedsim.sim.failures import FailureModel, repair_sampler

DELTA = 0.125
BUCKETS = ["useful_s", "checkpoint_s", "lost_s", "recovery_s", "waiting_s"]


def settings(rounds: int = 2, trace=None, **fault) -> SimSettings:
    return SimSettings(seed=0, stopping=Stopping(max_rounds=rounds), failure_trace=trace or {}, fault=FaultTolerance(**fault))


def every_step(**kw) -> Checkpointing:
    return Checkpointing(tau_steps=1, delta_s=DELTA, restart_s=0.25, **kw)


def assert_identity(result) -> None:
    """total virtual time = useful + checkpoint + lost + recovery + waiting, for every client."""
    acc = result.accounting
    assert (acc["total_s"] == result.virtual_s).all()
    assert acc[BUCKETS].sum(axis=1).to_numpy() == pytest.approx(acc["total_s"].to_numpy(), rel=1e-12, abs=1e-9)
    assert (acc[BUCKETS] >= -1e-9).all().all()


def test_checkpointing_without_failures_costs_only_time(run_tiny):
    base = run_tiny(settings=settings(rounds=3))
    ckpt = run_tiny(settings=settings(rounds=3, checkpointing=every_step()))
    assert torch.equal(base.final, ckpt.final)
    # 3 clients with 127 rows = 4 steps of 32: checkpoints after steps 1, 2, 3 -> 3 per client per round
    n_client_ckpt = int((ckpt.events.kind == "checkpoint").sum())
    assert n_client_ckpt == 3 * 3 * 3
    # every client's critical path gains 3 client checkpoints, the server adds one per round
    assert ckpt.virtual_s - base.virtual_s == pytest.approx(3 * (3 + 1) * DELTA, rel=1e-9)
    assert ckpt.accounting["checkpoint_s"].tolist() == pytest.approx([3 * 3 * DELTA] * 3)
    assert_identity(base)
    assert_identity(ckpt)


def failing_run(run_tiny, recovery: str, fail_at: float, **fault):
    trace = {0: [(fail_at, 0.5)]}
    return run_tiny(settings=settings(rounds=2, trace=trace, checkpointing=every_step(), recovery=recovery, **fault))


def test_restore_checkpoint_loses_only_the_work_since_the_last_checkpoint(run_tiny):
    clean = run_tiny(settings=settings(rounds=2, checkpointing=every_step()))
    ev = clean.events
    _, second, third = ev[(ev.kind == "checkpoint") & (ev.client == 0) & (ev["round"] == 1)].time_s.tolist()
    fail_at = second + 0.3 * (third - DELTA - second)  # inside the third compute segment, after two checkpoints
    result = failing_run(run_tiny, "restore_checkpoint", fail_at)
    acc = result.accounting.set_index("client")
    assert acc.loc[0, "lost_s"] == pytest.approx(fail_at - second, rel=1e-9)
    assert (result.events.kind == "restore").sum() == 1
    assert acc.loc[0, "recovery_s"] == pytest.approx(0.5 + 0.25, rel=1e-9)  # repair + R
    # resuming from a checkpoint is exact: the same model as without the failure
    assert torch.equal(result.final, clean.final)
    assert_identity(result)


def test_reinit_global_loses_all_local_progress(run_tiny):
    clean = run_tiny(settings=settings(rounds=2, checkpointing=every_step()))
    ev = clean.events
    _, second, third = ev[(ev.kind == "checkpoint") & (ev.client == 0) & (ev["round"] == 1)].time_s.tolist()
    fail_at = second + 0.3 * (third - DELTA - second)
    result = failing_run(run_tiny, "reinit_global", fail_at)
    acc = result.accounting.set_index("client")
    # everything since the round started is lost except the time spent writing checkpoints
    assert acc.loc[0, "lost_s"] == pytest.approx(fail_at - 2 * DELTA, rel=1e-9)
    assert (result.events.kind == "restore").sum() == 0
    assert torch.equal(result.final, clean.final)
    assert_identity(result)


def test_corrupt_checkpoint_on_disk_is_reported_and_falls_back_to_global(run_tiny, tmp_path, monkeypatch, caplog):
    clean = run_tiny(settings=settings(rounds=2, checkpointing=every_step()))
    ev = clean.events
    _, second, third = ev[(ev.kind == "checkpoint") & (ev.client == 0) & (ev["round"] == 1)].time_s.tolist()
    real_load = DiskStore.load

    def load_after_bitflip(self, key):
        path = self.path(key)
        if path.is_file() and key.startswith("client0"):
            blob = bytearray(path.read_bytes())
            blob[len(blob) // 2] ^= 0x01
            path.write_bytes(bytes(blob))
        return real_load(self, key)

    monkeypatch.setattr(DiskStore, "load", load_after_bitflip)
    fail_at = second + 0.3 * (third - DELTA - second)
    with caplog.at_level(logging.WARNING):
        result = failing_run(run_tiny, "restore_checkpoint", fail_at, store_dir=tmp_path / "ckpt")
    assert (result.events.kind == "checkpoint_corrupt").sum() == 1
    warnings = [r.getMessage() for r in caplog.records if "SHA-256" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    acc = result.accounting.set_index("client")
    assert acc.loc[0, "lost_s"] == pytest.approx(fail_at - 2 * DELTA, rel=1e-9)  # as reinit_global
    assert torch.equal(result.final, clean.final) and len(result.rounds) == 2
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["client0-for0.ckpt", "client1-for1.ckpt", "client2-for2.ckpt", "server.ckpt"]
    assert_identity(result)


def test_detection_then_drop_aggregates_without_the_failed_client(run_tiny):
    trace = {1: [(0.2, 50.0)]}  # client 1 down for most of round 1
    det = Detection(heartbeat_s=0.1, timeout_s=0.35)
    result = run_tiny(settings=settings(rounds=1, trace=trace, detection=det, on_failure=Drop()))
    assert result.rounds["participants"].tolist() == [2]
    latency = result.events.loc[result.events.kind == "detected", "value"].iloc[0]
    assert det.timeout_s - det.heartbeat_s < latency <= det.timeout_s + det.heartbeat_s + 0.05
    assert result.virtual_s < 50
    assert_identity(result)


def test_redistribute_hands_the_data_to_the_active_clients(run_tiny):
    trace = {1: [(0.2, 50.0)]}
    det = Detection(heartbeat_s=0.1, timeout_s=0.35)
    result = run_tiny(settings=settings(rounds=1, trace=trace, detection=det, on_failure=Redistribute()))
    assert (result.events.kind == "redistribute").sum() == 1
    origins = result.clients.groupby("origin")["client"].apply(sorted).to_dict()
    assert origins == {0: [0], 1: [0, 2], 2: [2]}
    assert result.rounds["participants"].tolist() == [3]
    assert_identity(result)


def test_wait_without_detection_waits_for_the_repair(run_tiny):
    trace = {1: [(0.2, 5.0)]}
    result = run_tiny(settings=settings(rounds=1, trace=trace))
    assert result.rounds["participants"].tolist() == [3]
    assert result.virtual_s > 5.2
    assert_identity(result)


def test_server_failure_restarts_from_its_checkpoint(run_tiny):
    server = FailureModel(shape=1.0, scale=4.0, repair=repair_sampler("fixed", 0.5))
    result = run_tiny(settings=settings(rounds=4, checkpointing=every_step(), server_failure=server))
    kinds = set(result.events.kind)
    assert {"server_failure", "server_repair", "server_restore", "server_checkpoint"} <= kinds
    assert result.rounds["round"].max() == 4
    assert_identity(result)


def test_link_failures_lose_messages_that_are_resent(run_tiny):
    link = FailureModel(shape=1.0, scale=0.3, repair=repair_sampler("fixed", 0.05))
    result = run_tiny(settings=settings(rounds=2, link_failure=link))
    kinds = result.events.kind.value_counts()
    assert kinds.get("link_failure", 0) > 0 and kinds.get("message_lost", 0) > 0
    assert result.rounds["participants"].tolist() == [3, 3]
    assert_identity(result)


def test_random_failures_everywhere_keep_the_identity(run_tiny):
    client = FailureModel(shape=0.8, scale=1.0, repair=repair_sampler("exponential", 0.2))
    link = FailureModel(shape=1.0, scale=2.0, repair=repair_sampler("fixed", 0.05))
    for recovery in ["reinit_global", "restore_checkpoint"]:
        for on_failure in [Drop(), Redistribute()]:
            s = SimSettings(
                seed=11,
                failure=client,
                dropout=0.1,
                stopping=Stopping(max_rounds=3),
                fault=FaultTolerance(
                    checkpointing=every_step(),
                    recovery=recovery,
                    on_failure=on_failure,
                    detection=Detection(0.1, 0.35),
                    link_failure=link,
                ),
            )
            result = run_tiny(settings=s)
            assert len(result.rounds) == 3
            assert_identity(result)
