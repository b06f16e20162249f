"""The collector is off while a run plays, and back as it was after, even when the run raises."""

from __future__ import annotations

import gc

import pytest

from fedsim.sim import collector


def test_paused_turns_the_collector_off_and_back_as_it_was():
    seen = []
    run = collector.paused(lambda: seen.append(gc.isenabled()))
    assert gc.isenabled()
    run()
    assert seen == [False] and gc.isenabled()

    @collector.paused
    def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        fails()
    assert gc.isenabled()
    gc.disable()
    try:
        run()
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_the_fleet_frozen_stays_out_of_collections_until_the_run_ends():
    before = gc.get_freeze_count()
    fleet = [[] for _ in range(100)]
    with collector.fleet_frozen():
        assert gc.get_freeze_count() >= before + len(fleet)
    assert gc.get_freeze_count() == 0
