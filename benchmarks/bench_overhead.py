"""Simulation overhead: fedsim's sequential engine vs the raw torch FedAvg loop, same workload, same process.

    python benchmarks/bench_overhead.py [--quick] [--repeats 3] [--models mlp,dnn] [--clients 6,24]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workload import ROUNDS, best_of, common_args, fedsim_run, make_clients, raw_fedavg, setup, timed  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    p = common_args(__doc__)
    p.add_argument("--models", default="mlp,dnn")
    p.add_argument("--clients", default="6,24")
    args = p.parse_args(argv)
    setup(args)
    rows = 200 if args.quick else 2000
    rounds = 1 if args.quick else ROUNDS
    out = []
    print(f"{'model':5} {'N':>4} {'raw s':>8} {'fedsim s':>9} {'overhead':>9}")
    for name in args.models.split(","):
        for n in [2] if args.quick else map(int, args.clients.split(",")):
            clients, test = make_clients(n, rows)
            raw_fedavg(name, clients[:1], test, rounds=1)  # warm-up: first torch calls allocate
            raw = best_of(lambda: timed(lambda: raw_fedavg(name, clients, test, rounds=rounds))[0], args.repeats)
            sim = best_of(lambda: timed(lambda: fedsim_run(name, clients, test, rounds=rounds))[0], args.repeats)
            row = {"model": name, "n": n, "raw_s": raw, "fedsim_s": sim, "overhead": sim / raw - 1}
            out.append(row)
            print(f"{name:5} {n:>4} {raw:8.2f} {sim:9.2f} {100 * row['overhead']:8.1f}%", flush=True)
    return out


if __name__ == "__main__":
    main()
