"""Wall time under heavy failures, with and without skipping the work that failures will throw away.

The batched executor knows each client's next failure time (failure clocks draw ahead),
so with ``skip_discarded`` it trains only the steps whose results are used; without it,
every planned round of work is trained. The simulated tables must be identical.

    python benchmarks/bench_failures.py [--quick] [--repeats 2] [--clients 24] [--scale 1.2]
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from benchmarks.workload import ROUNDS, common_args, fedsim_run, make_clients, setup, timed  # noqa: E402
from fedsim.fl.batched_executor import BatchedExecutor  # noqa: E402
from fedsim.fl.executor import SequentialExecutor  # noqa: E402
from fedsim.fl.server import Stopping  # noqa: E402
from fedsim.fl.simulation import SimSettings  # noqa: E402
from fedsim.sim.failures import FailureModel, repair_sampler  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--clients", type=int, default=24)
    p.add_argument("--model", default="mlp")
    p.add_argument("--scale", type=float, default=6.0, help="Weibull scale λ in virtual s (a round's compute is 4 s)")
    args = p.parse_args(argv)
    setup(args)
    n, rows, rounds = (4, 200, 2) if args.quick else (args.clients, 2000, ROUNDS)
    clients, test = make_clients(n, rows)
    failure = FailureModel(shape=1.0, scale=args.scale * rows / 2000, repair=repair_sampler("exponential", 0.5))
    settings = SimSettings(seed=1, failure=failure, stopping=Stopping(max_rounds=rounds))
    run = lambda ex: fedsim_run(args.model, clients, test, rounds=rounds, settings=settings, executor=ex)  # noqa: E731
    made = {}

    def track(key, **kw):
        def build(*a):
            made[key] = BatchedExecutor(*a, **kw)
            return made[key]

        return build

    fedsim_run(args.model, clients[:2], test, rounds=1, executor=BatchedExecutor)  # warm-up
    t_skip, r_skip = timed(lambda: run(track("skip", skip_discarded=True)))
    t_all, r_all = timed(lambda: run(track("all", skip_discarded=False)))
    t_skip = min([t_skip] + [timed(lambda: run(partial(BatchedExecutor, skip_discarded=True)))[0] for _ in range(args.repeats - 1)])
    t_all = min([t_all] + [timed(lambda: run(partial(BatchedExecutor, skip_discarded=False)))[0] for _ in range(args.repeats - 1)])
    t_seq, r_seq = timed(lambda: run(SequentialExecutor))
    pd.testing.assert_frame_equal(r_skip.events, r_all.events)
    pd.testing.assert_frame_equal(r_skip.events, r_seq.events)
    assert float((r_skip.final - r_seq.final).abs().max()) <= 1e-5
    acc = r_skip.accounting
    lost = float(acc["lost_s"].sum()) if "lost_s" in acc else float("nan")
    work = float(acc["useful_s"].sum() + acc["lost_s"].sum())
    computed = {k: ex.stats for k, ex in made.items()}
    out = {"n": n, "lost_share": lost / work if work == work and work else float("nan"), "skip_s": t_skip, "noskip_s": t_all, "sequential_s": t_seq, "ratio": t_skip / t_all}
    print(f"clients {n}, failures {int((r_skip.events.kind == 'failure').sum())}, work_lost events {int((r_skip.events.kind == 'work_lost').sum())}, lost share of compute time {out['lost_share']:.0%}")
    print(f"planned jobs: skip {computed['skip']}, no-skip {computed['all']}")
    print(f"batched+skip {t_skip:.2f} s   batched no-skip {t_all:.2f} s   ratio {out['ratio']:.2f}   (sequential, lazy by construction: {t_seq:.2f} s)   tables identical: yes")
    return out


if __name__ == "__main__":
    main()
