"""The built-in multi-class problems through fedsim against a raw torch FedAvg loop, one after the other in one process.

Two workloads: FedProx's Synthetic(1,1) (30 power-law devices, one client each,
multinomial logistic regression) and scikit-learn's 8×8 digits as images (an iid split,
FedAvg's small CNN). Both train with SGD, one local epoch, every client every round, and
are scored every round on the validation and test rows (loss, accuracy, macro-F1,
per-class recall: what fedsim's classification task reports). The raw loop is the
textbook one (deep-copy the global model, train each client with the same batches,
average the state dicts, evaluate), so both do the same arithmetic. fedsim runs its
sequential path, then the vmap path (``compute.batched=true``).

    python benchmarks/bench_tasks.py [--quick] [--repeats 3] [--clients 24,48] [--threads 1]
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.workload import best_of, common_args, setup, timed  # noqa: E402
from fedsim.data import partition  # noqa: E402
from fedsim.data.digits import load_digits  # noqa: E402
from fedsim.data.fedprox_synthetic import load_fedprox_synthetic  # noqa: E402
from fedsim.fl.batched_executor import BatchedExecutor  # noqa: E402
from fedsim.fl.executor import SequentialExecutor  # noqa: E402
from fedsim.fl.monitor import Stopping  # noqa: E402
from fedsim.fl.simulation import NetworkSpec, SimSettings, simulate  # noqa: E402
from fedsim.fl.strategies import FedAvg  # noqa: E402
from fedsim.models.cnn import CNN  # noqa: E402
from fedsim.models.logreg import LogisticRegression  # noqa: E402
from fedsim.seeding import rng, torch_generator, torch_seed  # noqa: E402
from fedsim.sim.compute import ComputeModel  # noqa: E402
from fedsim.tasks import Classification  # noqa: E402
from fedsim.train.flat import FlatLayout  # noqa: E402
from fedsim.train.functional import FunctionalStack  # noqa: E402
from fedsim.train.local import LocalSpec, batch_bounds  # noqa: E402

Shard = tuple[torch.Tensor, torch.Tensor]


def _tensors(x: np.ndarray, y: np.ndarray) -> Shard:
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def synthetic(n_clients: int) -> tuple[Callable[[], nn.Module], list[Shard], Shard, LocalSpec]:
    """Synthetic(1,1): one client per device (the devices' power-law sizes), logistic regression, batch 10."""
    data = load_fedprox_synthetic(alpha=1.0, beta=1.0, num_devices=n_clients, seed=0)
    clients = [_tensors(data.x_train[data.groups_train == d], data.y_train[data.groups_train == d]) for d in range(n_clients)]
    spec = LocalSpec(batch_size=10, lr=0.01, optimizer="sgd", task=Classification(num_classes=10))
    return lambda: LogisticRegression(60, 10), clients, _tensors(data.x_test, data.y_test), spec


def digits(n_clients: int) -> tuple[Callable[[], nn.Module], list[Shard], Shard, LocalSpec]:
    """8×8 digits, an iid split of the training images, FedAvg's CNN, batch 10."""
    data = load_digits(seed=0)
    shards = partition.iid(len(data.y_train), n_clients, rng(0, "partition"))
    clients = [_tensors(data.x_train[s], data.y_train[s]) for s in shards]
    spec = LocalSpec(batch_size=10, lr=0.05, optimizer="sgd", task=Classification(num_classes=10))
    return lambda: CNN((1, 8, 8), 10), clients, _tensors(data.x_test, data.y_test), spec


def seeded(make: Callable[[], nn.Module]) -> nn.Module:
    """``make()`` with the initial weights every run of the benchmark shares."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(0, "init"))
        return make()


def fedsim_run(make, clients, test, spec: LocalSpec, executor, rounds: int) -> None:
    """A whole fedsim run: engine build, ``rounds`` rounds, per-round validation and test scoring."""
    model = seeded(make)
    simulate(
        model=model, initial=FlatLayout.of(model).flatten(model), clients=clients, speeds=np.ones(len(clients)), strategy=FedAvg(), spec=spec,
        compute=ComputeModel(0.002), network=NetworkSpec(), val=test, test=test, settings=SimSettings(seed=0, stopping=Stopping(max_rounds=rounds)),
        executor=executor,
    )  # fmt: skip


def raw_fedavg(make, clients, test, spec: LocalSpec, rounds: int) -> None:
    """The textbook loop with fedsim's randomness contract and the same per-round scoring."""
    from sklearn.metrics import f1_score, recall_score

    task = spec.task
    global_model = seeded(make)
    for rnd in range(1, rounds + 1):
        states, sizes = [], []
        for cid, (x, y) in enumerate(clients):
            local = copy.deepcopy(global_model)
            local.train()
            opt = torch.optim.SGD(local.parameters(), lr=spec.lr)
            bounds = batch_bounds(len(x), spec.batch_size)
            perm = torch.randperm(len(x), generator=torch_generator(torch_seed(0, "train", rnd, cid), "batches", 0))
            for step in range(len(bounds) - 1):
                rows = perm[bounds[step] : bounds[step + 1]]
                opt.zero_grad()
                task.criterion(local(x[rows]), y[rows]).backward()
                opt.step()
            states.append(local.state_dict())
            sizes.append(len(x))
        global_model.load_state_dict({k: (sum(s[k].double() * n for s, n in zip(states, sizes)) / sum(sizes)).to(v.dtype) for k, v in states[0].items()})
        global_model.eval()
        xt, yt = test
        with torch.no_grad():
            for _ in range(2):  # fedsim scores the validation rows, then the test rows (the same rows here)
                logits = global_model(xt)
                nn.functional.cross_entropy(logits, yt)
                pred = logits.argmax(1).numpy()
                f1_score(yt.numpy(), pred, labels=list(range(10)), average="macro", zero_division=0)
                recall_score(yt.numpy(), pred, labels=list(range(10)), average=None, zero_division=0)


def main(argv: list[str] | None = None) -> list[dict]:
    p = common_args(__doc__)
    p.add_argument("--clients", default="24,48", help="clients of the digits task (Synthetic has its 30 devices)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    setup(args)
    rounds = 1 if args.quick else args.rounds
    workloads = [("synthetic(1,1)", 30, synthetic)] + [("digits cnn", int(n), digits) for n in ([6] if args.quick else args.clients.split(","))]
    out = []
    print(f"{'workload':15} {'N':>3} {'raw s':>7} {'seq s':>7} {'seq/raw':>8} {'vmap s':>7} {'vmap/raw':>9}")
    for name, n, build in workloads:
        make, clients, test, spec = build(n)
        raw_fedavg(make, clients[:1], test, spec, 1)  # warm-up: first torch and sklearn calls
        fedsim_run(make, clients[:2], test, spec, lambda *a: BatchedExecutor(*a, net=FunctionalStack(*a[:2], a[3])), 1)
        raw = best_of(lambda: timed(lambda: raw_fedavg(make, clients, test, spec, rounds))[0], args.repeats)
        seq = best_of(lambda: timed(lambda: fedsim_run(make, clients, test, spec, SequentialExecutor, rounds))[0], args.repeats)
        vmap = best_of(lambda: timed(lambda: fedsim_run(make, clients, test, spec, lambda *a: BatchedExecutor(*a, net=FunctionalStack(*a[:2], a[3])), rounds))[0], args.repeats)
        row = {"workload": name, "clients": n, "raw_s": raw, "sequential_s": seq, "vmap_s": vmap, "sequential_over_raw": seq / raw - 1, "vmap_speedup": raw / vmap}
        out.append(row)
        print(f"{name:15} {n:>3} {raw:7.2f} {seq:7.2f} {100 * row['sequential_over_raw']:+7.1f}% {vmap:7.2f} {raw / vmap:8.2f}×", flush=True)
    return out


if __name__ == "__main__":
    main()
