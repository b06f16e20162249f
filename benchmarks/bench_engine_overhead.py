"""What the engine costs next to training (issue #14), both ratios measured in this one process.

1. Batched small MLP (43-60-30-10-1, tanh), N clients (default 96), 5 rounds, 2,000 rows and
   batch 256 per client: the share of ``simulate()`` wall time outside training and
   evaluation, ``1 − (wall_train_s + wall_eval_s) / wall`` (target ≤ 15 %).
2. Sequential small MLP, N clients (default 24): fedsim's sequential executor against the
   raw torch FedAvg loop a user would write, which seeds torch once and draws every batch
   order from the global generator (target: fedsim within 10 %).

Each timing is the minimum of ``--repeats`` runs after a warm-up; the two loops alternate.

    python benchmarks/bench_engine_overhead.py [--quick] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.workload import BATCH, LR, ROUNDS, average_and_evaluate, common_args, fedsim_run, make_clients, make_model, setup, timed  # noqa: E402
from fedsim.fl.batched_executor import BatchedExecutor  # noqa: E402
from fedsim.fl.executor import SequentialExecutor  # noqa: E402


def raw_seeded_once(clients, test, *, rounds: int = ROUNDS, seed: int = 0) -> nn.Module:
    """The textbook torch FedAvg loop, seeded once: deep-copy, train with Adam, average state dicts, evaluate."""
    torch.manual_seed(seed)
    global_model = make_model("mlp")
    for _ in range(rounds):
        states, sizes = [], []
        for x, y in clients:
            local = copy.deepcopy(global_model)
            local.train()
            opt = torch.optim.Adam(local.parameters(), lr=LR)
            perm = torch.randperm(len(x))
            for lo in range(0, len(x) - 1, BATCH):
                rows = perm[lo : lo + BATCH]
                opt.zero_grad()
                nn.functional.binary_cross_entropy_with_logits(local(x[rows]), y[rows].float()).backward()
                opt.step()
            states.append(local.state_dict())
            sizes.append(len(x))
        average_and_evaluate(global_model, states, sizes, test)
    return global_model


def engine_share(n: int, rows: int, rounds: int, repeats: int) -> dict:
    """Batched MLP: the smallest simulate() wall of ``repeats`` and its split."""
    clients, test = make_clients(n, rows)
    fedsim_run("mlp", clients[:2], test, rounds=1, executor=BatchedExecutor)  # warm-up
    best = None
    for _ in range(repeats):
        wall, res = timed(lambda: fedsim_run("mlp", clients, test, rounds=rounds, executor=BatchedExecutor))
        if best is None or wall < best["wall_s"]:
            best = {"wall_s": wall, "train_s": res.wall_train_s, "eval_s": res.wall_eval_s}
    best["engine_share"] = 1 - (best["train_s"] + best["eval_s"]) / best["wall_s"]
    return best


def sequential_vs_raw(n: int, rows: int, rounds: int, repeats: int) -> dict:
    """Sequential MLP: fedsim and the seeded-once raw loop, alternating; the smallest of each."""
    clients, test = make_clients(n, rows)
    raw_seeded_once(clients[:1], test, rounds=1)
    fedsim_run("mlp", clients[:1], test, rounds=1, executor=SequentialExecutor)
    raw, sim = [], []
    for _ in range(repeats):
        raw.append(timed(lambda: raw_seeded_once(clients, test, rounds=rounds))[0])
        sim.append(timed(lambda: fedsim_run("mlp", clients, test, rounds=rounds, executor=SequentialExecutor))[0])
    return {"raw_s": min(raw), "fedsim_s": min(sim), "overhead": min(sim) / min(raw) - 1}


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--batched-clients", type=int, default=96)
    p.add_argument("--sequential-clients", type=int, default=24)
    args = p.parse_args(argv)
    setup(args)
    rows, rounds = (200, 1) if args.quick else (2000, ROUNDS)
    repeats = 1 if args.quick else max(args.repeats, 1)
    a = engine_share(4 if args.quick else args.batched_clients, rows, rounds, repeats)
    print(f"batched MLP, N={args.batched_clients}: simulate {a['wall_s']:.3f} s = train {a['train_s']:.3f} s + eval {a['eval_s']:.3f} s "
          f"+ engine {a['wall_s'] - a['train_s'] - a['eval_s']:.3f} s; engine share {a['engine_share']:.1%} (target ≤ 15 %)")
    b = sequential_vs_raw(2 if args.quick else args.sequential_clients, rows, rounds, repeats)
    print(f"sequential MLP, N={args.sequential_clients}: raw loop seeded once {b['raw_s']:.3f} s, fedsim {b['fedsim_s']:.3f} s: "
          f"{b['overhead']:+.1%} (target ≤ +10 %)")
    return {"batched": a, "sequential": b}


if __name__ == "__main__":
    main()
