"""Events per second of the system-only mode (surrogate learner, no torch) with 10,000 clients.

Counts every SimPy event the run schedules (timeouts, process steps, store puts/gets,
the shared server link's timers) and, separately, the rows of the recorded event log.
With ``--server-mbps`` the same workload runs a second time, in the same process, with
the server's links capped (max-min fair sharing), and the ratio is printed.

    python benchmarks/bench_system_only.py [--quick] [--clients 10000] [--rounds 3]
    python benchmarks/bench_system_only.py --clients 100000 --failure-scale 600 --server-mbps 100000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import simpy  # noqa: E402

from benchmarks.workload import SPEC, common_args, make_model, setup  # noqa: E402
from fedsim.fl.server import Stopping  # noqa: E402
from fedsim.fl.simulation import NetworkSpec, SimSettings, simulate  # noqa: E402
from fedsim.fl.strategies import FedAvg  # noqa: E402
from fedsim.fl.surrogate import LearningCurve, SurrogateExecutor, surrogate_initial  # noqa: E402
from fedsim.sim.compute import ComputeModel  # noqa: E402
from fedsim.sim.failures import FailureModel, repair_sampler  # noqa: E402


class _Counting(simpy.Environment):
    """A SimPy environment that counts the events it schedules."""

    scheduled = 0

    def schedule(self, event, priority=1, delay=0):  # noqa: D102
        _Counting.scheduled += 1
        super().schedule(event, priority, delay)


def run_once(n: int, rounds: int, network: NetworkSpec, failure: FailureModel) -> dict:
    """One system-only run of the workload on ``network``; wall time and event counts."""
    curve = LearningCurve()
    model = make_model("dnn")  # message and checkpoint sizes of the paper's DNN
    _Counting.scheduled = 0
    real_env, simpy.Environment = simpy.Environment, _Counting
    try:
        t0 = time.perf_counter()
        res = simulate(
            model=model, initial=surrogate_initial(), clients=[2000] * n, speeds=np.random.default_rng(0).lognormal(0, 0.3, n),
            strategy=FedAvg(), spec=SPEC, compute=ComputeModel(0.002), network=network, val=None, test=None,
            settings=SimSettings(seed=0, failure=failure, dropout=0.1, stopping=Stopping(max_rounds=rounds)),
            executor=SurrogateExecutor.factory(curve), evaluator=curve.evaluate,
        )
        wall = time.perf_counter() - t0
    finally:
        simpy.Environment = real_env
    logged = len(res.events)
    return {"n": n, "wall_s": wall, "simpy_events": _Counting.scheduled, "logged_events": logged,
            "simpy_events_per_s": _Counting.scheduled / wall, "logged_events_per_s": logged / wall,
            "virtual_s": res.virtual_s, "final_accuracy": float(res.rounds["accuracy"].iloc[-1])}


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--failure-scale", type=float, default=20.0, help="Weibull λ of the client failure clocks, virtual s")
    p.add_argument("--server-mbps", type=float, default=None, help="also run with the server's links capped at this (both directions)")
    args = p.parse_args(argv)
    setup(args)
    n, rounds = (200, 2) if args.quick else (args.clients, args.rounds)
    failure = FailureModel(shape=1.5, scale=args.failure_scale, repair=repair_sampler("exponential", 2.0))
    runs = {"unlimited": NetworkSpec()}
    if args.server_mbps is not None:
        runs[f"server {args.server_mbps:g} Mbit/s"] = NetworkSpec(server_down_bps=args.server_mbps * 1e6, server_up_bps=args.server_mbps * 1e6)
    outs = {}
    for name, network in runs.items():
        out = outs[name] = run_once(n, rounds, network, failure)
        print(f"system-only, {n} clients, {rounds} rounds, Weibull(1.5, {args.failure_scale:g} s) failures + 10% dropout, {name}: "
              f"{out['wall_s']:.2f} s wall, {out['virtual_s']:.1f} s virtual, {out['simpy_events']} SimPy events ({out['simpy_events_per_s']:,.0f}/s), "
              f"{out['logged_events']} logged events ({out['logged_events_per_s']:,.0f}/s); final accuracy {out['final_accuracy']:.3f}")
    if len(outs) > 1:
        base, capped = outs.values()
        print(f"capped / unlimited: wall {capped['wall_s'] / base['wall_s']:.2f}×, SimPy events/s {capped['simpy_events_per_s'] / base['simpy_events_per_s']:.2f}×")
    return {**outs["unlimited"], "runs": outs}


if __name__ == "__main__":
    main()
