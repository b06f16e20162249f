"""Links and the server's shared link on the SimPy clock, against closed forms and the fluid reference."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.sim.fairshare import fluid_finish_times
from fedsim.sim.link_rates import RateSchedule
from fedsim.sim.network import Link, Network, SharedLink

MB = 1_000_000


def send_all(env, links, sizes, starts=None):
    """Each link sends its message at its start time; returns finish times (NaN if cut) and the processes."""
    done = np.full(len(links), np.nan)

    def sender(i):
        yield env.timeout(0 if starts is None else starts[i])
        try:
            yield from links[i].send(sizes[i])
            done[i] = env.now
        except simpy.Interrupt:
            pass

    procs = [env.process(sender(i)) for i in range(len(links))]
    for link, proc in zip(links, procs):
        link.owner = _Interrupts(proc)
    return done, procs


class _Interrupts:
    """A link owner that interrupts its sender when the link goes down."""

    def __init__(self, proc) -> None:
        self.proc = proc

    def link_failed(self, link) -> None:
        self.proc.interrupt("link down")

    def link_event(self, kind: str) -> None:
        pass


def test_n_identical_uploads_finish_at_latency_plus_n_bits_over_capacity():
    env = simpy.Environment()
    n, size, capacity, latency = 1000, int(5.6 * MB), 1e9, 0.03
    shared = SharedLink(env, capacity)
    links = [Link(env, latency_s=latency, bandwidth_bps=10e9, shared=shared) for _ in range(n)]  # fast client links
    done, _ = send_all(env, links, [size] * n)
    env.run()
    expected = latency + 8 * n * size / capacity
    assert np.max(np.abs(done / expected - 1)) <= 1e-9


def test_mixed_client_rates_match_the_hand_water_filling():
    # C = 10 Mbit/s; client caps 2, 10, 10 Mbit/s; messages 1, 1.5, 4.5 MB = 8, 12, 36 Mbit; latency 0.5 s.
    # From 0.5: rates 2, 4, 4 (the slow client keeps 2, the rest split 8). At +3 s client 1 is done (12 at 4);
    # client 0 has 2 Mbit left, client 2 has 24: rates 2, 8. At +4 s client 0 is done; client 2 has 16 left,
    # alone at 10 Mbit/s: +1.6 s. Finish: 4.5, 3.5, 6.1.
    env = simpy.Environment()
    shared = SharedLink(env, 10e6)
    links = [Link(env, latency_s=0.5, bandwidth_bps=r * 1e6, shared=shared) for r in (2, 10, 10)]
    done, _ = send_all(env, links, [1 * MB, int(1.5 * MB), int(4.5 * MB)])
    env.run()
    assert done.tolist() == pytest.approx([4.5, 3.5, 6.1], rel=1e-12)


def test_a_cut_transfer_frees_its_share_at_that_instant():
    # Two 10 Mbit messages share 10 Mbit/s: 5 each. A's link fails at 0.5 s: B has 7.5 Mbit left and gets all
    # 10 Mbit/s from that instant, finishing at 1.25 s (2.0 s without the cut).
    env = simpy.Environment()
    shared = SharedLink(env, 10e6)
    links = [Link(env, latency_s=0.0, bandwidth_bps=100e6, shared=shared) for _ in range(2)]
    done, _ = send_all(env, links, [int(1.25 * MB)] * 2)
    seen = {}

    def breaker():
        yield env.timeout(0.5)
        links[0].fail()
        yield env.timeout(0)  # let the interrupted sender unwind
        seen["rates"] = shared.share.rates()

    env.process(breaker())
    env.run()
    assert np.isnan(done[0]) and done[1] == pytest.approx(1.25, rel=1e-12)
    assert list(seen["rates"].values()) == [10e6]


def test_zero_byte_message_takes_only_the_latency():
    env = simpy.Environment()
    link = Link(env, latency_s=0.2, bandwidth_bps=1e6, shared=SharedLink(env, 1e6))
    done, _ = send_all(env, [link], [0])
    env.run()
    assert done[0] == pytest.approx(0.2)
    assert len(link.shared.share) == 0


def test_private_link_follows_its_rate_schedule():
    # 16 Mbit from t = 0.1 at 8 Mbit/s until t = 1 (7.2 Mbit), then 8.8 Mbit at 16 Mbit/s: 0.55 s → 1.55
    env = simpy.Environment()
    link = Link(env, latency_s=0.1, bandwidth_bps=1.0, schedule=RateSchedule((0.0, 1.0), (8e6, 16e6)))
    done, _ = send_all(env, [link], [2 * MB])
    env.run()
    assert done[0] == pytest.approx(1.55, rel=1e-12)


def test_shared_link_follows_a_rate_change_mid_transfer():
    # 14 Mbit through a 10 Mbit/s server: 1 s at the client's 4 Mbit/s, then the client link rises to 20 Mbit/s
    # and the server's 10 Mbit/s limits it: 10 Mbit left → 1 s more.
    env = simpy.Environment()
    link = Link(env, latency_s=0.0, bandwidth_bps=1.0, shared=SharedLink(env, 10e6), schedule=RateSchedule((0.0, 1.0), (4e6, 20e6)))
    done, _ = send_all(env, [link], [int(1.75 * MB)])
    env.run()
    assert done[0] == pytest.approx(2.0, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.integers(1, 4 * MB), st.floats(1.0, 50.0)), min_size=1, max_size=12), st.floats(5.0, 100.0))
def test_simpy_finish_times_equal_the_fluid_reference(flows, capacity_mbps):
    starts, sizes, rates = (np.array(c) for c in zip(*flows))
    env = simpy.Environment()
    shared = SharedLink(env, capacity_mbps * 1e6)
    links = [Link(env, latency_s=0.01, bandwidth_bps=r * 1e6, shared=shared) for r in rates]
    done, _ = send_all(env, links, sizes.tolist(), starts.tolist())
    env.run()
    want = fluid_finish_times(starts + 0.01, 8.0 * sizes, rates * 1e6, capacity_mbps * 1e6)
    assert done == pytest.approx(want, rel=1e-9)


def test_messages_on_one_client_link_go_one_after_another():
    # a link has one sender (its client's process), which sends one message at a time: no queue, no resource
    env = simpy.Environment()
    link = Link(env, latency_s=0.0, bandwidth_bps=8e6, shared=SharedLink(env, 1e9))
    done = []

    def sender():
        for _ in range(2):
            yield from link.send(MB)
            done.append(env.now)

    env.process(sender())
    env.run()
    assert done == pytest.approx([1.0, 2.0])


def test_unlimited_server_builds_no_shared_link():
    env = simpy.Environment()
    net = Network(env, latency_s=0.01, down_bps=1e8, up_bps=2e7)
    down, up = net.pair(0)
    assert net.shared_down is None and net.shared_up is None
    assert (down.shared, down.schedule, down.bandwidth_bps, up.bandwidth_bps) == (None, None, 1e8, 2e7)
    capped = Network(env, latency_s=0.01, down_bps=1e8, up_bps=2e7, server_up_bps=1e9)
    assert capped.pair(0)[1].shared is capped.pair(1)[1].shared is capped.shared_up and capped.shared_down is None
