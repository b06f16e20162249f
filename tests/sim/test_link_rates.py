"""Per-client links: rate schedules, bandwidth traces (and their one-line errors), seeded spread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedsim.errors import FedsimError
from fedsim.seeding import rng
from fedsim.sim.link_rates import RateSchedule, client_links, read_trace


def test_schedule_rate_change_and_finish():
    s = RateSchedule((2.0, 5.0), (10.0, 20.0))
    assert [s.rate_at(t) for t in (0.0, 2.0, 4.9, 5.0, 99.0)] == [10.0, 10.0, 10.0, 20.0, 20.0]
    assert [s.next_change(t) for t in (0.0, 2.0, 5.0)] == [2.0, 5.0, math.inf]
    assert s.finish(0.0, 30.0) == pytest.approx(3.0)  # before the first row: the first rate
    assert s.finish(4.0, 30.0) == pytest.approx(6.0)  # 10 bits by t = 5, then 20 at 20/s


def write(tmp_path, text):
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_trace_rows_become_sorted_schedules_per_client(tmp_path):
    path = write(tmp_path, "client,time,down_mbps,up_mbps\n7,10,50,5\n3,0,100,20\n7,0,40,4\n")
    down, up = read_trace(path)
    assert down == (RateSchedule((0.0,), (100e6,)), RateSchedule((0.0, 10.0), (40e6, 50e6)))
    assert up[1] == RateSchedule((0.0, 10.0), (4e6, 5e6))


def test_simulated_clients_cycle_through_the_trace_clients(tmp_path):
    path = write(tmp_path, "time,client,up_mbps,down_mbps\n0,1,2,20\n0,2,3,30\n")  # any column order
    links = client_links(5, latency_s=0.01, down_bps=1e8, up_bps=2e7, spread=0.0, stream=lambda k: rng(0, "link", k), trace=path)
    assert [links.schedules(i)[0].rate_at(0) for i in range(5)] == [20e6, 30e6, 20e6, 30e6, 20e6]
    assert links.latency_s.tolist() == [0.01] * 5


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("client,time,down\n0,0,1\n", ":1:", "header"),
        ("client,time,down_mbps,up_mbps\n0,0,10,1\n1,x,10,1\n", ":3:", "not numbers"),
        ("client,time,down_mbps,up_mbps\n0,0,10,1\n0,1,0,1\n", ":3:", "> 0"),
        ("client,time,down_mbps,up_mbps\n0,0,10,1\n0,-1,10,1\n", ":3:", "time"),
        ("client,time,down_mbps,up_mbps\n0,5,10,1\n0,5,20,1\n", ":3:", "line 2"),
        ("client,time,down_mbps,up_mbps\n0,5,10\n", ":2:", "fields"),
        ("client,time,down_mbps,up_mbps\n", "", "no data rows"),
    ],
)
def test_bad_trace_gives_one_line_naming_file_and_line(tmp_path, text, where, what):
    path = write(tmp_path, text)
    with pytest.raises(FedsimError) as err:
        read_trace(path)
    msg = str(err.value)
    assert f"{path}{where}" in msg and what in msg and "\n" not in msg


def test_missing_trace_file(tmp_path):
    with pytest.raises(FedsimError, match="no such file"):
        read_trace(tmp_path / "nope.csv")


def test_no_spread_and_no_trace_means_identical_links():
    assert client_links(4, latency_s=0.01, down_bps=1e8, up_bps=2e7, spread=0.0, stream=lambda k: rng(0, "link", k)) is None


def test_spread_is_seeded_mean_one_and_does_not_depend_on_fleet_size():
    def draw(n, seed=0):
        return client_links(n, latency_s=0.02, down_bps=1e8, up_bps=2e7, spread=0.5, stream=lambda k: rng(seed, "link", k))

    small, large, other = draw(10), draw(20_000), draw(10, seed=1)
    assert np.array_equal(small.up_bps, large.up_bps[:10]) and np.array_equal(small.latency_s, large.latency_s[:10])
    assert not np.array_equal(small.up_bps, other.up_bps)
    assert not np.array_equal(small.up_bps / 2e7, small.down_bps / 1e8)  # independent draws per quantity
    # mean-one factors: the mean of 20,000 lognormal(σ = 0.5) draws has standard error √(e^0.25 − 1)/√20000 ≈ 0.0038;
    # 0.02 is > 5 standard errors
    assert large.up_bps.mean() / 2e7 == pytest.approx(1.0, abs=0.02)
