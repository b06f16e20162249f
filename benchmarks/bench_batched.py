"""Batched vs sequential fedsim (whole run: engine, rounds, evaluation), and what the automatic choice picks.

    python benchmarks/bench_batched.py [--quick] [--repeats 2] [--models mlp,dnn] [--clients 6,24,96]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.workload import ROUNDS, SPEC, best_of, common_args, fedsim_run, make_clients, make_model, setup, timed  # noqa: E402
from fedsim.fl.batched_executor import BatchedExecutor, choose_executor  # noqa: E402
from fedsim.fl.executor import SequentialExecutor  # noqa: E402
from fedsim.train.flat import FlatLayout  # noqa: E402


def auto(model, layout, data, spec):
    """The executor choose_executor picks for this model on the CPU."""
    return choose_executor(model, layout, data, spec, device="cpu")[0]


def main(argv: list[str] | None = None) -> list[dict]:
    p = common_args(__doc__)
    p.add_argument("--models", default="mlp,dnn")
    p.add_argument("--clients", default="6,24,96")
    args = p.parse_args(argv)
    setup(args)
    rows = 200 if args.quick else 2000
    rounds = 1 if args.quick else ROUNDS
    out = []
    print(f"{'model':5} {'N':>4} {'sequential s':>13} {'batched s':>10} {'speed-up':>9} {'auto s':>8}  auto choice")
    for name in args.models.split(","):
        model = make_model(name)
        _, why = choose_executor(model, FlatLayout.of(model), [], SPEC, device="cpu")
        for n in [4] if args.quick else map(int, args.clients.split(",")):
            clients, test = make_clients(n, rows)
            fedsim_run(name, clients[:2], test, rounds=1, executor=BatchedExecutor)  # warm-up
            seq = best_of(lambda: timed(lambda: fedsim_run(name, clients, test, rounds=rounds, executor=SequentialExecutor))[0], args.repeats)
            t_b, res_b = timed(lambda: fedsim_run(name, clients, test, rounds=rounds, executor=BatchedExecutor))
            bat = min([t_b] + [timed(lambda: fedsim_run(name, clients, test, rounds=rounds, executor=BatchedExecutor))[0] for _ in range(args.repeats - 1)])
            au = seq if why.startswith("sequential") else bat  # auto runs exactly one of the two
            res_s = fedsim_run(name, clients, test, rounds=1, executor=SequentialExecutor) if args.quick else None
            if res_s is not None:
                assert float((res_s.final - fedsim_run(name, clients, test, rounds=1, executor=BatchedExecutor).final).abs().max()) <= 1e-5
            row = {"model": name, "n": n, "sequential_s": seq, "batched_s": bat, "speedup": seq / bat, "auto_s": au, "choice": why}
            out.append(row)
            print(f"{name:5} {n:>4} {seq:13.2f} {bat:10.2f} {seq / bat:8.2f}x {au:8.2f}  {why}", flush=True)
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
