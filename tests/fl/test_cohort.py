"""Clean first attempts finished together give the tables of the attempts played one by one.

Each configuration runs three ways: with the cohort (the default), with every start
played one by one (the cohort takes none), and phase by phase (no closed form at all).
All tables must be identical; the counter proves the cohort took attempts where it can,
and none where links are shared.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from fedsim.fl.cohort import Cohort
from fedsim.sim.ledger import Ledger, succeed_all

from test_closed_form import tables

CASES = {  # (overrides, whether the cohort can take attempts)
    "dropout": (["failure.dropout=0.1", "failure.scale=40.0"], True),
    "stragglers_dropped": (["failure.dropout=0.2", "compute.straggler_share=0.3", "strategy.local_epochs=2", "failure.scale=40.0"], True),
    "links_spread_half_selected": (["network.spread=0.3", "strategy.fraction=0.5", "failure.scale=40.0"], True),
    "frequent_failures": (["failure.dropout=0.1"], True),
    "shared_server_link": (["network.server_down_mbps=40.0", "failure.dropout=0.1", "failure.scale=40.0"], False),
}


@pytest.mark.parametrize("case", CASES)
def test_attempts_finished_together_leave_the_tables_of_one_by_one(case, monkeypatch):
    overrides, takes_some = CASES[case]
    taken = Counter()
    takes = Cohort.takes
    monkeypatch.setattr(Cohort, "takes", lambda self, client: (lambda ok: (taken.update([ok]), ok)[1])(takes(self, client)))
    together = tables(overrides, closed=True)
    assert (taken[True] > 0) == takes_some and taken[False] > 0, taken  # some taken (where links are not shared), some not
    monkeypatch.setattr(Cohort, "takes", lambda self, client: False)
    one_by_one = tables(overrides, closed=True)
    phases = tables(overrides, closed=False)
    for table, want in phases.items():
        pd.testing.assert_frame_equal(together[table], want, check_exact=True, obj=f"{table} of {case}")
        pd.testing.assert_frame_equal(one_by_one[table], want, check_exact=True, obj=f"{table} of {case}, one by one")


def test_ledgers_succeeding_together_sum_as_one_by_one():
    rng = np.random.default_rng(5)
    ledgers = [Ledger() for _ in range(200)]
    for ledger in ledgers:  # histories of their own, each left waiting: some with work banked by a checkpoint
        for t in np.cumsum(rng.exponential(1.0, 3)).tolist():
            ledger.enter(rng.choice(["work", "recovery", "checkpoint"]), t)
            if rng.random() < 0.3:
                ledger.checkpointed()
        ledger.enter("waiting", ledger.now + rng.exponential(1.0))
        if rng.random() < 0.5:
            ledger.lose(keep_banked=True)
    start = max(ledger.now for ledger in ledgers) + 0.1
    marks = [start + rng.exponential(0.3, len(ledgers))]
    marks += [marks[-1] + rng.exponential(2.0, len(ledgers)), None]
    marks[2] = marks[1] + rng.exponential(0.5, len(ledgers))
    copies = [Ledger() for _ in ledgers]
    for copy, ledger in zip(copies, ledgers):
        copy.now, copy.state, copy.totals, copy.pending, copy.banked = ledger.now, ledger.state, list(ledger.totals), ledger.pending, ledger.banked
    for j, copy in enumerate(copies):
        copy.enter("work", start)
        for t in (marks[0][j], marks[1][j]):
            copy.enter("work", float(t))
        copy.enter("waiting", float(marks[2][j]))
        copy.succeed()
    succeed_all(ledgers, start, marks)
    for copy, ledger in zip(copies, ledgers):
        assert (ledger.totals, ledger.now, ledger.state, ledger.pending, ledger.banked) == (copy.totals, copy.now, copy.state, copy.pending, copy.banked)
