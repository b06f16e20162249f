"""Failure clocks that sleep through their clients' idle time give the tables that clocks ticking every transition give.

Drawn configurations, each run both ways on the same seed, cover what interacts with a
client's failures: Weibull shapes and scales, repair laws, dropout, checkpoints and both
recovery policies, deadlines with partial work, link and server failures, the
asynchronous strategies and a virtual-time budget. Every table (events, rounds,
accounting, clients) must be identical, so the drawn cases check that a failure played
late, at its own time, is the failure an event would have played.
"""

from __future__ import annotations

import dataclasses
import random

import pandas as pd
import pytest

from fedsim.experiments import run
from fedsim.fl import client
from fedsim.sim import sleeping_clocks

from test_engine_golden import SYSTEM, _cfg

CHOICES: dict[str, list[list[str]]] = {
    "law": [["failure.shape=0.7", "failure.scale=3.0"], ["failure.shape=1.5", "failure.scale=10.0"], ["failure.shape=1.0", "failure.scale=30.0"]],
    "repair": [["failure.repair=fixed", "failure.repair_mean_s=1.0"], ["failure.repair=exponential", "failure.repair_mean_s=2.0"]],
    "dropout": [[], ["failure.dropout=0.2"]],
    "checkpoint": [[], ["checkpoint=every_tau", "checkpoint.tau_s=1.0", "recovery=restore_checkpoint", "recovery.detection=false"], ["checkpoint=every_tau", "checkpoint.tau_s=0.5"]],
    "policy": [[], ["run.round_policy=deadline", "run.deadline_s=12.0", "strategy.stragglers=partial"], ["run.max_time_s=40.0"]],
    "strategy": [[], ["strategy=fedbuff", "strategy.concurrency=8", "strategy.buffer_size=4"], ["strategy=fedasync", "strategy.concurrency=6"], ["strategy.fraction=0.5"]],
    "links": [[], ["failure.links=true", "failure.link_scale=15.0"]],
    "server": [[], ["failure.server=true", "failure.server_scale=25.0", "failure.server_repair_mean_s=2.0"]],
}  # fmt: skip
CASES = [*range(8), *(pytest.param(case, marks=pytest.mark.deep) for case in range(8, 48))]  # 8 by default, 48 in the deep tier


def drawn(case: int) -> list[str]:
    """The overrides of drawn case ``case`` (seeded: the same cases every run)."""
    g = random.Random(case)
    picked = {name: g.choice(options) for name, options in CHOICES.items()}
    if any(o in ("strategy=fedbuff", "strategy=fedasync") for o in picked["strategy"]) and "run.round_policy=deadline" in picked["policy"]:
        picked["policy"] = []  # deadlines are synchronous
    return ["failure=weibull", "data.num_clients=24", "run.max_rounds=6", *(o for options in picked.values() for o in options)]


def tables(overrides: list[str], sleeping: bool) -> dict[str, pd.DataFrame]:
    build = run.build_settings
    run.build_settings = lambda *a, **k: dataclasses.replace(build(*a, **k), sleeping_clocks=sleeping)
    try:
        result = run.run_experiment(_cfg([*SYSTEM, *overrides]))
    finally:
        run.build_settings = build
    return {"rounds": result.rounds.drop(columns="wall_s"), "events": result.events, "accounting": result.accounting, "clients": result.clients}


@pytest.mark.parametrize("case", CASES)
def test_sleeping_clocks_give_the_tables_of_ticking_clocks(case, monkeypatch):
    overrides = drawn(case)
    late = []  # transitions played late, at their past times
    advance = sleeping_clocks.SleepingClock.advance
    monkeypatch.setattr(sleeping_clocks.SleepingClock, "advance", lambda self: (late.append(self.when < self.env.now), advance(self))[1])
    lapse, bulk = sleeping_clocks.SleepingClock._lapse, []  # transitions played late in one go
    monkeypatch.setattr(sleeping_clocks.SleepingClock, "_lapse", lambda self, now: (bulk.append(self.when < now), lapse(self, now))[1])
    draw, together = sleeping_clocks.Sleepers._draw_together, []  # idle clocks drawn for as arrays, all at once
    monkeypatch.setattr(sleeping_clocks.Sleepers, "_draw_together", lambda self, clocks, now: (together.append(len(clocks)), draw(self, clocks, now))[1])
    told = []  # rows of idle clients' failures and repairs handed to the fleet at once (IdleClients)
    lapse_all = client.IdleClients.lapse
    monkeypatch.setattr(client.IdleClients, "lapse", lambda self, ids, times, failed: (told.append(len(ids)), lapse_all(self, ids, times, failed))[1])
    lazy = tables(overrides, sleeping=True)
    eager = tables(overrides, sleeping=False)
    assert any(late) or any(bulk) or any(together), f"no clock slept through a failure in {overrides}"  # the case exercises a late path
    assert sum(told) > 0 or case >= 8, f"no idle client's transitions were handed over at once in {overrides}"  # every default case does
    for name, want in eager.items():
        pd.testing.assert_frame_equal(lazy[name], want, check_exact=True, obj=f"{name} of {overrides}")
    assert (lazy["events"]["kind"] == "failure").sum() > 0
