"""The shared benchmark workload (issue #9): data, models and the fedsim call.

43 synthetic features, 2,000 rows per client, 5 rounds, 1 local epoch, batch 256,
Adam 1e-3, every client every round; two models: the checkpointing paper's DNN
(~1.4M parameters, BatchNorm, dropout) and a small DAGMM-sized MLP (43-60-30-10-1, tanh).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from fedsim.data.synthetic import make_synthetic
from fedsim.models.base import AnomalyModel
from fedsim.models.dnn import AnomalyDNN
from fedsim.seeding import torch_seed
from fedsim.train.local import LocalSpec

FEATURES, ROWS, ROUNDS, BATCH, LR = 43, 2000, 5, 256, 1e-3
SPEC = LocalSpec(batch_size=BATCH, lr=LR, epochs=1)


class SmallMLP(AnomalyDNN):
    """43-60-30-10-1 with tanh (the DAGMM compression network's widths) as a BCE classifier."""

    def __init__(self, num_features: int = FEATURES, hidden: tuple[int, ...] = (60, 30, 10)) -> None:
        AnomalyModel.__init__(self)
        layers: list[nn.Module] = []
        width = num_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)


MODELS: dict[str, Callable[[], AnomalyModel]] = {"dnn": lambda: AnomalyDNN(FEATURES), "mlp": lambda: SmallMLP(FEATURES)}


def make_model(name: str, seed: int = 0) -> AnomalyModel:
    """The named model with seeded initial weights (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed, "init"))
        return MODELS[name]()


def make_clients(n: int, rows: int = ROWS, seed: int = 0) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]:
    """``n`` clients of ``rows`` synthetic rows each (resampled from one 43-feature set), plus a test set."""
    data = make_synthetic(n_samples=4000, seed=seed)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    g = np.random.default_rng(seed)
    clients = []
    for _ in range(n):
        idx = torch.from_numpy(g.integers(0, len(x), rows))
        clients.append((x[idx].contiguous(), y[idx].contiguous()))
    return clients, (torch.from_numpy(data.x_test), torch.from_numpy(data.y_test))


@contextmanager
def timer(out: dict[str, float], key: str):
    """Adds the wall seconds of the block to ``out[key]``."""
    t0 = time.perf_counter()
    yield
    out[key] = out.get(key, 0.0) + time.perf_counter() - t0


def machine() -> str:
    """One line: CPU, cores, torch threads and versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}; {torch.get_num_threads()} torch threads; python {platform.python_version()}; torch {torch.__version__}"


def memory_mib() -> tuple[float, float]:
    """This process's resident set now and its high-water mark so far, MiB (Linux's ``/proc/self/status``)."""
    with open("/proc/self/status") as f:
        status = f.read()
    return tuple(int(status.split(f"{key}:")[1].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def best_of(fn: Callable[[], float], repeats: int) -> float:
    """Smallest of ``repeats`` timings (the machine is shared; the minimum is the least disturbed)."""
    return min(fn() for _ in range(repeats))


def fedsim_run(name: str, clients, test, *, executor=None, rounds: int = ROUNDS, settings=None, speeds=None, spec: LocalSpec = SPEC, seed: int = 0):
    """One whole fedsim run (engine build, rounds, per-round evaluation) on the workload; returns the SimResult.

    ``seed`` seeds the initial weights and the run (batches, dropout); ``settings``, when given, carries its own.
    """
    from fedsim.fl.server import Stopping
    from fedsim.fl.simulation import NetworkSpec, SimSettings, simulate
    from fedsim.fl.strategies import FedAvg
    from fedsim.sim.compute import ComputeModel
    from fedsim.train.flat import FlatLayout

    model = make_model(name, seed)
    return simulate(
        model=model,
        initial=FlatLayout.of(model).flatten(model),
        clients=clients,
        speeds=np.ones(len(clients)) if speeds is None else speeds,
        strategy=FedAvg(),
        spec=spec,
        compute=ComputeModel(0.002),
        network=NetworkSpec(),
        val=test,
        test=test,
        settings=settings or SimSettings(seed=seed, stopping=Stopping(max_rounds=rounds)),
        executor=executor,
    )


def raw_fedavg(name: str, clients, test, *, rounds: int = ROUNDS, seed: int = 0) -> nn.Module:
    """The textbook torch FedAvg loop: deep-copy, train with Adam, average state dicts, evaluate.

    Same randomness contract and the same per-round evaluation passes (validation and
    test forward) as fedsim, so both do the same arithmetic.
    """
    import copy

    from fedsim.seeding import torch_generator
    from fedsim.train.local import batch_bounds

    global_model = make_model(name)
    for rnd in range(1, rounds + 1):
        states, sizes = [], []
        for cid, (x, y) in enumerate(clients):
            local = copy.deepcopy(global_model)
            local.train()
            opt = torch.optim.Adam(local.parameters(), lr=LR)
            client_seed = torch_seed(seed, "train", rnd, cid)
            bounds = batch_bounds(len(x), BATCH)
            perm = torch.randperm(len(x), generator=torch_generator(client_seed, "batches", 0))
            with torch.random.fork_rng(devices=[]):
                for step in range(len(bounds) - 1):
                    torch.manual_seed(torch_seed(client_seed, "dropout", step))
                    rows = perm[bounds[step] : bounds[step + 1]]
                    opt.zero_grad()
                    nn.functional.binary_cross_entropy_with_logits(local(x[rows]), y[rows].float()).backward()
                    opt.step()
            states.append(local.state_dict())
            sizes.append(len(x))
        average_and_evaluate(global_model, states, sizes, test)
    return global_model


def average_and_evaluate(global_model: nn.Module, states: list[dict], sizes: list[int], test) -> None:
    """The server half of a raw FedAvg round: the weighted average of the clients' state dicts
    into ``global_model``, then the validation and test forward passes fedsim's evaluator makes."""
    avg = {}
    for k, v in states[0].items():
        mix = sum(s[k].double() * n for s, n in zip(states, sizes)) / sum(sizes)
        avg[k] = mix.to(v.dtype) if v.dtype.is_floating_point else mix.round().to(v.dtype)
    global_model.load_state_dict(avg)
    global_model.eval()
    xt, yt = test
    with torch.no_grad():
        for _ in range(2):
            nn.functional.binary_cross_entropy_with_logits(global_model(xt), yt.float())
            torch.sigmoid(global_model(xt)).numpy()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(wall seconds, result) of ``fn()``."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def common_args(description: str):
    """argparse with the flags every benchmark takes."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds): a smoke run, not a measurement")
    p.add_argument("--repeats", type=int, default=1, help="repeat each timing, keep the minimum")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    return p


def setup(args) -> None:
    """Apply ``--threads`` and print the machine line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {machine()}; load average {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")
