"""fedsim vs Flower's simulation engine (Message API, Ray backend) on the same workload.

Each configuration runs in its own fresh process, so "whole process" includes
interpreter start, imports, data, engine start-up (Ray for Flower) and teardown;
"rounds" is the time from the first round's start to the last round's end as each
framework's own loop sees it. Flower runs with ``client_resources`` num_cpus 1 and 2;
the better is counted. Needs the optional extra: ``pip install -e ".[bench]"``.

    python benchmarks/bench_flower.py [--quick] [--models mlp,dnn] [--clients 6,24]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workload import common_args, setup  # noqa: E402

FLOWER = r'''
import json, sys, time, os
T0 = time.perf_counter()
sys.path.insert(0, {root!r})
import torch
if {threads}: torch.set_num_threads({threads})
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
from benchmarks.workload import BATCH, LR, make_clients, make_model
from fedsim.seeding import torch_generator, torch_seed
from fedsim.train.local import batch_bounds

NAME, N, ROWS, ROUNDS = {name!r}, {n}, {rows}, {rounds}
_DATA = {{}}

def data():
    if "c" not in _DATA:
        _DATA["c"] = make_clients(N, ROWS)
    return _DATA["c"]

client = ClientApp()

@client.train()
def train(msg: Message, context: Context):
    cid = int(context.node_config["partition-id"])
    rnd = int(msg.content["config"]["server-round"])
    x, y = data()[0][cid]
    model = make_model(NAME)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    seed = torch_seed(0, "train", rnd, cid)
    bounds = batch_bounds(len(x), BATCH)
    perm = torch.randperm(len(x), generator=torch_generator(seed, "batches", 0))
    with torch.random.fork_rng(devices=[]):
        for step in range(len(bounds) - 1):
            torch.manual_seed(torch_seed(seed, "dropout", step))
            rows = perm[bounds[step]:bounds[step + 1]]
            opt.zero_grad()
            loss = model.loss(x[rows], y[rows])
            loss.backward()
            opt.step()
    content = RecordDict({{"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord({{"train_loss": float(loss), "num-examples": len(x)}})}})
    return Message(content=content, reply_to=msg)

server = ServerApp()
TIMES = {{}}

@server.main()
def main(grid: Grid, context: Context):
    model = make_model(NAME)
    test = data()[1]
    def central(rnd, arrays):
        model.load_state_dict(arrays.to_torch_state_dict()); model.eval()
        with torch.no_grad():
            for _ in range(2):  # validation and test passes, as fedsim's evaluator
                loss = model.loss(*test); torch.sigmoid(model(test[0])).numpy()
        return MetricRecord({{"loss": float(loss)}})
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=N, min_available_nodes=N)
    t = time.perf_counter()
    strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=ROUNDS, evaluate_fn=central)
    TIMES["rounds"] = time.perf_counter() - t

run_simulation(server_app=server, client_app=client, num_supernodes=N,
               backend_config={{"client_resources": {{"num_cpus": {cpus}, "num_gpus": 0.0}}, "init_args": {{"logging_level": 40, "log_to_driver": False}}}})
print("RESULT " + json.dumps({{"rounds_s": TIMES.get("rounds"), "inner_s": time.perf_counter() - T0}}))
'''

FEDSIM = r'''
import json, sys, time
T0 = time.perf_counter()
sys.path.insert(0, {root!r})
import torch
if {threads}: torch.set_num_threads({threads})
from benchmarks.workload import fedsim_run, make_clients
from fedsim.fl.batched_executor import choose_executor
clients, test = make_clients({n}, {rows})
chosen = {{}}
def auto(*a):
    ex, chosen["why"] = choose_executor(*a, device="cpu")
    return ex
t = time.perf_counter()
res = fedsim_run({name!r}, clients, test, rounds={rounds}, executor=auto)
print("RESULT " + json.dumps({{"rounds_s": time.perf_counter() - t, "inner_s": time.perf_counter() - T0, "choice": chosen["why"]}}))
'''


def _run(code: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return {**json.loads(lines[-1][7:]), "process_s": wall}


def main(argv: list[str] | None = None) -> list[dict]:
    p = common_args(__doc__)
    p.add_argument("--models", default="mlp,dnn")
    p.add_argument("--clients", default="6,24")
    p.add_argument("--cpus", default="1,2", help="Flower client_resources num_cpus values to try")
    args = p.parse_args(argv)
    setup(args)
    rows, rounds = (200, 1) if args.quick else (2000, 5)
    out = []
    print(f"{'model':5} {'N':>3} | {'fedsim rounds':>13} {'process':>8} | {'Flower rounds':>13} {'process':>8} (cpus) | {'rounds ×':>8} {'process ×':>9}")
    for name in args.models.split(","):
        for n in [2] if args.quick else map(int, args.clients.split(",")):
            kw = dict(root=str(ROOT), threads=args.threads, name=name, n=n, rows=rows, rounds=rounds)
            fs = min((_run(FEDSIM.format(**kw), 3600) for _ in range(args.repeats)), key=lambda r: r["process_s"])
            fl = []
            for cpus in map(float, args.cpus.split(",")):
                try:
                    fl.append({**min((_run(FLOWER.format(cpus=cpus, **kw), 3600) for _ in range(args.repeats)), key=lambda r: r["process_s"]), "cpus": cpus})
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"  Flower num_cpus={cpus} failed: {exc}", flush=True)
            if not fl:
                continue
            best = min(fl, key=lambda r: r["rounds_s"])
            row = {"model": name, "n": n, "fedsim": fs, "flower": fl, "rounds_ratio": best["rounds_s"] / fs["rounds_s"], "process_ratio": min(r["process_s"] for r in fl) / fs["process_s"]}
            out.append(row)
            print(f"{name:5} {n:>3} | {fs['rounds_s']:13.2f} {fs['process_s']:8.2f} | {best['rounds_s']:13.2f} {min(r['process_s'] for r in fl):8.2f} ({best['cpus']:g}) | "
                  f"{row['rounds_ratio']:7.2f}x {row['process_ratio']:8.2f}x   [{fs['choice']}; all Flower: {[(r['cpus'], round(r['rounds_s'], 2), round(r['process_s'], 2)) for r in fl]}]", flush=True)
    return out


if __name__ == "__main__":
    main()
