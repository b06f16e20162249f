"""A client's time accounts: every instant in one bucket, and a lapse in one go equal to its steps."""

from __future__ import annotations

import random

import pytest

from fedsim.sim.ledger import BUCKETS, Ledger, close_all


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
