"""A client's time accounts: every instant in one bucket, and a lapse in one go equal to its steps."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fedsim.sim.ledger import BUCKETS, Ledger, close_all, lapse_all


def _stepped(ledger: Ledger, times: list[float], failing: bool) -> None:
    for t in times:
        ledger.enter("recovery" if failing else "waiting", t)
        failing = not failing


@pytest.mark.parametrize("seed", range(6))
def test_a_lapse_in_one_go_sums_what_its_enter_calls_sum(seed):
    # idle (waiting or recovering) or mid-work: the bulk sums must be the stepped ones to the bit
    g = random.Random(seed)
    ledgers = Ledger(), Ledger()
    start = g.choice(["waiting", "recovery", "work"])
    for ledger in ledgers:
        ledger.enter(start, 0.37)
    failing = start != "recovery"
    t, times = 0.37, []
    for _ in range(g.randrange(0, 30)):
        t += g.expovariate(0.3)
        times.append(t)
    ledgers[0].lapse(times, failing)
    _stepped(ledgers[1], times, failing)
    assert vars_of(ledgers[0]) == vars_of(ledgers[1])
    columns = [close_all([x], t + 1.0) for x in ledgers]
    assert all((columns[0][f"{b}_s"] == columns[1][f"{b}_s"]).all() for b in BUCKETS)


def vars_of(ledger: Ledger) -> tuple:
    return tuple(getattr(ledger, name) if name != "totals" else list(ledger.totals) for name in Ledger.__slots__)


@pytest.mark.parametrize("seed", range(4))
def test_many_ledgers_lapsed_as_columns_sum_what_each_lapse_sums(seed):
    # ledgers in either idle state with histories of their own, and a few mid-work (each takes its own lapse):
    # the column sums must be each ledger's own, to the bit
    g = random.Random(seed)
    alone, together, rows = [], [], []
    for j in range(300):
        state = g.choice(["waiting", "recovery", "waiting", "recovery", "work"])
        t = g.uniform(0, 5)
        pair = Ledger(), Ledger()
        for ledger in pair:
            ledger.enter("recovery", 0.1 * j)  # totals of their own before the lapse
            ledger.enter(state, t)
        failing = state != "recovery"
        times = []
        for _ in range(g.randrange(1, 40)):
            t += g.expovariate(0.7)
            times.append(t)
        pair[0].lapse(times, failing)
        alone.append(pair[0])
        together.append(pair[1])
        rows.append([(t, (k % 2 == 0) == failing) for k, t in enumerate(times)])
    starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
    lapse_all(together, np.array([t for r in rows for t, _ in r]), np.array([f for r in rows for _, f in r]), starts)
    assert [vars_of(x) for x in together] == [vars_of(x) for x in alone]
