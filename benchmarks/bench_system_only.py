"""Events per second of the system-only mode (surrogate learner, no torch) with 10,000 clients.

Counts every SimPy event the run schedules (timeouts, process steps, store puts/gets)
and, separately, the rows of the recorded event log.

    python benchmarks/bench_system_only.py [--quick] [--clients 10000] [--rounds 3]
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


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    setup(args)
    n, rounds = (200, 2) if args.quick else (args.clients, args.rounds)
    curve = LearningCurve()
    model = make_model("dnn")  # message and checkpoint sizes of the paper's DNN
    failure = FailureModel(shape=1.5, scale=20.0, repair=repair_sampler("exponential", 2.0))
    real_env, simpy.Environment = simpy.Environment, _Counting
    try:
        t0 = time.perf_counter()
        res = simulate(
            model=model, initial=surrogate_initial(), clients=[2000] * n, speeds=np.random.default_rng(0).lognormal(0, 0.3, n),
            strategy=FedAvg(), spec=SPEC, compute=ComputeModel(0.002), network=NetworkSpec(), val=None, test=None,
            settings=SimSettings(seed=0, failure=failure, dropout=0.1, stopping=Stopping(max_rounds=rounds)),
            executor=SurrogateExecutor.factory(curve), evaluator=curve.evaluate,
        )
        wall = time.perf_counter() - t0
    finally:
        simpy.Environment = real_env
    logged = len(res.events)
    out = {"n": n, "wall_s": wall, "simpy_events": _Counting.scheduled, "logged_events": logged,
           "simpy_events_per_s": _Counting.scheduled / wall, "logged_events_per_s": logged / wall}
    print(f"system-only, {n} clients, {rounds} rounds, Weibull failures + 10% dropout: {wall:.2f} s wall, "
          f"{_Counting.scheduled} SimPy events ({out['simpy_events_per_s']:,.0f}/s), {logged} logged events ({out['logged_events_per_s']:,.0f}/s); "
          f"final accuracy {res.rounds['accuracy'].iloc[-1]:.3f}; target ≥ 100,000 events/s")
    return out


if __name__ == "__main__":
    main()
