"""The failure clock produces Weibull lifetimes and alternates fail/repair."""

from __future__ import annotations

import numpy as np
import simpy
from scipy import stats

from fedsim.seeding import rng
from fedsim.sim.failures import FailureClock, FailureModel, repair_sampler, weibull_residual_life


class Node:
    def __init__(self, env: simpy.Environment) -> None:
        self.env, self.log = env, []

    def fail(self) -> None:
        self.log.append(("fail", self.env.now))

    def repair(self) -> None:
        self.log.append(("repair", self.env.now))


def lifetimes_from_log(log) -> np.ndarray:
    out, up_since = [], 0.0
    for kind, t in log:
        if kind == "fail":
            out.append(t - up_since)
        else:
            up_since = t
    return np.asarray(out)


def test_simulated_times_to_failure_pass_ks_against_weibull():
    for shape, scale in [(0.7, 2.0), (1.0, 5.0), (1.5, 3.0)]:
        env = simpy.Environment()
        node = Node(env)
        FailureClock(env, node, FailureModel(shape, scale, repair_sampler("exponential", 0.5)), rng(7, "failure", 0))
        env.run(until=3000)
        ttf = lifetimes_from_log(node.log)
        assert len(ttf) > 300
        # seeded, so deterministic; α = 0.01 per law: a wrong shape or scale by 10% fails at this n
        assert stats.kstest(ttf, stats.weibull_min(shape, scale=scale).cdf).pvalue > 0.01
        # and the test has power: the same sample rejects a 20% wrong scale
        assert stats.kstest(ttf, stats.weibull_min(shape, scale=1.2 * scale).cdf).pvalue < 0.01


def test_fail_and_repair_alternate_with_fixed_repair_time():
    env = simpy.Environment()
    node = Node(env)
    FailureClock(env, node, FailureModel(1.0, 1.0, repair_sampler("fixed", 0.25)), rng(0, "f"))
    env.run(until=50)
    kinds = [k for k, _ in node.log]
    assert kinds[::2] == ["fail"] * len(kinds[::2]) and kinds[1::2] == ["repair"] * len(kinds[1::2])
    gaps = [b[1] - a[1] for a, b in zip(node.log[::2], node.log[1::2])]
    assert np.allclose(gaps, 0.25)


def test_residual_life_matches_conditional_weibull():
    g = rng(1, "residual")
    shape, scale, age = 2.0, 1.0, 0.8
    draws = np.array([weibull_residual_life(g, shape, scale, age) for _ in range(4000)])
    law = stats.weibull_min(shape, scale=scale)
    conditional_cdf = lambda x: 1 - law.sf(age + x) / law.sf(age)  # noqa: E731
    assert stats.kstest(draws, conditional_cdf).pvalue > 0.01


def test_repair_samplers_have_the_requested_mean():
    g = rng(2, "repair")
    for kind in ["fixed", "exponential", "lognormal"]:
        draw = repair_sampler(kind, 10.0, cv=0.5)
        mean = np.mean([draw(g) for _ in range(20000)])
        assert abs(mean - 10.0) < 0.3  # > 4 standard errors for cv ≤ 1 at n = 20000


def test_a_clock_on_a_fleet_stream_draws_what_one_on_its_own_generator_draws():
    # the stream's generator is dropped after the first lifetime and made again (replaying it) at the first failure
    from fedsim.streams import Streams

    model = FailureModel(1.5, 2.0, repair_sampler("lognormal", 0.5, cv=0.8))
    logs = []
    for make in (lambda i: rng(4, "failure", i), None):
        env = simpy.Environment()
        streams = Streams(4, "failure", np.arange(5))
        nodes, drawn = [Node(env) for _ in range(5)], []
        for i, node in enumerate(nodes):
            source = make(i) if make else streams
            FailureClock(env, node, model, source, lambda ttfs, _: drawn.extend(ttfs), index=i)
        env.run(until=20)
        logs.append(([n.log for n in nodes], drawn))
    assert logs[0] == logs[1] and len(logs[0][1]) > 20

