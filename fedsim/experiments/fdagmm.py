"""Reproduce FDAGMM's Tables 4-5 (Chen et al.): DAGMM C0, FDAGMM and the Ideal bound on KDD Cup 99.

For every scenario (client 0 holds 1/2/5/10 % of the common attacks) and seed:

* **DAGMM C0** trains on client 0's training rows alone;
* **FDAGMM** trains in the simulator, FedAvg over both clients every round
  (weights n_k/n, all parameters and buffers), then the clients agree on the
  mixture: each estimates (φ, μ, Σ) on its own rows and the server pools them
  exactly (:func:`fedsim.models.dagmm.pool_gmm`);
* **Ideal** trains on both clients' rows pooled;
* **DAGMM C1** (optional) trains on client 1 alone and is tested on client 1.

Every model is tested on client 0's test set (C1 on its own) with the DAGMM
threshold: the energy percentile that flags the anomaly share of the client's
train + test rows. Run ``python -m fedsim.experiments.fdagmm scenarios/fdagmm/kdd.yaml``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from fedsim.data.dataset import Dataset
from fedsim.data.fdagmm_scenarios import COMMON_SHARE, build_clients, scenario_rows
from fedsim.data.kddcup99 import read_kddcup99
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import NetworkSpec, SimSettings, simulate
from fedsim.fl.strategies import FedAvg
from fedsim.models.dagmm import DAGMM, pool_gmm
from fedsim.seeding import rng, torch_seed
from fedsim.sim.compute import ComputeModel
from fedsim.tasks import BinaryAnomalyDetection
from fedsim.tasks.scores import classification_metrics
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState, local_train, steps_per_epoch

METHODS = ("dagmm_c0", "fdagmm", "ideal", "dagmm_c1")
PAPER = {  # Tables 4 (precision) and 5 (recall): mean, std per scenario
    "precision": {
        "dagmm_c0": [(0.397, 0.1304), (0.4793, 0.1712), (0.6069, 0.0872), (0.6735, 0.0883)],
        "fdagmm": [(0.4532, 0.0317), (0.5116, 0.0289), (0.6553, 0.0403), (0.7447, 0.0369)],
        "ideal": [(0.5366, 0.0215), (0.6266, 0.0444), (0.7261, 0.0612), (0.7583, 0.0302)],
        "dagmm_c1": [(0.9881, 0.0024), (0.9787, 0.0073), (0.9832, 0.0129), (0.9813, 0.0018)],
    },
    "recall": {
        "dagmm_c0": [(0.9263, 0.1434), (0.8166, 0.127), (0.8777, 0.0698), (0.9237, 0.038)],
        "fdagmm": [(0.9769, 0.0459), (0.9927, 0.0121), (0.9825, 0.0284), (0.9803, 0.0264)],
        "ideal": [(0.9222, 0.0422), (0.9409, 0.0488), (0.9341, 0.0482), (0.976, 0.0334)],
        "dagmm_c1": [(0.9952, 0.0097), (0.9978, 0.0044), (0.9984, 0.0016), (0.9987, 0.0019)],
    },
}


@dataclass
class FdagmmStudy:
    """Settings of the reproduction; the paper's DAGMM defaults except the training lengths."""

    path: str | None = None
    """KDD Cup 99 file; None = the shared 10% file."""
    scenarios: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    methods: list[str] = field(default_factory=lambda: ["dagmm_c0", "fdagmm", "ideal"])
    scaling: str = "minmax"
    """Numeric scaling fit on both clients' training rows: minmax | standard."""
    batch_size: int = 1024
    lr: float = 1e-4
    alone_epochs: int = 200
    """Epochs of DAGMM C0 on its own rows (the DAGMM default)."""
    ideal_epochs: int = 20
    """Epochs of the Ideal model (and DAGMM C1) over the pooled rows."""
    rounds: int = 20
    """FDAGMM communication rounds."""
    round_epochs: int = 1
    """Local epochs per FDAGMM round."""
    anomaly_ratio: float | None = None
    """Share flagged by the energy threshold; None = the client's share of normal rows."""
    workers: int = 2
    """Worker processes (one torch thread each)."""
    out_dir: str = "results/fdagmm"
    cache_dir: str | None = None


def client_data(study: FdagmmStudy, scenario: int, seed: int) -> tuple[Dataset, Dataset]:
    """Client 0 and client 1 of one scenario and seed."""
    table = read_kddcup99(study.path, cache_dir=study.cache_dir)
    rows = scenario_rows(table.category, COMMON_SHARE[scenario], rng(seed, "fdagmm-scenario", scenario))
    c0, c1 = build_clients(table, rows, scaling=study.scaling)  # type: ignore[arg-type]
    return c0, c1


def _tensors(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)


def train_alone(model: DAGMM, x: torch.Tensor, *, epochs: int, study: FdagmmStudy, seed: int) -> DAGMM:
    """Centralised DAGMM training with the engine's pure local-training function."""
    layout = FlatLayout.of(model)
    spec = LocalSpec(batch_size=study.batch_size, lr=study.lr, epochs=epochs)
    stop = epochs * steps_per_epoch(len(x), study.batch_size)
    result = local_train(
        model, layout, TrainState(layout.flatten(model)), x, torch.zeros(len(x)), spec=spec, seed=seed, stop_step=stop
    )
    layout.load(model, result.state.flat)
    model.fit_gmm(x)
    return model


def train_federated(model: DAGMM, clients: Sequence[Dataset], *, study: FdagmmStudy, seed: int) -> DAGMM:
    """FDAGMM in the simulator, then the federated mixture estimate (pooled per-client GMMs)."""
    layout = FlatLayout.of(model)
    c0 = clients[0]
    x_all0 = torch.from_numpy(np.concatenate([c0.x_train, c0.x_test]))
    ratio = study.anomaly_ratio or float(c0.y_test.sum() / len(x_all0))
    result = simulate(
        model=model,
        initial=layout.flatten(model),
        clients=[_tensors(c) for c in clients],
        speeds=np.ones(len(clients)),
        strategy=FedAvg(),
        spec=LocalSpec(batch_size=study.batch_size, lr=study.lr, epochs=study.round_epochs, task=BinaryAnomalyDetection(anomaly_ratio=ratio)),
        compute=ComputeModel(1e-5),
        network=NetworkSpec(),
        val=(x_all0, torch.zeros(len(x_all0))),
        test=(torch.from_numpy(c0.x_test), torch.from_numpy(c0.y_test)),
        settings=SimSettings(seed=seed, stopping=Stopping(max_rounds=study.rounds)),
    )
    layout.load(model, result.final)
    estimates = [model.estimate_gmm(_tensors(c)[0]) for c in clients]
    sizes = torch.tensor([float(len(c.x_train)) for c in clients], dtype=torch.float64)
    model.set_gmm(*pool_gmm(sizes / sizes.sum(), *(torch.stack([e[i] for e in estimates]) for i in range(3))))
    return model


def evaluate_on(model: DAGMM, client: Dataset, anomaly_ratio: float | None) -> dict[str, float]:
    """Precision/recall/F1 on the client's test rows, threshold from its train + test energies."""
    model.eval()
    train_scores = model.scores(torch.from_numpy(client.x_train))
    test_scores = model.scores(torch.from_numpy(client.x_test))
    everything = torch.cat([train_scores, test_scores])
    ratio = anomaly_ratio or float(client.y_test.sum() / len(everything))
    threshold = model.threshold(everything, ratio)
    return classification_metrics(client.y_test, test_scores.numpy() > threshold)


def run_cell(study: FdagmmStudy, scenario: int, method: str, seed: int) -> dict[str, object]:
    """Train and test one (scenario, method, seed); returns one tidy record."""
    started = time.perf_counter()
    c0, c1 = client_data(study, scenario, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed, "dagmm-init"))
        model = DAGMM(c0.num_features)
    tested = c0
    if method == "dagmm_c0":
        train_alone(model, _tensors(c0)[0], epochs=study.alone_epochs, study=study, seed=seed)
    elif method == "ideal":
        pooled = torch.from_numpy(np.concatenate([c0.x_train, c1.x_train]))
        train_alone(model, pooled, epochs=study.ideal_epochs, study=study, seed=seed)
    elif method == "dagmm_c1":
        train_alone(model, _tensors(c1)[0], epochs=study.ideal_epochs, study=study, seed=seed)
        tested = c1
    elif method == "fdagmm":
        train_federated(model, (c0, c1), study=study, seed=seed)
    else:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    metrics = evaluate_on(model, tested, study.anomaly_ratio)
    return {"scenario": scenario, "method": method, "seed": seed, **metrics, "wall_s": time.perf_counter() - started}


def run_study(study: FdagmmStudy) -> pd.DataFrame:
    """Every cell of the study, in parallel worker processes."""
    read_kddcup99(study.path, cache_dir=study.cache_dir)  # parse once, before the workers share the cache
    cells = [(study, s, m, seed) for s in study.scenarios for m in study.methods for seed in study.seeds]
    records = []
    # One torch thread per worker: tiny models only lose to thread spin-waits on shared cores.
    with ProcessPoolExecutor(max(1, study.workers), initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for record in pool.map(run_cell, *zip(*cells)):
            records.append(record)
            print(
                f"[{len(records)}/{len(cells)}] scenario {record['scenario']} {record['method']} seed {record['seed']}: "
                f"P={record['precision']:.3f} R={record['recall']:.3f} ({record['wall_s']:.0f} s)",
                flush=True,
            )
    return pd.DataFrame.from_records(records)


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.4f}({std:.4f})"


def summary(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per scenario: measured mean(std) over seeds beside the paper's value per method."""
    grouped = records.groupby(["scenario", "method"])[metric].agg(["mean", "std"])
    rows = []
    for scenario in sorted(records["scenario"].unique()):
        row: dict[str, object] = {"scenario": int(scenario)}
        for method in [m for m in METHODS if m in set(records["method"])]:
            mean, std = grouped.loc[(scenario, method)]
            row[f"{method} fedsim"] = _fmt(mean, 0.0 if np.isnan(std) else std)
            if metric in PAPER:
                row[f"{method} paper"] = _fmt(*PAPER[metric][method][int(scenario) - 1])
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' own needs the optional ``tabulate``)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_results(records: pd.DataFrame, out_dir: str | Path, study: FdagmmStudy) -> None:
    """Raw records, Tables 4 (precision) and 5 (recall) plus F1, as CSV and Markdown."""
    out = Path(out_dir)
    _atomic_write(out / "records.csv", records.to_csv(index=False))
    sections = [f"# FDAGMM on KDD Cup 99: fedsim vs paper\n\nSettings: `{asdict(study)}`\n"]
    for metric, title in (("precision", "Table 4: precision"), ("recall", "Table 5: recall"), ("f1", "F1")):
        table = summary(records, metric)
        _atomic_write(out / f"{metric}.csv", table.to_csv(index=False))
        sections.append(f"## {title}, mean(std) over seeds\n\n{markdown(table)}\n")
    _atomic_write(out / "tables.md", "\n".join(sections))


def load_study(path: str | Path | None, overrides: Sequence[str] = ()) -> FdagmmStudy:
    """Typed study settings: defaults, then a YAML file, then ``key=value`` overrides."""
    conf = OmegaConf.structured(FdagmmStudy)
    if path is not None:
        conf = OmegaConf.merge(conf, OmegaConf.load(path))
    conf = OmegaConf.merge(conf, OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_object(conf)  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ``python -m fedsim.experiments.fdagmm [study.yaml] [key=value ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", help="YAML with FdagmmStudy fields (e.g. scenarios/fdagmm/kdd.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seeds=[0] rounds=2")
    args = parser.parse_args(argv)
    if args.study is not None and "=" in args.study:  # no file given, only overrides
        args.overrides, args.study = [args.study, *args.overrides], None
    study = load_study(args.study, args.overrides)
    started = time.perf_counter()
    records = run_study(study)
    write_results(records, study.out_dir, study)
    print(f"wrote {study.out_dir}/tables.md ({len(records)} runs, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
