"""Peak memory of a batched run with N = 1,000 clients (small MLP, one stacked group per max_group clients).

Runs the measured configuration in a fresh subprocess and reads its peak resident set
size (``ru_maxrss``), so nothing else this process allocated is counted.

    python benchmarks/bench_memory.py [--quick] [--clients 1000] [--rounds 2]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workload import common_args, setup  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads} or torch.get_num_threads())
from functools import partial
from benchmarks.workload import fedsim_run, make_clients
from fedsim.fl.batched_executor import BatchedExecutor
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
clients, test = make_clients({n}, {rows})
data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
fedsim_run("mlp", clients, test, rounds={rounds}, executor=partial(BatchedExecutor, max_group={group}))
print(json.dumps({{"imports_kib": base, "data_kib": data, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "run_s": time.perf_counter() - t0}}))
"""


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--group", type=int, default=256, help="BatchedExecutor.max_group")
    args = p.parse_args(argv)
    setup(args)
    n, rows, rounds = (50, 200, 1) if args.quick else (args.clients, 2000, args.rounds)
    code = CHILD.format(root=str(ROOT), threads=args.threads, n=n, rows=rows, rounds=rounds, group=args.group)
    res = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    gib = res["peak_kib"] / 2**20
    print(f"N={n} clients × {rows} rows, {rounds} rounds, batched (max_group {args.group}): peak RSS {gib:.2f} GiB "
          f"(after imports {res['imports_kib'] / 2**20:.2f} GiB, with data {res['data_kib'] / 2**20:.2f} GiB); run {res['run_s']:.1f} s; target ≤ 4 GiB: {'met' if gib <= 4 else 'MISSED'}")
    return {"n": n, "peak_gib": gib, **res}


if __name__ == "__main__":
    main()
