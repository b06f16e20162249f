"""The one place that turns a validated :class:`~fedsim.config.Config` into objects and runs them."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from fedsim import progress
from fedsim.config import Config, FedL2PConfig, FedOptConfig, FedProxConfig
from fedsim.data import partition
from fedsim.data.dataset import TabularData
from fedsim.errors import FedsimError
from fedsim.experiments.fleet import client_failure_models, tau_rule
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.batched_executor import choose_executor
from fedsim.fl.surrogate import LearningCurve, SurrogateExecutor, surrogate_initial
from fedsim.fl.server import RoundPolicy, Stopping
from fedsim.fl.recovery import Checkpointing, Detection, aggregation_policy
from fedsim.experiments import snapshots
from fedsim.fl.replay import Snapshot
from fedsim.fl.simulation import FaultTolerance, NetworkSpec, SimResult, SimSettings, simulate
from fedsim.fl.strategies import FedAdam, FedAvg, FedL2P, FedProx, FedYogi, Strategy
from fedsim.models.base import AnomalyModel
from fedsim.results import CONFIG, SUMMARY, config_key, is_done, write_json, write_table, write_text
from fedsim.seeding import rng, torch_seed
from fedsim.sim.compute import ComputeModel, draw_speeds
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.sim.fleet import group_counts
from fedsim.sim.link_rates import client_links
from fedsim.sim.recorder import event_counts, sample_events
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec
from fedsim.train.personalize import PersonalizeSpec, meta_init
from fedsim.train.precision import resolve_precision

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
ACCOUNTS = ("useful_s", "checkpoint_s", "lost_s", "recovery_s", "waiting_s")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FedsimError("compute.device=cuda but no CUDA device is visible; use compute.device=auto or cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Split:
    """Row indices: per-client training shards, the server's validation rows, per-client test shards."""

    clients: list[np.ndarray]
    val: np.ndarray
    client_tests: list[np.ndarray] | None = None  # with run.client_eval: each client's own test rows


def split_rows(data: TabularData, cfg: Config) -> Split:
    """Hold out the server's validation rows, then partition the rest across clients.

    With ``run.client_eval`` the test rows are dealt to clients too, with the same skew
    (the same Dirichlet class proportions), so a client's test rows look like its
    training rows: what a personalised model is scored on.
    """
    g = rng(cfg.run.seed, "partition")
    n = len(data.y_train)
    order = g.permutation(n)
    n_val = max(1, int(round(cfg.data.val_fraction * n)))
    val, rest = np.sort(order[:n_val]), np.sort(order[n_val:])
    g_test = rng(cfg.run.seed, "test-partition")
    if cfg.data.partition == "iid":
        shards = partition.iid(len(rest), cfg.data.num_clients, g, min_rows=2)
        tests = partition.iid(len(data.y_test), cfg.data.num_clients, g_test) if cfg.run.client_eval else None
    else:
        labels = data.category_train if data.category_train is not None else data.y_train
        shards, shares = partition.dirichlet_split(np.asarray(labels)[rest], cfg.data.num_clients, cfg.data.alpha, g, min_rows=2)
        test_labels = data.category_test if data.category_test is not None else data.y_test
        tests = partition.by_proportions(np.asarray(test_labels), shares, g_test) if cfg.run.client_eval else None
    return Split(clients=[rest[s] for s in shards], val=val, client_tests=tests)


def load_data(cfg: Config) -> TabularData:
    """The dataset ``data.source`` names; a loader's one-line error comes out as it is, not wrapped by hydra."""
    try:
        data: TabularData = instantiate(cfg.data.source, seed=cfg.run.seed)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, FedsimError):
            raise FedsimError(str(exc.__cause__)) from None
        raise
    for part, labels in (("training", data.y_train), ("test", data.y_test)):
        missing = {0, 1} - set(np.unique(labels).tolist())
        if missing:
            kind = "normal" if 0 in missing else "anomalous"
            raise FedsimError(f"the {part} rows of {data.name} hold no {kind} rows; an anomaly detector needs both classes: use another file or split")
    return data


def check_inputs(cfg: Config) -> None:
    """Read every file ``cfg`` names (a dataset, a network trace), so a bad one stops a run, or a whole
    sweep, before anything starts; the parsed dataset is cached, so the job's own read is cheap."""
    source = cfg.data.source
    target = source.get("_target_", "") if isinstance(source, Mapping) else getattr(source, "_target_", "")
    if cfg.data.declared_rows is None and not str(target).endswith("make_synthetic"):
        load_data(cfg)
    if cfg.network.trace is not None:
        build_network(cfg)


def declared_sizes(cfg: Config) -> np.ndarray:
    """Each client's training rows when ``data.declared_rows`` are dealt without data (system-only).

    ``iid``: near-equal shards, exactly the sizes an iid split of that many real rows
    gives; ``dirichlet``: shares ~ Dirichlet(α) over the clients from the partition
    stream, rounded by largest remainder (every client must get a row).
    """
    total, n = int(cfg.data.declared_rows or 0), cfg.data.num_clients
    if cfg.data.partition == "iid":
        return np.full(n, total // n, dtype=np.int64) + (np.arange(n) < total % n)
    sizes = group_counts(total, rng(cfg.run.seed, "partition").dirichlet(np.full(n, cfg.data.alpha)))
    if sizes.min() < 1:
        raise FedsimError(
            f"data.declared_rows={total} under data.partition=dirichlet, data.alpha={cfg.data.alpha} leaves "
            f"{int((sizes < 1).sum())} clients without rows; raise data.declared_rows or data.alpha"
        )
    return sizes.astype(np.int64)


def cap_rows(data: TabularData, max_rows: int | None, seed: int) -> TabularData:
    """``data`` with at most ``max_rows`` training rows, sampled per category so class shares stay."""
    if max_rows is None or len(data.y_train) <= max_rows:
        return data
    labels = data.category_train if data.category_train is not None else data.y_train
    keep = partition.stratified_sample(np.asarray(labels), max_rows, rng(seed, "max-rows"))
    category = data.category_train[keep] if data.category_train is not None else None
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep], category_train=category)


def build_model(cfg: Config, num_features: int, device: torch.device) -> AnomalyModel:
    """Instantiate the model with seeded initial weights (global torch RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(cfg.run.seed, "init"))
        model = instantiate(cfg.model, num_features=num_features)
    return model.to(device)


def build_strategy(cfg: Config, model: AnomalyModel, layout: FlatLayout) -> Strategy:
    """The strategy named by ``strategy.name`` (``proposed`` aggregates as FedAvg)."""
    s = cfg.strategy
    select = {"fraction": s.fraction, "min_clients": s.min_clients}
    if isinstance(s, FedProxConfig):
        return FedProx(mu=s.mu, **select)
    if isinstance(s, FedL2PConfig):
        spec = PersonalizeSpec(
            steps=s.finetune_steps, batch_size=s.finetune_batch_size, base_lr=s.finetune_lr, lr_max=s.lr_max, val_fraction=s.meta_val_fraction, hidden=s.meta_hidden
        )
        meta = meta_init(model, spec, cfg.run.seed).to(next(model.parameters()).device)
        return FedL2P(meta=meta, spec=spec, meta_lr=s.meta_lr, clip=s.meta_clip, **select)
    if isinstance(s, FedOptConfig):
        cls = FedAdam if s.name == "fedadam" else FedYogi
        return cls(params=layout.param_mask(model), lr=s.server_lr, beta1=s.beta1, beta2=s.beta2, tau=s.tau, **select)
    return FedAvg(**select)


def build_fault_tolerance(cfg: Config, out_dir: Path | None) -> FaultTolerance:
    """Checkpointing, detection, recovery policies and the link/server failure clocks."""
    f, c, r = cfg.failure, cfg.checkpoint, cfg.recovery
    checkpointing = Checkpointing(
        tau_s=c.tau_s if c.enabled and not c.tau_steps and not isinstance(c.tau_s, str) else math.inf,
        tau_steps=c.tau_steps if c.enabled else 0,
        delta_s=c.delta_s,
        storage_bps=c.storage_mbps * 1e6,
        restart_s=c.restart_s,
        server=c.enabled and c.server,
        rule=tau_rule(cfg),
    )
    return FaultTolerance(
        checkpointing=checkpointing,
        recovery=r.client,
        on_failure=aggregation_policy(r.aggregation, r.wait_deadline_s),
        detection=Detection(r.heartbeat_s, r.timeout_s) if r.detection else None,
        link_failure=FailureModel(f.link_shape, f.link_scale, repair_sampler(f.repair, f.link_repair_mean_s, f.repair_cv)) if f.links else None,
        server_failure=FailureModel(f.server_shape, f.server_scale, repair_sampler(f.repair, f.server_repair_mean_s, f.repair_cv)) if f.server else None,
        store_dir=(out_dir / "checkpoints") if c.on_disk and out_dir is not None else None,
    )


def build_settings(cfg: Config, anomaly_ratio: float, out_dir: Path | None = None) -> SimSettings:
    """Run-level settings for the engine."""
    f = cfg.failure
    failure = FailureModel(f.shape, f.scale, repair_sampler(f.repair, f.repair_mean_s, f.repair_cv)) if f.clients else None
    return SimSettings(
        fault=build_fault_tolerance(cfg, out_dir),
        seed=cfg.run.seed,
        policy=RoundPolicy(cfg.run.round_policy, cfg.run.deadline_s),
        stopping=Stopping(cfg.run.max_rounds, cfg.run.patience, cfg.run.min_delta),
        aggregation_s=cfg.run.aggregation_s,
        dropout=f.dropout,
        failure=failure,
        anomaly_ratio=anomaly_ratio,
        client_eval=cfg.run.client_eval,
        on_divergence=cfg.run.on_divergence,
        client_failure=client_failure_models(cfg),
        aggregation=AggregationCost(cfg.run.aggregation, cfg.run.aggregation_per_param_s, cfg.run.aggregation_scale),
    )


def build_network(cfg: Config) -> NetworkSpec:
    """Client links (identical, spread or from a trace) and the server's shared link capacities."""
    n = cfg.network
    clients = client_links(
        cfg.data.num_clients,
        latency_s=n.latency_s,
        down_bps=n.down_mbps * 1e6,
        up_bps=n.up_mbps * 1e6,
        spread=n.spread,
        stream=lambda k: rng(cfg.run.seed, "link", k),
        trace=Path(n.trace) if n.trace is not None else None,
    )
    server_down = n.server_down_mbps * 1e6 if n.server_down_mbps is not None else None
    server_up = n.server_up_mbps * 1e6 if n.server_up_mbps is not None else None
    return NetworkSpec(n.latency_s, n.down_mbps * 1e6, n.up_mbps * 1e6, server_down, server_up, clients)


def build_executor(cfg: Config, device: torch.device):
    """The executor factory for ``compute.batched`` (auto: per model and device); logs the choice."""

    def build(model, layout, data, spec):
        executor, why = choose_executor(model, layout, data, spec, device=device, batched=cfg.compute.batched)
        log.info("executor: %s", why)
        return executor

    return build


def run_experiment(
    cfg: Config,
    on_round: Callable[[dict[str, object]], None] | None = None,
    out_dir: Path | None = None,
    resume: Snapshot | None = None,
    on_snapshot: Callable[[Callable[[], Snapshot]], None] | None = None,
) -> SimResult:
    """Load data, build every object from ``cfg`` and simulate (from ``resume`` when given); writes no tables."""
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    device = resolve_device(cfg.compute.device)
    precision, why = resolve_precision(cfg.compute.precision, device)
    log.info("precision: %s", why)
    declared = cfg.data.declared_rows is not None  # system-only with client sizes only: no data loaded
    data = None if declared else cap_rows(load_data(cfg), cfg.data.max_rows, cfg.run.seed)
    split = split_rows(data, cfg) if data is not None else None

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device), torch.from_numpy(np.ascontiguousarray(y)).to(device)

    if data is None or split is None:
        clients: list = declared_sizes(cfg).tolist()
    elif cfg.compute.system_only:  # the surrogate needs only each client's row count
        clients = [len(rows) for rows in split.clients]
    else:
        clients = [tensors(data.x_train[rows], data.y_train[rows]) for rows in split.clients]
    model = build_model(cfg, data.num_features if data is not None else cfg.data.declared_features, device)
    speeds = draw_speeds(rng(cfg.run.seed, "speed"), cfg.data.num_clients, cfg.compute.speed_dist, cfg.compute.speed_spread)
    layout = FlatLayout.of(model)
    executor, evaluator, initial = build_executor(cfg, device), None, layout.flatten(model)
    if cfg.compute.system_only:
        curve = LearningCurve(final=cfg.compute.surrogate_final_accuracy, scale_epochs=cfg.compute.surrogate_scale_epochs)
        row_bytes = {"row_bytes": cfg.data.declared_features * 4 + 8} if declared else {}  # float32 features + a label
        executor, evaluator, initial = SurrogateExecutor.factory(curve, **row_bytes), curve.evaluate, surrogate_initial()
    return simulate(
        model=model,
        initial=initial,
        clients=clients,
        speeds=speeds,
        strategy=build_strategy(cfg, model, layout),
        spec=LocalSpec(batch_size=cfg.strategy.batch_size, lr=cfg.strategy.lr, epochs=cfg.strategy.local_epochs, precision=precision),
        compute=ComputeModel(cfg.compute.cost_per_sample_s),
        network=build_network(cfg),
        val=tensors(data.x_train[split.val], data.y_train[split.val]) if split is not None else None,
        test=tensors(data.x_test, data.y_test) if data is not None else None,
        settings=build_settings(cfg, float(np.mean(data.y_train)) if data is not None else 0.5, out_dir),
        on_round=on_round,
        executor=executor,
        evaluator=evaluator,
        client_tests=[tensors(data.x_test[rows], data.y_test[rows]) for rows in split.client_tests] if split and split.client_tests else None,
        resume=resume,
        on_snapshot=on_snapshot,
    )


def time_to_accuracy(rounds: pd.DataFrame, target: float) -> float:
    """Virtual seconds until the global model first reaches ``target`` test accuracy (NaN if never)."""
    hit = rounds.loc[rounds["accuracy"] >= target, "time_s"]
    return float(hit.iloc[0]) if len(hit) else float("nan")


def summarize(result: SimResult, wall_total_s: float, target_accuracy: float) -> dict[str, object]:
    """The one-line-per-run facts: final metrics, virtual and wall time, counts."""
    last = result.rounds.iloc[-1]
    detected = result.events.loc[result.events["kind"] == "detected", "value"].dropna()
    return {
        "rounds": int(last["round"]),
        "stop_reason": result.stop_reason,
        "virtual_s": result.virtual_s,
        "wall_train_s": result.wall_train_s,
        "wall_eval_s": result.wall_eval_s,
        "wall_total_s": wall_total_s,
        "final_accuracy": float(last["accuracy"]),
        "final_auc": float(last["auc"]),
        "final_loss": float(last["loss"]),
        "time_to_target_s": time_to_accuracy(result.rounds, target_accuracy),
        "failures": int((result.events["kind"] == "failure").sum()),
        "dropouts": int((result.events["kind"] == "dropout").sum()),
        "checkpoints": int((result.events["kind"] == "checkpoint").sum()),
        **{k: float(result.accounting[k].sum()) for k in ACCOUNTS},
        "detection_latency_s": float(detected.mean()) if len(detected) else float("nan"),
        "diverged_updates": int((result.events["kind"] == "diverged").sum()),
        **{f"final_{k}": float(last[k]) for k in ("client_accuracy", "client_auc") if k in last},
    }


def run_and_write(cfg: Config, out_dir: Path, resolved_yaml: str, *, resume: bool = False) -> dict[str, object]:
    """Run ``cfg`` and write tables, figure, config and (last) the summary into ``out_dir``.

    Snapshots go to ``out_dir/snapshots`` as the run goes. With ``resume`` the run
    continues from the newest snapshot of the same config there, and a complete run
    of it is left as it is.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if resume and is_done(out_dir, resolved_yaml):
        log.info("run in %s is complete: nothing to resume", out_dir)
        return json.loads((out_dir / SUMMARY).read_text())
    key = config_key(resolved_yaml)
    snap = snapshots.latest(out_dir / snapshots.DIRECTORY, key) if resume else None
    if resume and snap is not None:
        log.info("resuming after round %d (replaying the timeline up to it)", snap.round)
    elif cfg.run.resume:
        log.info("no snapshot to resume from: starting at round 1")
    writer = snapshots.SnapshotWriter(out_dir / snapshots.DIRECTORY, key, every_s=cfg.run.snapshot_every_s, keep=cfg.run.keep_snapshots)
    result = run_experiment(cfg, out_dir=out_dir, on_round=progress.round_progress(cfg.run.max_rounds), resume=snap, on_snapshot=writer)
    write_table(result.rounds, out_dir / "rounds.csv")
    events = sample_events(result.events, cfg.run.events_max_rows)
    write_table(events, out_dir / "events.csv")
    if len(events) < len(result.events):
        write_table(event_counts(result.events), out_dir / "event_counts.csv")
        log.info("events.csv: %d of %d events (run.events_max_rows): the server's and clients 0..%d's; all counted in event_counts.csv",
                 len(events), len(result.events), int(events["client"].max()))
    write_table(result.accounting, out_dir / "accounting.csv")
    if cfg.run.client_metrics:
        write_table(result.clients, out_dir / "clients.csv")
    if cfg.run.client_eval:
        write_table(result.client_evals, out_dir / "client_eval.csv")
    if len(result.taus):
        write_table(result.taus, out_dir / "tau.csv")
    if cfg.run.figure:
        from fedsim import figures  # matplotlib and seaborn, only when a figure is drawn

        figures.learning_curve(result.rounds, out_dir / "learning_curve.png")
    write_text(resolved_yaml, out_dir / CONFIG)
    summary = summarize(result, time.perf_counter() - t0, cfg.run.target_accuracy)
    if snap is not None:
        summary["resumed_after_round"] = snap.round
    if len(events) < len(result.events):
        summary |= {"events_logged": len(result.events), "events_written": len(events)}
    write_json(summary, out_dir / SUMMARY)
    return summary
