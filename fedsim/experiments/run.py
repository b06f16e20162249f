"""The one place that turns a validated :class:`~fedsim.config.Config` into objects and runs them."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import torch

from fedsim import progress
from fedsim.config import Config
from fedsim.errors import FedsimError
from fedsim.experiments.fleet import client_failure_models, tau_rule
from fedsim.experiments.plugins import build_model, build_strategy, build_task, load_data
from fedsim.experiments.rows import cap_rows, declared_sizes, split_rows
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.batched_executor import choose_executor
from fedsim.fl.surrogate import LearningCurve, SurrogateTask, system_only
from fedsim.fl.server import RoundPolicy, Stopping
from fedsim.fl.recovery import Checkpointing, Detection, aggregation_policy
from fedsim.experiments import snapshots
from fedsim.fl.replay import Snapshot
from fedsim.fl.simulation import FaultTolerance, NetworkSpec, SimResult, SimSettings, simulate
from fedsim.results import CONFIG, SUMMARY, config_key, is_done, write_json, write_table, write_text
from fedsim.seeding import rng
from fedsim.sim.compute import ComputeModel, draw_speeds
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.sim.link_rates import client_links
from fedsim.tasks import Task
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec
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


def check_objective(cfg: Config, task: Task) -> None:
    """``run.objective`` must name a summary field the run will have: a metric ``task`` reports, or a time."""
    name = cfg.run.objective
    if name is None or not name.startswith("final_"):
        return
    reported = (*task.metric_names(), *(f"client_{k}" for k in ("loss", *task.headline) if cfg.run.client_eval))
    if name.removeprefix("final_") not in reported:
        what = "system-only runs (compute.system_only=true) model only" if isinstance(task, SurrogateTask) else f"task={task.name} reports"
        raise FedsimError(
            f"run.objective={name} names a metric {what} without it ({', '.join(reported)}); "
            f"use final_{task.target_metric}, virtual_s or time_to_target_s"
        )


def check_inputs(cfg: Config) -> None:
    """Read every file ``cfg`` names (a dataset, a network trace) and fit the task to the data, so a bad
    input stops a run, or a whole sweep, before anything starts; the parsed dataset is cached, so the
    job's own read is cheap."""
    source = cfg.data.source
    target = source.get("_target_", "") if isinstance(source, Mapping) else getattr(source, "_target_", "")
    data = load_data(cfg) if cfg.data.declared_rows is None and not str(target).endswith("make_synthetic") else None
    check_objective(cfg, SurrogateTask() if cfg.compute.system_only else build_task(cfg, data))
    if cfg.network.trace is not None:
        build_network(cfg)


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


def build_settings(cfg: Config, out_dir: Path | None = None, events_max_rows: int | None = None) -> SimSettings:
    """Run-level settings for the engine."""
    f = cfg.failure
    failure = FailureModel(f.shape, f.scale, repair_sampler(f.repair, f.repair_mean_s, f.repair_cv)) if f.clients else None
    return SimSettings(
        fault=build_fault_tolerance(cfg, out_dir),
        seed=cfg.run.seed,
        policy=RoundPolicy(cfg.run.round_policy, cfg.run.deadline_s, cfg.strategy.stragglers),
        straggler_share=cfg.compute.straggler_share,
        stopping=Stopping(cfg.run.max_rounds, cfg.run.patience, cfg.run.min_delta, max_time_s=cfg.run.max_time_s),
        aggregation_s=cfg.run.aggregation_s,
        dropout=f.dropout,
        failure=failure,
        client_eval=cfg.run.client_eval,
        train_eval=cfg.run.train_eval,
        on_divergence=cfg.run.on_divergence,
        client_failure=client_failure_models(cfg),
        aggregation=AggregationCost(cfg.run.aggregation, cfg.run.aggregation_per_param_s, cfg.run.aggregation_scale),
        events_max_rows=events_max_rows,
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


def build_executor(cfg: Config, device: torch.device, asynchronous: bool = False):
    """The executor factory for ``compute.batched`` (auto: per model, device and protocol); logs the choice."""

    def build(model, layout, data, spec):
        executor, why = choose_executor(model, layout, data, spec, device=device, batched=cfg.compute.batched, asynchronous=asynchronous)
        log.info("executor: %s", why)
        return executor

    return build


def run_experiment(
    cfg: Config,
    on_round: Callable[[dict[str, object]], None] | None = None,
    out_dir: Path | None = None,
    resume: Snapshot | None = None,
    on_snapshot: Callable[[Callable[[], Snapshot]], None] | None = None,
    events_max_rows: int | None = None,
) -> SimResult:
    """Load data, build every object from ``cfg`` and simulate (from ``resume`` when given); writes no tables.

    ``events_max_rows``: the result's event table keeps at most that many rows (what events.csv holds; every
    event is still counted in ``event_counts``); None: all of them, for callers that read every row."""
    if cfg.compute.threads:
        torch.set_num_threads(cfg.compute.threads)
    device = resolve_device(cfg.compute.device)
    precision, why = resolve_precision(cfg.compute.precision, device)
    log.info("precision: %s", why)
    declared = cfg.data.declared_rows is not None  # system-only with client sizes only: no data loaded
    data = None if declared else cap_rows(load_data(cfg), cfg.data.max_rows, cfg.run.seed)
    task = build_task(cfg, data)
    split = split_rows(data, cfg) if data is not None else None

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device), torch.from_numpy(np.ascontiguousarray(y)).to(device)

    if data is None or split is None:
        clients: list = declared_sizes(cfg).tolist()
    elif cfg.compute.system_only:  # the surrogate needs only each client's row count
        clients = [len(rows) for rows in split.clients]
    else:
        clients = [tensors(data.x_train[rows], data.y_train[rows]) for rows in split.clients]
    input_shape = data.input_shape if data is not None else (cfg.data.declared_features,)
    sample = torch.from_numpy(np.ascontiguousarray(data.x_train[:2])) if data is not None else None
    model = build_model(cfg, task, input_shape, device, sample)
    speeds = draw_speeds(rng(cfg.run.seed, "speed"), cfg.data.num_clients, cfg.compute.speed_dist, cfg.compute.speed_spread)
    layout = FlatLayout.of(model)
    initial = layout.flatten(model)
    strategy = build_strategy(cfg, model, layout, task, initial)
    s = cfg.strategy
    spec = LocalSpec(batch_size=s.batch_size, lr=s.lr, epochs=s.local_epochs, precision=precision, optimizer=s.optimizer, momentum=s.momentum, task=task)
    engine: dict[str, object] = {"initial": initial, "executor": build_executor(cfg, device, getattr(strategy, "asynchronous", False)), "spec": spec}
    if cfg.compute.system_only:
        curve = LearningCurve(final=cfg.compute.surrogate_final_accuracy, scale_epochs=cfg.compute.surrogate_scale_epochs)
        row_bytes = {"row_bytes": cfg.data.declared_features * 4 + 8} if declared else {}  # float32 features + a label
        engine = system_only(curve, spec, **row_bytes)
    check_objective(cfg, engine["spec"].task)  # type: ignore[attr-defined]
    return simulate(
        model=model,
        clients=clients,
        speeds=speeds,
        strategy=strategy,
        compute=ComputeModel(cfg.compute.cost_per_sample_s),
        network=build_network(cfg),
        val=tensors(data.x_train[split.val], data.y_train[split.val]) if split is not None else None,
        test=tensors(data.x_test, data.y_test) if data is not None else None,
        settings=build_settings(cfg, out_dir, events_max_rows),
        on_round=on_round,
        client_tests=[tensors(data.x_test[rows], data.y_test[rows]) for rows in split.client_tests] if split and split.client_tests else None,
        resume=resume,
        on_snapshot=on_snapshot,
        **engine,  # type: ignore[arg-type]
    )


def time_to_target(rounds: pd.DataFrame, metric: str, target: float) -> float:
    """Virtual seconds until the global model's ``metric`` first reaches ``target`` (NaN if never)."""
    if metric not in rounds:  # no round finished
        return float("nan")
    hit = rounds.loc[rounds[metric] >= target, "time_s"]
    return float(hit.iloc[0]) if len(hit) else float("nan")


def updates_to_target(result: SimResult, target: float) -> float:
    """Client updates aggregated until the target metric is first reached (NaN if never)."""
    if result.task.target_metric not in result.rounds:  # no round finished
        return float("nan")
    hit = result.rounds.loc[result.rounds[result.task.target_metric] >= target, "round"]
    return float((result.clients["round"] <= hit.iloc[0]).sum()) if len(hit) and len(result.clients) else float("nan")


def summarize(result: SimResult, wall_total_s: float, target: float) -> dict[str, object]:
    """The one-line-per-run facts: the task's final metrics, virtual and wall time, counts.

    A run that a time budget ended before any round finished has no metrics: they are NaN.
    """
    import pandas as pd

    task = result.task
    last = result.rounds.iloc[-1] if len(result.rounds) else pd.Series({m: float("nan") for m in task.metric_names()} | {"round": 0})
    kinds = {str(k): int(n) for k, n in result.event_counts.groupby("kind")["count"].sum().items()}
    metrics = [m for m in (*task.metric_names(), *(f"client_{k}" for k in ("loss", *task.headline))) if m in last]
    return {
        "rounds": int(last["round"]),
        "stop_reason": result.stop_reason,
        "virtual_s": result.virtual_s,
        "wall_train_s": result.wall_train_s,
        "wall_eval_s": result.wall_eval_s,
        "wall_total_s": wall_total_s,
        "task": task.name,
        "target_metric": task.target_metric,
        **{f"final_{m}": float(last[m]) for m in metrics},
        "time_to_target_s": time_to_target(result.rounds, task.target_metric, target),
        "updates": len(result.clients),  # client updates aggregated
        "updates_to_target": updates_to_target(result, target),
        "failures": kinds.get("failure", 0),
        "dropouts": kinds.get("dropout", 0),
        "checkpoints": kinds.get("checkpoint", 0),
        **{k: float(result.accounting[k].sum()) for k in ACCOUNTS},
        "detection_latency_s": result.detection_latency_s,
        "diverged_updates": kinds.get("diverged", 0),
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
    result = run_experiment(cfg, out_dir=out_dir, on_round=progress.round_progress(cfg.run.max_rounds), resume=snap, on_snapshot=writer,
                            events_max_rows=cfg.run.events_max_rows)  # fmt: skip
    write_table(result.rounds, out_dir / "rounds.csv")
    events = result.events  # capped to run.events_max_rows by the run itself
    write_table(events, out_dir / "events.csv")
    if len(events) < result.events_logged:
        write_table(result.event_counts, out_dir / "event_counts.csv")
        log.info("events.csv: %d of %d events (run.events_max_rows): the server's and clients 0..%d's; all counted in event_counts.csv",
                 len(events), result.events_logged, int(events["client"].max()))
    write_table(result.accounting, out_dir / "accounting.csv")
    if cfg.run.client_metrics:
        write_table(result.clients, out_dir / "clients.csv")
    if cfg.run.client_eval:
        write_table(result.client_evals, out_dir / "client_eval.csv")
    if len(result.taus):
        write_table(result.taus, out_dir / "tau.csv")
    if cfg.run.figure and len(result.rounds):
        from fedsim import figures  # matplotlib and seaborn, only when a figure is drawn

        task = result.task
        figures.learning_curve(result.rounds, out_dir / "learning_curve.png", task.target_metric, "loss" if "loss" in result.rounds else task.monitor)
    write_text(resolved_yaml, out_dir / CONFIG)
    summary = summarize(result, time.perf_counter() - t0, cfg.run.target_accuracy)
    if snap is not None:
        summary["resumed_after_round"] = snap.round
    if len(events) < result.events_logged:
        summary |= {"events_logged": result.events_logged, "events_written": len(events)}
    write_json(summary, out_dir / SUMMARY)
    return summary
