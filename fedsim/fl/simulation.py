"""Assemble one federated run on a fresh SimPy environment and play it out.

This is the engine's single entry point; it takes plain objects (no config), so
scripts, tests and the hydra builder all drive it the same way. Python's cyclic garbage
collector is paused while it runs, and collects once a round (:mod:`fedsim.sim.collector`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import simpy
import torch

from fedsim.checkpoint.store import DiskStore, MemoryStore
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.client import Client, IdleClients
from fedsim.fl.client_shared import ClientShared, lone_speeds
from fedsim.fl.cohort import Cohort
from fedsim.fl.executor import SequentialExecutor
from fedsim.fl.replay import EventDigest, GhostExecutor, Replay, Snapshot
from fedsim.fl.recovery import CLIENT_POLICIES, Checkpointing, Detection, Drop, Redistribute, Wait
from fedsim.fl.asynchronous import AsyncVersions
from fedsim.fl.monitor import Evaluation, Stopping
from fedsim.fl.server import Hooks, RoundPolicy, Rules, Server
from fedsim.fl.sync import SyncRounds
from fedsim.fl.strategies import Strategy
from fedsim.fl.tuning import Tuning
from fedsim.seeding import rng, torch_seed
from fedsim.sim import collector
from fedsim.sim.compute import ComputeModel
from fedsim.sim.failures import FailureClock, FailureModel, TraceClock
from fedsim.sim.sleeping_clocks import Sleepers, SleepingClock
from fedsim.sim.ledger import close_all
from fedsim.sim.link_rates import ClientLinks
from fedsim.sim.network import Network
from fedsim.sim.recorder import Recorder
from fedsim.streams import Streams
from fedsim.tasks import Task
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec

if TYPE_CHECKING:
    import pandas as pd

Shard = tuple[torch.Tensor, torch.Tensor]  # (rows, targets) of one client or of the server


@dataclass(frozen=True)
class NetworkSpec:
    """Every client's links: latency in seconds, bandwidth in bits per second."""

    latency_s: float = 0.01
    down_bps: float = 100e6
    up_bps: float = 20e6
    server_down_bps: float | None = None  # the server's egress, shared by all downloads; None = unlimited
    server_up_bps: float | None = None  # the server's ingress, shared by all uploads; None = unlimited
    clients: ClientLinks | None = None  # per-client latency and rates (spread or trace); None = all as above


@dataclass(frozen=True)
class FaultTolerance:
    """Checkpointing, detection and recovery, and the failure clocks beyond the clients'."""

    checkpointing: Checkpointing = Checkpointing()
    recovery: str = "reinit_global"  # reinit_global | restore_checkpoint
    on_failure: Wait | Redistribute | Drop = Wait()
    detection: Detection | None = None
    link_failure: FailureModel | None = None
    server_failure: FailureModel | None = None
    store_dir: Path | None = None  # checkpoints on disk here; in memory when None


@dataclass(frozen=True)
class SimSettings:
    """Everything about a run that is not data, model or strategy."""

    seed: int = 0
    policy: RoundPolicy = RoundPolicy()
    stopping: Stopping = Stopping()
    aggregation_s: float = 0.0
    dropout: float = 0.0
    failure: FailureModel | None = None
    fault: FaultTolerance = field(default_factory=FaultTolerance)
    failure_trace: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # client -> (fail_at, repair_after)
    client_eval: bool = False  # also score each client's (personalised) model on its own test shard every round
    train_eval: bool = False  # also score the global model's loss on every client's training rows (FedProx's "training loss")
    on_divergence: str = "stop"  # NaN/inf in training: stop the run | skip_client (drop the update) | ignore
    client_failure: tuple[FailureModel, ...] = ()  # per-client laws (a mixed fleet); replaces ``failure`` when given
    aggregation: AggregationCost = AggregationCost()  # aggregation time beyond aggregation_s
    straggler_share: float = 0.0  # share of a round's clients that do fewer local epochs (FedProx's systems heterogeneity)
    sleeping_clocks: bool = True  # idle clients' failure clocks schedule nothing (False: every transition is an event; same tables)
    closed_form: bool = True  # with sleeping clocks, system-only work that only a cancel can cut is one event (same tables)
    events_max_rows: int | None = None  # SimResult.events keeps at most this many rows (recorder.histories_that_fit); None: all


@dataclass
class SimResult:
    """Tables and final state of one run."""

    rounds: pd.DataFrame
    events: pd.DataFrame
    event_counts: pd.DataFrame  # events per round and kind, counted from the log (a million clients' run: tens of millions)
    events_logged: int  # rows in the run's event log; more than ``events`` holds when it was capped (events_max_rows)
    detection_latency_s: float  # mean over every failure the server detected (all rows, not only those ``events`` keeps)
    clients: pd.DataFrame
    client_evals: pd.DataFrame  # one row per round and client (with ``client_eval``)
    accounting: pd.DataFrame  # one row per client: where its virtual time went
    final: torch.Tensor
    virtual_s: float
    wall_train_s: float
    wall_eval_s: float
    stop_reason: str
    lifetimes: np.ndarray  # every client time-to-failure drawn, for checking the failure model
    task: Task  # what was learned, and which metrics the tables hold
    taus: pd.DataFrame = field(default_factory=lambda: _frame())  # every τ set under checkpoint.tau_s=auto|adaptive


def _frame(*args, **kwargs) -> pd.DataFrame:
    """A pandas table (pandas is imported when the first table is made, not before the run)."""
    import pandas as pd

    return pd.DataFrame(*args, **kwargs)


def checkpoint_nbytes(model: torch.nn.Module, layout: FlatLayout, spec: LocalSpec) -> int:
    """Bytes of a client checkpoint: the model's state plus the optimiser's per-parameter buffers (Adam: two)."""
    params = list(model.parameters())
    width = params[0].element_size() if params else 4
    return layout.nbytes() + spec.state_numels(params) * width


ExecutorFactory = Callable[[torch.nn.Module, FlatLayout, Sequence[Shard], LocalSpec], SequentialExecutor]


@collector.paused
def simulate(
    *,
    model: torch.nn.Module,
    initial: torch.Tensor,
    clients: Sequence[Shard],
    speeds: Sequence[float],
    strategy: Strategy,
    spec: LocalSpec,
    compute: ComputeModel,
    network: NetworkSpec,
    val: Shard,
    test: Shard,
    settings: SimSettings,
    on_round: Callable[[dict[str, object]], None] | None = None,
    executor: ExecutorFactory | None = None,
    evaluator: Callable[[torch.Tensor], dict[str, float]] | None = None,
    client_tests: Sequence[Shard] | None = None,
    resume: Snapshot | None = None,
    on_snapshot: Callable[[Callable[[], Snapshot]], None] | None = None,
) -> SimResult:
    """Run federated training of ``model`` from ``initial`` over ``clients`` and report every round.

    ``spec.task`` says what the clients minimise and how the global model is scored: its
    validation pass (which may calibrate, e.g. an anomaly threshold) on ``val`` and its
    metrics on ``test``. ``executor`` builds the executor from ``(model, layout, clients, spec)`` (default:
    :class:`SequentialExecutor`); ``evaluator`` replaces the torch evaluation of the
    global state (the system-only mode's surrogate uses both). ``client_tests`` holds
    each client's own test rows, scored every round when ``settings.client_eval`` is on.
    ``resume`` continues from a snapshot (replaying the timeline up to it, see
    :mod:`fedsim.fl.replay`); ``on_snapshot`` is offered, after every round that does not
    end the run, a function that makes a snapshot of it.
    """
    env = simpy.Environment()
    recorder = Recorder(env)
    layout = FlatLayout.of(model)
    executor = (executor or SequentialExecutor)(model, layout, clients, spec)
    ghost = replay = None
    if resume is not None:
        ghost = GhostExecutor(executor, resume.diverged, resume.live)
        replay = Replay(resume, ghost)
    digest = EventDigest()
    fault = settings.fault
    store = DiskStore(fault.store_dir) if fault.store_dir is not None else MemoryStore()
    store.clear()  # files a killed attempt left are from that attempt's future; a resumed run rebuilds its own by replay
    wall_eval = [0.0]
    task = spec.task
    calibration: list[object] = [None]  # of the last global evaluation; client models are scored with it too

    def torch_evaluator(flat: torch.Tensor) -> dict[str, float]:
        t0 = time.perf_counter()
        layout.load(model, flat)
        val_loss, calibration[0] = task.calibrate(model, *val)
        metrics = {"val_loss": val_loss, **task.evaluate(model, *test, calibration[0])}
        if settings.train_eval:  # Σ n_k·loss_k / Σ n_k over the clients' own rows
            rows = [len(y) for _, y in clients]
            metrics["global_train_loss"] = sum(n * task.mean_loss(model, x, y) for (x, y), n in zip(clients, rows)) / max(sum(rows), 1)
        wall_eval[0] += time.perf_counter() - t0
        return metrics

    def client_evaluator(flat: torch.Tensor) -> list[dict[str, float]]:
        """Each client's model (personalised when the strategy says so) on the client's own test rows."""
        t0 = time.perf_counter()
        fit = strategy.personalization(flat)
        scored = [cid for cid, (_, y) in enumerate(client_tests or ()) if len(y)]
        if fit is None:
            models = [flat] * len(scored)
        else:
            models = executor.personalize_all(scored, fit, [torch_seed(settings.seed, "personalize", cid) for cid in scored])
        rows = []
        for cid, own in zip(scored, models):
            x, y = client_tests[cid]  # type: ignore[index]
            layout.load(model, own)
            rows.append({"client": cid, "rows": len(y), **task.evaluate(model, x, y, calibration[0])})
        wall_eval[0] += time.perf_counter() - t0
        return rows

    ckpt_bytes = checkpoint_nbytes(model, layout, spec)  # once: it walks the model
    net = Network(
        env,
        latency_s=network.latency_s,
        down_bps=network.down_bps,
        up_bps=network.up_bps,
        server_down_bps=network.server_down_bps,
        server_up_bps=network.server_up_bps,
        clients=network.clients,
    )
    if fault.link_failure is None and network.clients is None:  # links that cannot fail, at one rate: one pair for all
        links = [net.pair(0)] * len(clients)
    else:
        links = [net.pair(cid) for cid in range(len(clients))]
    shared = ClientShared(ghost or executor, compute)
    recovery = CLIENT_POLICIES[fault.recovery]()  # stateless: one for all
    nodes = [
        Client(
            env,
            cid,
            speed=float(speeds[cid]),
            downlink=links[cid][0],
            uplink=links[cid][1],
            compute=compute,
            executor=ghost or executor,
            recorder=recorder,
            seed=settings.seed,
            recovery=recovery,
            checkpointing=fault.checkpointing,
            store=store,
            checkpoint_bytes=ckpt_bytes,
            on_divergence=settings.on_divergence,
            shared=shared,
        )
        for cid in range(len(clients))
    ]
    tuning = Tuning(env, nodes, fault.checkpointing, ckpt_bytes)
    ids = np.arange(len(nodes))
    failure_streams = Streams(settings.seed, "failure", ids) if settings.failure or settings.client_failure else None
    link_streams = Streams(settings.seed, "link-failure", np.repeat(ids, 2), np.tile([0, 1], len(ids))) if fault.link_failure else None
    if settings.sleeping_clocks and failure_streams is not None and fault.detection is None:  # no one watches idle clients
        shared.sleepers = recorder.sleepers = Sleepers(len(nodes), log=recorder.failures_and_repairs, targets=IdleClients(nodes, shared.lifetimes))
        shared.closed_form = settings.closed_form and fault.link_failure is None and shared.pure
        shared.alone = lone_speeds(speeds) if shared.closed_form else bytearray()
        shared.round_s = shared.whole_rounds(speeds) if shared.closed_form and not fault.checkpointing.enabled else None  # read only then
        if shared.round_s is not None and getattr(shared.executor, "plan", None) is None:  # attempts that need no plan
            shared.cohort = Cohort()
    for node in nodes:
        law = settings.client_failure[node.cid] if settings.client_failure else settings.failure
        target = tuning.target(node)
        if node.cid in settings.failure_trace:
            TraceClock(env, target, settings.failure_trace[node.cid])
        elif law is not None and shared.sleepers is not None and target is node:
            SleepingClock(env, node, law, failure_streams, shared.sleepers, node.failure_drawn, index=node.cid)  # type: ignore[arg-type]
        elif law is not None:
            FailureClock(env, target, law, failure_streams, node.failure_drawn, index=node.cid)
        if fault.link_failure is not None:
            for direction, link in enumerate((node.downlink, node.uplink)):
                link.owner = node  # told of its link's failures
                FailureClock(env, link, fault.link_failure, link_streams, index=2 * node.cid + direction)
        if fault.detection is not None:
            env.process(node.heartbeats(fault.detection.heartbeat_s))
    def snapshot() -> Snapshot:
        recorder.settle()
        inflight = server.protocol.inflight() if isinstance(server.protocol, AsyncVersions) else {}
        return Snapshot(
            round=server.state.number - 1,
            global_flat=server.global_flat,
            strategy=strategy.state_dict(),
            rounds=list(recorder.rounds),
            clients=recorder.clients.arrays(),
            client_evals=list(recorder.client_evals),
            wall_train_s=executor.wall_s,
            wall_eval_s=wall_eval[0],
            events=len(recorder.events),
            digest=digest.update(recorder.events),
            aggregations=list(server.aggregator.extras),
            diverged=list(recorder.diverged),
            models=inflight,
            live=[nodes[r.selected[0]].train_seed(r, r.selected[0]) for r in server.protocol.open_rounds()] if inflight else [],
        )

    def round_end() -> None:
        collector.round_garbage()
        if replay is None or not replay.active:
            if on_snapshot is not None:
                on_snapshot(snapshot)
        elif replay.round_done():  # the boundary: put the real state back and go live
            recorder.settle()
            snap = replay.snapshot
            replay.check(len(recorder.events), digest.update(recorder.events))
            recorder.rounds[:], recorder.client_evals[:], recorder.diverged[:] = snap.rounds, snap.client_evals, snap.diverged
            recorder.clients.load(snap.clients)
            server.state.global_flat = snap.global_flat.to(initial.device)
            strategy.load_state_dict({k: v.to(initial.device) for k, v in snap.strategy.items()})
            if server.checkpoints:  # the one saved in this replayed round holds ghost values
                store.save("server", server.checkpoint_state())
            executor.wall_s += snap.wall_train_s
            wall_eval[0] += snap.wall_eval_s
            ghost.go_live()  # type: ignore[union-attr]

    evaluation = Evaluation(
        evaluate=evaluator or torch_evaluator,
        wall_clock=lambda: executor.wall_s + wall_eval[0],
        evaluate_clients=client_evaluator if settings.client_eval and client_tests is not None and evaluator is None else None,
        client_metrics=("loss", *task.headline),
    )
    rules = Rules(
        seed=settings.seed,
        policy=settings.policy,
        stopping=replace(settings.stopping, monitor=task.monitor),  # early stopping watches the task's metric
        dropout=settings.dropout,
        straggler_share=settings.straggler_share,
        aggregation_s=settings.aggregation_s,
        aggregation=replace(settings.aggregation, parameters=layout.size),
        check_finite=settings.on_divergence != "ignore",
        detection=fault.detection,
        on_failure=fault.on_failure,
        checkpointing=fault.checkpointing,
        model_bytes=layout.nbytes(),
        server_fails=fault.server_failure is not None,
    )
    hooks = Hooks(on_round=tuning.on_round(on_round), on_round_end=round_end, split_data=executor.split)
    protocol = AsyncVersions if getattr(strategy, "asynchronous", False) else SyncRounds
    server = Server(env, nodes, strategy=strategy, initial=initial, recorder=recorder, rules=rules, evaluation=evaluation, store=store, replay=replay, hooks=hooks, protocol=protocol)

    if fault.server_failure is not None:
        FailureClock(env, server, fault.server_failure, rng(settings.seed, "server-failure"))
    with collector.fleet_frozen():
        budget = settings.stopping.max_time_s
        env.run(until=server.process if math.isinf(budget) else env.any_of([server.process, env.timeout(budget)]))
        if server.process.is_alive:  # the virtual-time budget ended the run; an open round is not recorded
            server.stop_reason = "time_budget"
    if shared.pure:  # closed-form work still waiting plays up to now; checkpoints kept unsaved are saved
        for node in nodes:
            node.finish()
    recorder.settle()  # idle clients' accounts and rows up to the end
    accounting = _frame({"client": np.arange(len(nodes)), **close_all([n.ledger for n in nodes], env.now)})
    return SimResult(
        rounds=recorder.rounds_table(),
        event_counts=recorder.event_counts(),
        events_logged=len(recorder.events),  # before the log is released into the table
        detection_latency_s=recorder.events.mean("detected"),
        events=recorder.events_table(release=True, max_rows=settings.events_max_rows),
        clients=recorder.clients_table(),
        client_evals=_frame(recorder.client_evals),
        accounting=accounting,
        final=server.global_flat,
        virtual_s=float(env.now),
        wall_train_s=executor.wall_s,
        wall_eval_s=wall_eval[0],
        stop_reason=server.stop_reason,
        lifetimes=np.asarray(shared.lifetimes),  # the array's buffer, not a copy
        task=task,
        taus=tuning.table(),
    )
