"""Work that only a cancel can cut, waited for as one event, gives the tables of one event per wait.

The engine comparisons run configurations where the closed form meets what can end it
early (cancels from server failures and deadlines, the end of an asynchronous run, a
virtual-time budget) and checkpoints under ``restore_checkpoint``, and rounds that
nothing cancels, where work is played ahead (dropouts, stragglers, checkpoints); every
table must be identical to the phase-by-phase path's, and the counters prove each way
in and out was taken.
"""

from __future__ import annotations

import dataclasses
import gc
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import simpy

from fedsim.experiments import run
from fedsim.fl import closed_form
from fedsim.fl.closed_form import Cursor, RunOver, segment_ends, segment_seconds

from test_engine_golden import SYSTEM, _cfg


def test_segment_ends_are_the_instants_timeouts_reach():
    env, steps, stops, ck = simpy.Environment(), np.random.default_rng(1).exponential(0.3, 17), [4, 9, 17], 0.123
    ends = []

    def chain():
        start = 2
        for i, stop in enumerate(stops):
            if i:
                yield env.timeout(ck)
            yield env.timeout(float(steps[start:stop].sum()))
            ends.append(env.now)
            start = stop

    env.run(env.process(chain()))
    assert segment_ends(0.0, segment_seconds(steps, stops, 2), ck) == ends  # exact: the same sums in the same order


def test_a_cursor_advances_until_its_cut_and_raises_the_cut_there():
    cursor = Cursor(1.0, simpy.Environment().event())
    assert cursor.advance(0.5) == 1.5
    stop = RunOver()
    cursor.cut(2.0, stop)
    assert cursor.advance(0.25) == 1.75
    with pytest.raises(RunOver) as raised:
        cursor.advance(0.25)  # ends at the cut: the interrupt came first
    assert raised.value is stop and cursor.now == 1.75


def test_a_cut_cursor_lets_go_of_its_interrupt_and_leaves_no_cycle():
    # the interrupt's traceback holds the frame that raised it, and so the cursor: a cursor still holding the
    # interrupt would make a cycle per failure met ahead, alive (frames, work and all) until the round's collection
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # as a run has it
    try:
        cursor = Cursor(1.0, None)
        cursor.cut(1.5, RunOver())
        with pytest.raises(RunOver):
            cursor.advance(1.0)
        del cursor
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()


CASES = {
    "checkpoints_cancels": ["checkpoint=every_tau", "checkpoint.tau_s=0.5", "recovery=restore_checkpoint", "recovery.detection=false",
                            "failure.server=true", "failure.server_scale=25.0", "failure.server_repair_mean_s=2.0"],
    "fedbuff_budget": ["strategy=fedbuff", "strategy.concurrency=8", "strategy.buffer_size=4", "run.max_time_s=40.0"],
    "deadline_dropout": ["run.round_policy=deadline", "run.deadline_s=9.0", "failure.dropout=0.2", "checkpoint=every_tau", "checkpoint.tau_s=1.0"],
    "uncut_checkpoints_stragglers": ["checkpoint=every_tau", "checkpoint.tau_s=0.5", "recovery=restore_checkpoint", "recovery.detection=false",
                                     "failure.dropout=0.2", "compute.straggler_share=0.3", "strategy.local_epochs=2"],
    "uncut_partial": ["failure.dropout=0.1", "compute.straggler_share=0.3", "strategy=fedprox", "strategy.stragglers=partial",
                      "strategy.local_epochs=3"],
}  # fmt: skip


def tables(overrides: list[str], closed: bool) -> dict[str, pd.DataFrame]:
    build = run.build_settings
    run.build_settings = lambda *a, **k: dataclasses.replace(build(*a, **k), closed_form=closed)
    try:
        result = run.run_experiment(_cfg([*SYSTEM, "failure=weibull", "failure.shape=1.5", "failure.scale=10.0", "data.num_clients=24",
                                          "run.max_rounds=6", *overrides]))  # fmt: skip
    finally:
        run.build_settings = build
    return {"rounds": result.rounds.drop(columns="wall_s"), "events": result.events, "accounting": result.accounting, "clients": result.clients}


def test_one_event_for_the_work_gives_the_tables_of_one_event_per_wait(monkeypatch):
    ways = Counter()  # how closed-form work began (one event, or played ahead) and was cut (a cancel, a failure met ahead, the run's end)
    start, cut = closed_form.Cursor.__init__, closed_form.Cursor.cut
    monkeypatch.setattr(closed_form.Cursor, "__init__", lambda self, now, pending: (ways.update(["closed form" if pending else "ahead"]),
                                                                                   start(self, now, pending))[1])  # fmt: skip
    monkeypatch.setattr(closed_form.Cursor, "cut", lambda self, at, stop: (ways.update([type(getattr(stop, "cause", stop)).__name__]),
                                                                           cut(self, at, stop))[1])  # fmt: skip
    for name, overrides in CASES.items():
        closed = tables(overrides, closed=True)
        phases = tables(overrides, closed=False)
        for table, want in phases.items():
            pd.testing.assert_frame_equal(closed[table], want, check_exact=True, obj=f"{table} of {name}")
    assert ways["closed form"] > 100 and ways["ahead"] > 0 and ways["RunOver"] > 0, ways
    assert ways["Cancel"] > 0 and ways["FailureAhead"] > 0, ways  # cut by the server, or (played ahead) by the client's failure


LAZY_CASES = {  # restores read the checkpoints back; redistribution gives a client checkpoints under other names
    "restores": ["failure.scale=6.0"],
    "redistributed": ["failure.scale=6.0", "recovery.detection=true", "recovery.aggregation=redistribute"],
}


@pytest.mark.parametrize("case", LAZY_CASES)
def test_checkpoints_saved_when_they_could_be_read_leave_the_same_tables_and_files(case, monkeypatch, tmp_path):
    """A pure executor's checkpoints are serialised only before a restore, at a task's end and at the run's end: the
    tables and the checkpoint files on disk are those of saving every one, for a fraction of the serialisations."""
    import torch

    from fedsim.fl.surrogate import SurrogateExecutor

    saved = Counter()
    save = torch.save  # every store serialises with it, into memory or straight into a file
    monkeypatch.setattr(torch, "save", lambda payload, f: (saved.update(["now"]), save(payload, f))[1])
    overrides = [*SYSTEM, "failure=weibull", "failure.shape=0.8", "data.num_clients=12", "run.max_rounds=4", "checkpoint=every_tau",
                 "checkpoint.tau_s=0.25", "checkpoint.on_disk=true", "recovery=restore_checkpoint", *LAZY_CASES[case]]  # fmt: skip
    runs = {}
    for pure in (True, False):
        monkeypatch.setattr(SurrogateExecutor, "pure", pure)
        saved.clear()
        out = tmp_path / str(pure)
        result = run.run_experiment(_cfg(overrides), out_dir=out)
        files = {p.name: p.read_bytes() for p in sorted((out / "checkpoints").glob("*.ckpt"))}
        runs[pure] = (result, files, saved["now"])
    (lazy, lazy_files, lazy_saves), (eager, eager_files, eager_saves) = runs[True], runs[False]
    for table in ("rounds", "events", "accounting"):
        got, want = getattr(lazy, table), getattr(eager, table)
        if table == "rounds":
            got, want = got.drop(columns="wall_s"), want.drop(columns="wall_s")
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=table)
    kind = "restore" if case == "restores" else "redistribute"
    assert (lazy.events["kind"] == kind).sum() > 0 and lazy_files == eager_files and len(lazy_files) > 1
    assert lazy_saves < eager_saves / 2, (lazy_saves, eager_saves)
