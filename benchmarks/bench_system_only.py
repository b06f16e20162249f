"""Wall time, memory and events of the system-only mode (surrogate learner, no torch), against plain SimPy in the same process.

Two counts of events: ``events`` are the logical events, the rows of the run's event
log (failures, repairs, broadcasts, training segments, uploads…, the same for the same
config and seed however the engine schedules them); ``simpy_events`` are the SimPy events
it took to simulate them. A SimPy event is one processed by the environment's event loop
(popped from its queue: timeouts, process starts and resumptions, succeeded events,
interrupts, the shared server link's timers), counted from the environment's own event
id counter (scheduled minus still queued at the end), so counting costs nothing. The
ceiling (``simpy_ceiling_events_per_s``) is counted the same way on plain SimPy: as
many processes as clients (at most 100,000) each yielding timeouts of precomputed
random lengths, the cheapest event SimPy has, with the cyclic garbage collector paused
as ``simulate()`` runs with it paused. ``wall_s`` is the whole ``simulate()``
call (building the fleet, the event loop, the tables), with pandas imported beforehand
as any second run in a process finds it. Peak RSS is the process's high-water mark.
``wall_in_plain_simpy_events`` is ``wall_s`` × the ceiling: the wall time counted in
plain SimPy's events on this machine. Shared machines drift by tens of percent within
minutes, so the ceiling is measured twice, just before the run and just after it
(``simpy_ceiling_after_events_per_s``), and the yardstick takes their mean; the two
apart say how far the machine drifted meanwhile. On that yardstick the 60 s that issue
#24 asks, set where the ceiling was 422,000 events/s, is 25.3 million.

    python benchmarks/bench_system_only.py [--quick] [--clients 10000] [--rounds 3] [--json]
    python benchmarks/bench_system_only.py --clients 1000000 --rounds 1 --json
    python benchmarks/bench_system_only.py --clients 10000 --rounds 1 --mix   # where the SimPy events come from
    python benchmarks/bench_system_only.py --clients 100000 --failure-scale 600 --server-mbps 100000
    python benchmarks/bench_system_only.py --clients 10000 --tau 0.5 --phase-by-phase   # closed form vs one event per wait
    python benchmarks/bench_system_only.py --clients 200000 --rounds 1 --phases   # where the time and the memory go
    python benchmarks/bench_system_only.py --clients 1000000 --rounds 3 --fraction 0.1 --json   # a tenth of the fleet a round
    python benchmarks/bench_system_only.py --clients 5000 --rounds 1 --bytecodes   # Python's work per client, machine-independent

``--bytecodes`` counts the Python bytecodes the run executes (a tracer on every opcode,
some 20× slower): per client-round, by module and by function, beside plain SimPy's per
event. Unlike the wall time, the count is the same on every machine and under any load
(for the same Python), so it measures what a change to the engine saves where shared
machines drift by tens of percent between runs. Work done in C (numpy's arrays, SimPy's
heap) is not counted.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import simpy  # noqa: E402
from simpy.core import BoundClass  # noqa: E402

from benchmarks.workload import SPEC, common_args, make_model, memory_mib, setup  # noqa: E402
from fedsim.fl.recovery import Checkpointing  # noqa: E402
from fedsim.fl.server import Stopping  # noqa: E402
from fedsim.fl.simulation import FaultTolerance, NetworkSpec, SimSettings, simulate  # noqa: E402
from fedsim.fl.strategies import FedAvg  # noqa: E402
from fedsim.fl.surrogate import LearningCurve, system_only  # noqa: E402
from fedsim.sim.compute import ComputeModel  # noqa: E402
from fedsim.sim.failures import FailureModel, repair_sampler  # noqa: E402

CEILING_PROCESSES = 100_000


def processed(env: simpy.Environment) -> int:
    """Events the environment has taken off its queue so far (its event ids count every one scheduled)."""
    return next(env._eid) - len(env._queue)  # private, but free: no per-event hook


class _Tracked(simpy.Environment):
    """A SimPy environment that remembers the last one made (so the run's event count can be read)."""

    last: simpy.Environment | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, attr in vars(simpy.Environment).items():  # SimPy binds these early only for its own class
            if isinstance(attr, BoundClass):
                setattr(self, name, getattr(self, name))
        _Tracked.last = self


class _Mixed(_Tracked):
    """Also counts every scheduled event by its class and the function that scheduled it (slow: ``--mix`` only)."""

    mix: Counter = Counter()

    def schedule(self, event, priority=1, delay=0) -> None:  # type: ignore[override]
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(SIMPY_DIR):  # the caller outside SimPy
            frame = frame.f_back
        _Mixed.mix[(type(event).__name__, frame.f_code.co_name if frame else "?")] += 1
        super().schedule(event, priority, delay)


SIMPY_DIR = str(Path(simpy.__file__).parent)


@contextlib.contextmanager
def phases(t0: float):
    """Print the wall time since ``t0``, the RSS and its high-water mark as each step of a run begins and ends: the
    round's close and the fleet's settles (every idle client's failures since it last looked), the accounts and the
    tables built at the end."""
    from fedsim.fl import simulation
    from fedsim.fl.sync import SyncRounds
    from fedsim.sim.recorder import Recorder

    steps = [(SyncRounds, "close"), (Recorder, "settle"), (simulation, "close_all"), (Recorder, "rounds_table"),
             (Recorder, "event_counts"), (Recorder, "events_table"), (Recorder, "clients_table")]  # fmt: skip
    own = [vars(owner).get(name) for owner, name in steps]  # None: inherited (the class gets its own only while timed)

    def timed(name, f):
        def say(edge: str) -> None:
            rss, peak = memory_mib()
            print(f"# {time.perf_counter() - t0:8.1f} s  {name:<13} {edge:<5} RSS {rss / 1024:.2f} GiB, peak {peak / 1024:.2f} GiB", flush=True)

        @functools.wraps(f)
        def step(*args, **kwargs):
            say("begin")
            try:
                return f(*args, **kwargs)
            finally:
                say("end")

        return step

    for owner, name in steps:
        setattr(owner, name, timed(name, getattr(owner, name)))
    try:
        yield
    finally:
        for (owner, name), f in zip(steps, own):
            if f is None:
                delattr(owner, name)
            else:
                setattr(owner, name, f)


@contextlib.contextmanager
def bytecodes(counts: Counter):
    """Count into ``counts`` the bytecodes each Python function executes while the block runs, keyed by
    ``(file name, first line, function)``."""

    def trace(frame, event, arg):
        frame.f_trace_opcodes, frame.f_trace_lines = True, False
        code = frame.f_code
        key = (Path(code.co_filename).name, code.co_firstlineno, code.co_name)

        def opcode(frame, event, arg):
            if event == "opcode":
                counts[key] += 1
            return opcode

        return opcode

    previous = sys.gettrace()  # a coverage tool's, say: back once counted
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)


def print_bytecodes(counts: Counter, per: float, plain: Counter, events: int) -> None:
    """Bytecodes per client-round (``per`` of them), by module and the top functions, against plain SimPy's per event
    (``plain``, counted over ``events`` of them)."""
    total, by_module = sum(counts.values()), Counter()
    for (module, _, _), count in counts.items():
        by_module[module] += count
    print(f"# {total / per:,.0f} Python bytecodes per client-round; plain SimPy: {sum(plain.values()) / events:.1f} per event")
    print("# by module: " + ", ".join(f"{module} {count / per:,.0f}" for module, count in by_module.most_common(12)))
    for (module, line, name), count in counts.most_common(25):
        print(f"# {count / per:8.1f}  {module}:{line} {name}")


def simpy_ceiling(processes: int, events: int = 1_000_000) -> float:
    """Plain SimPy timeout events per second: ``processes`` processes sharing ``events`` timeouts."""
    env = simpy.Environment()
    delays = np.random.default_rng(0).exponential(1.0, 4096).tolist()
    per = max(1, events // processes)

    def proc(k: int):
        for i in range(per):
            yield env.timeout(delays[(k + i) & 4095])

    enabled = gc.isenabled()
    gc.disable()  # as simulate() runs: the same conditions for both
    try:
        for k in range(processes):
            env.process(proc(k))
        t0 = time.perf_counter()
        env.run()
        return processed(env) / (time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()


def run_once(n: int, rounds: int, network: NetworkSpec, failure: FailureModel, env_class: type = _Tracked,
             tau_s: float = float("inf"), closed_form: bool = True, timed: bool = False, fraction: float = 1.0,
             counts: Counter | None = None) -> dict:  # fmt: skip
    """One system-only run of the workload on ``network`` (checkpoints every ``tau_s``, ``fraction`` of the fleet
    selected each round); wall time and event counts (``timed``: with its :func:`phases` printed; ``counts``: its
    :func:`bytecodes` counted there)."""
    curve = LearningCurve()
    model = make_model("dnn")  # message and checkpoint sizes of the paper's DNN
    speeds = np.random.default_rng(0).lognormal(0, 0.3, n)
    import pandas  # noqa: F401  a one-time cost of the process (the tables' first import), not of the run

    recovery = "restore_checkpoint" if math.isfinite(tau_s) else "reinit_global"  # no checkpoints: the workload as before
    real_env, simpy.Environment = simpy.Environment, env_class
    try:
        t0 = time.perf_counter()
        with phases(t0) if timed else contextlib.nullcontext(), bytecodes(counts) if counts is not None else contextlib.nullcontext():
            res = simulate(
                model=model, clients=[2000] * n, speeds=speeds, strategy=FedAvg(fraction=fraction), compute=ComputeModel(0.002), network=network,
                val=None, test=None, settings=SimSettings(seed=0, failure=failure, dropout=0.1, stopping=Stopping(max_rounds=rounds),
                                                          fault=FaultTolerance(Checkpointing(tau_s=tau_s, delta_s=0.1), recovery),
                                                          closed_form=closed_form),
                **system_only(curve, SPEC),
            )
        wall = time.perf_counter() - t0
    finally:
        simpy.Environment = real_env
    events = processed(_Tracked.last)
    scheduled = next(_Tracked.last._eid)  # every event given an id, including those pushed straight onto the queue
    _Tracked.last = None  # holding the run's environment would keep its whole fleet alive until the process exits
    logged = len(res.events)
    return {"clients": n, "rounds": rounds, "events": logged, "wall_s": wall, "events_per_s": logged / wall,
            "scheduled_events": scheduled, "virtual_s": res.virtual_s,
            "final_surrogate_accuracy": float(res.rounds["surrogate_accuracy"].iloc[-1]),
            "simpy_events": events, "simpy_events_per_s": events / wall,
            "logged_events": logged, "logged_events_per_s": logged / wall}  # the names the older versions printed


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--failure-scale", type=float, default=20.0, help="Weibull λ of the client failure clocks, virtual s")
    p.add_argument("--server-mbps", type=float, default=None, help="also run with the server's links capped at this (both directions)")
    p.add_argument("--tau", type=float, default=float("inf"), help="clients checkpoint every τ virtual s (δ = 0.1 s, restore_checkpoint)")
    p.add_argument("--phase-by-phase", action="store_true", help="also run with one SimPy event per wait (closed_form=False): the ratio")
    p.add_argument("--json", action="store_true", help="print one JSON line (the unlimited run) instead of prose")
    p.add_argument("--mix", action="store_true", help="also print the SimPy events per client by kind and scheduler (slower)")
    p.add_argument("--fraction", type=float, default=1.0, help="share of the fleet selected each round (1: all, the issue's workload)")
    p.add_argument("--phases", action="store_true", help="print the time, RSS and peak RSS as each step of the run begins and ends")
    p.add_argument("--bytecodes", action="store_true", help="count the Python bytecodes of the first run (slow; the wall time then means nothing)")
    args = p.parse_args(argv)
    if not args.json:
        setup(args)
    n, rounds = (200, 2) if args.quick else (args.clients, args.rounds)
    load = os.getloadavg()
    ceiling = simpy_ceiling(min(n, CEILING_PROCESSES), 20_000 if args.quick else 1_000_000)
    failure = FailureModel(shape=1.5, scale=args.failure_scale, repair=repair_sampler("exponential", 2.0))
    runs = {"unlimited": (NetworkSpec(), True)}
    if args.server_mbps is not None:
        runs[f"server {args.server_mbps:g} Mbit/s"] = (NetworkSpec(server_down_bps=args.server_mbps * 1e6, server_up_bps=args.server_mbps * 1e6), True)
    if args.phase_by_phase:
        runs["unlimited, phase by phase"] = (NetworkSpec(), False)
    outs = {}
    for name, (network, closed_form) in runs.items():
        counts = Counter() if args.bytecodes and not outs else None
        if counts is not None:  # one-time work (numpy's ziggurat tables read, patterns compiled) is not the run's
            run_once(min(n, 200), 1, network, failure)
        out = outs[name] = run_once(n, rounds, network, failure, _Mixed if args.mix else _Tracked, args.tau, closed_form, args.phases, args.fraction,
                                    counts)  # fmt: skip
        if counts is not None:
            plain = Counter()
            with bytecodes(plain):
                simpy_ceiling(100, 20_000)
            per = n * rounds * args.fraction
            print_bytecodes(counts, per, plain, 20_000)
            out["bytecodes_per_client_round"] = sum(counts.values()) / per
        if args.mix:
            for (kind, by), count in _Mixed.mix.most_common():
                print(f"# {name}: {count / n:6.2f} SimPy events per client: {kind} scheduled by {by}")
            direct = out["scheduled_events"] - sum(_Mixed.mix.values())
            print(f"# {name}: {direct / n:6.2f} SimPy events per client: slotted events pushed straight onto the queue (fedsim.sim.events: transfers, holds, chain ends, armed failure clocks, process and clock starts, next tasks)")
            _Mixed.mix.clear()
        if not args.json:
            share = f" ({args.fraction:g} of them a round)" if args.fraction < 1 else ""
            print(f"system-only, {n} clients{share}, {rounds} rounds, Weibull(1.5, {args.failure_scale:g} s) failures + 10% dropout, {name}: "
                  f"{out['wall_s']:.2f} s wall, {out['virtual_s']:.1f} s virtual, {out['simpy_events']} SimPy events ({out['simpy_events_per_s']:,.0f}/s, "
                  f"{out['simpy_events_per_s'] / ceiling:.0%} of plain SimPy's {ceiling:,.0f}/s), "
                  f"{out['logged_events']} logged events ({out['logged_events_per_s']:,.0f}/s); final surrogate accuracy {out['final_surrogate_accuracy']:.3f}")
    if not args.json:
        base = outs["unlimited"]
        for name, other in outs.items():
            if name != "unlimited":
                print(f"{name} / unlimited: wall {other['wall_s'] / base['wall_s']:.2f}×, SimPy events {other['simpy_events'] / base['simpy_events']:.2f}×, "
                      f"SimPy events/s {other['simpy_events_per_s'] / base['simpy_events_per_s']:.2f}×")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux (read before the second ceiling's fleet)
    after = simpy_ceiling(min(n, CEILING_PROCESSES), 20_000 if args.quick else 1_000_000)
    first = outs["unlimited"]
    line = {k: first[k] for k in ("clients", "rounds", "wall_s", "events", "simpy_events", "simpy_events_per_s")} | {"fraction": args.fraction}
    line |= {"peak_rss_gib": peak, "simpy_ceiling_events_per_s": ceiling, "simpy_ceiling_after_events_per_s": after,
             "ceiling_share": first["simpy_events_per_s"] / ceiling, "wall_in_plain_simpy_events": first["wall_s"] * (ceiling + after) / 2,
             "load_average": load[0]}
    if args.json:
        print(json.dumps(line))
    else:
        print(f"peak RSS {peak:.2f} GiB; load average at start {load[0]:.1f}; plain SimPy {ceiling:,.0f}/s before the runs, {after:,.0f}/s after: "
              f"the first run's wall time is {line['wall_in_plain_simpy_events'] / 1e6:.1f} million of its events")
    return {**first, **line, "runs": outs}


if __name__ == "__main__":
    main()
