"""Typed structured configs, one dataclass per hydra config group.

Hydra composes YAML from ``conf/`` onto these schemas (unknown keys are rejected),
and ``__post_init__`` checks every value when the config becomes objects, so a bad
setting stops the run with one line naming the key and its allowed range. Units are
in the field comments.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from fedsim.errors import FedsimError, require
from fedsim.fl.aggregation_cost import KINDS as AGGREGATION_KINDS
from fedsim.models.dnn import PAPER_HIDDEN
from fedsim.strategy_config import FedAsyncConfig, FedBuffConfig, FedL2PConfig, FedOptConfig, FedProxConfig, PluginStrategyConfig, StrategyConfig

TAU_RULES = ("auto", "adaptive")  # checkpoint.tau_s values that are rules, not numbers
PARTITIONS = ("iid", "dirichlet", "natural")  # data.partition
OBJECTIVES = ("virtual_s", "time_to_target_s")  # run.objective, besides final_<metric> of the task's metrics


@dataclass
class DataConfig:
    """Which dataset, and how it is split across clients."""

    source: Any = MISSING  # a loader config with _target_ (conf/data/source/*.yaml)
    num_clients: int = 6
    partition: str = "iid"  # iid | dirichlet (label skew over classes or attack categories) | natural (the data's own owners: devices, writers)
    alpha: float = 0.5  # Dirichlet concentration (partition=dirichlet; small = more skewed); data=synthetic_fedprox: Synthetic(α, β)'s α
    beta: float = 0.0  # data=synthetic_fedprox: Synthetic(α, β)'s β (how far devices' inputs differ); unused otherwise
    val_fraction: float = 0.1  # share of training rows the server keeps for early stopping
    max_rows: int | None = None  # keep at most this many training rows (seeded sample, stratified by category); test rows stay
    declared_rows: int | None = None  # system-only: deal this many training rows to the clients and load no data (null: count data.source's)
    declared_features: int = 43  # system-only with declared_rows: input width of the model (message and checkpoint sizes)

    def __post_init__(self) -> None:
        require(self.max_rows is None or self.max_rows >= 10, "data.max_rows", "≥ 10 or null", self.max_rows)
        require(self.declared_rows is None or self.declared_rows >= self.num_clients, "data.declared_rows", "≥ data.num_clients or null", self.declared_rows)
        require(self.declared_features >= 1, "data.declared_features", "≥ 1", self.declared_features)
        require(self.num_clients >= 1, "data.num_clients", "≥ 1", self.num_clients)
        require(self.partition in PARTITIONS, "data.partition", ", ".join(PARTITIONS), self.partition)
        require(self.alpha > 0 if self.partition == "dirichlet" else self.alpha >= 0, "data.alpha", "> 0 under partition=dirichlet, else ≥ 0", self.alpha)
        require(self.beta >= 0, "data.beta", "≥ 0", self.beta)
        require(0 < self.val_fraction < 1, "data.val_fraction", "in (0, 1)", self.val_fraction)


@dataclass
class DNNConfig:
    """The checkpointing paper's DNN (fedsim.models.dnn.AnomalyDNN)."""

    _target_: str = "fedsim.models.dnn.AnomalyDNN"
    hidden: list[int] = field(default_factory=lambda: list(PAPER_HIDDEN))
    dropout: float = 0.2  # on the last three hidden layers
    batch_norm: bool = True

    def __post_init__(self) -> None:
        require(0 <= self.dropout < 1, "model.dropout", "in [0, 1)", self.dropout)
        require(all(h > 0 for h in self.hidden), "model.hidden", "positive layer widths", self.hidden)


@dataclass
class FailureGroup:
    """One part of a mixed fleet: a ``share`` of the clients with Weibull shape k and scale λ (virtual s)."""

    share: float = 1.0
    shape: float = 1.5
    scale: float = 600.0

    def __post_init__(self) -> None:
        require(0 < self.share <= 1, "failure.groups[].share", "in (0, 1]", self.share)
        require(self.shape > 0, "failure.groups[].shape", "> 0", self.shape)
        require(self.scale > 0, "failure.groups[].scale", "> 0", self.scale)


@dataclass
class FailureConfig:
    """Weibull failure clocks on clients, and per-round dropout."""

    clients: bool = False  # give every client a Weibull failure clock
    shape: float = 1.5  # Weibull k (< 1 infant mortality, 1 exponential, > 1 wear-out)
    scale: float = 600.0  # Weibull λ, virtual seconds
    repair: str = "exponential"  # fixed | exponential | lognormal
    repair_mean_s: float = 30.0  # mean repair time, virtual seconds
    repair_cv: float = 0.5  # coefficient of variation (lognormal only)
    dropout: float = 0.0  # probability a selected client never reports in a round
    links: bool = False  # give every link (down and up) its own Weibull clock
    link_shape: float = 1.0
    link_scale: float = 3600.0  # virtual seconds
    link_repair_mean_s: float = 5.0
    server: bool = False  # give the server a Weibull clock (it restarts from its checkpoint)
    server_shape: float = 1.0
    server_scale: float = 36000.0  # virtual seconds
    server_repair_mean_s: float = 30.0
    groups: list[FailureGroup] = field(default_factory=list)  # a mixed fleet; replaces shape/scale for client clocks

    def __post_init__(self) -> None:
        require(self.shape > 0, "failure.shape", "> 0", self.shape)
        require(self.scale > 0, "failure.scale", "> 0", self.scale)
        require(self.repair in ("fixed", "exponential", "lognormal"), "failure.repair", "fixed, exponential or lognormal", self.repair)
        require(self.repair_mean_s >= 0, "failure.repair_mean_s", "≥ 0", self.repair_mean_s)
        require(self.repair_cv >= 0, "failure.repair_cv", "≥ 0", self.repair_cv)
        require(0 <= self.dropout < 1, "failure.dropout", "in [0, 1)", self.dropout)
        for part in ("link", "server"):
            require(getattr(self, f"{part}_shape") > 0, f"failure.{part}_shape", "> 0", getattr(self, f"{part}_shape"))
            require(getattr(self, f"{part}_scale") > 0, f"failure.{part}_scale", "> 0", getattr(self, f"{part}_scale"))
            require(getattr(self, f"{part}_repair_mean_s") >= 0, f"failure.{part}_repair_mean_s", "≥ 0", getattr(self, f"{part}_repair_mean_s"))
        shares = sum(g.share for g in self.groups)
        require(not self.groups or abs(shares - 1) < 1e-9, "failure.groups", "shares summing to 1", [g.share for g in self.groups])


@dataclass
class NetworkConfig:
    """Per-client links to the server."""

    latency_s: float = 0.02  # one-way latency, seconds
    down_mbps: float = 100.0  # server → client bandwidth, Mbit/s
    up_mbps: float = 20.0  # client → server bandwidth, Mbit/s
    server_down_mbps: float | None = None  # server egress shared max-min fairly by all downloads, Mbit/s; null = unlimited
    server_up_mbps: float | None = None  # server ingress shared max-min fairly by all uploads, Mbit/s; null = unlimited
    spread: float = 0.0  # σ of mean-one lognormal factors on each client's latency, down and up rate; 0 = identical
    trace: str | None = None  # CSV client,time,down_mbps,up_mbps: time-varying client rates (fedsim.sim.link_rates)

    def __post_init__(self) -> None:
        require(self.latency_s >= 0, "network.latency_s", "≥ 0", self.latency_s)
        require(self.down_mbps > 0, "network.down_mbps", "> 0", self.down_mbps)
        require(self.up_mbps > 0, "network.up_mbps", "> 0", self.up_mbps)
        for key in ("server_down_mbps", "server_up_mbps"):
            value = getattr(self, key)
            require(value is None or value > 0, f"network.{key}", "> 0, or null for unlimited", value)
        require(self.spread >= 0, "network.spread", "≥ 0", self.spread)


@dataclass
class ComputeConfig:
    """Where the real torch work runs, and how long it takes on the virtual clock."""

    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    cost_per_sample_s: float = 0.002  # virtual seconds per training row on a speed-1 client
    speed_dist: str = "lognormal"  # fixed | lognormal | uniform
    speed_spread: float = 0.3  # σ of the lognormal, or half-width of the uniform
    batched: str = "auto"  # auto | true | false: train a round's clients stacked (auto: per model and device)
    system_only: bool = False  # surrogate learner, no torch training (failure/dropout/τ studies at event-loop speed)
    surrogate_final_accuracy: float = 0.95  # system-only: accuracy approached as useful work grows
    surrogate_scale_epochs: float = 3.0  # system-only: epochs of useful work that close 63 % of the gap
    precision: str = "32"  # 32 | bf16-mixed (bfloat16 autocast, float32 master weights) | auto (bf16 where native)
    straggler_share: float = 0.0  # share of each round's clients that can do only 1..E of the E local epochs (FedProx's systems heterogeneity)

    def __post_init__(self) -> None:
        self.batched = str(self.batched).lower()
        self.precision = str(self.precision).lower()  # hydra hands over compute.precision=32 as an int
        require(self.precision in ("32", "bf16-mixed", "auto"), "compute.precision", "32, bf16-mixed or auto", self.precision)
        require(self.batched in ("auto", "true", "false"), "compute.batched", "auto, true or false", self.batched)
        require(0.5 <= self.surrogate_final_accuracy <= 1, "compute.surrogate_final_accuracy", "in [0.5, 1]", self.surrogate_final_accuracy)
        require(self.surrogate_scale_epochs > 0, "compute.surrogate_scale_epochs", "> 0", self.surrogate_scale_epochs)
        require(self.device in ("auto", "cpu", "cuda"), "compute.device", "auto, cpu or cuda", self.device)
        require(self.threads >= 0, "compute.threads", "≥ 0", self.threads)
        require(0 <= self.straggler_share < 1, "compute.straggler_share", "in [0, 1)", self.straggler_share)
        require(self.cost_per_sample_s >= 0, "compute.cost_per_sample_s", "≥ 0", self.cost_per_sample_s)
        require(self.speed_dist in ("fixed", "lognormal", "uniform"), "compute.speed_dist", "fixed, lognormal or uniform", self.speed_dist)
        require(self.speed_spread >= 0 and (self.speed_dist != "uniform" or self.speed_spread < 1), "compute.speed_spread", "≥ 0 (< 1 for uniform)", self.speed_spread)


@dataclass
class RunConfig:
    """Rounds, stopping rule, round policy, seed and outputs."""

    seed: int = 0
    max_rounds: int = 10  # rounds; under an asynchronous strategy, model versions
    max_time_s: float = math.inf  # virtual seconds: the run ends at this instant, an open round unrecorded (a budget that compares protocols)
    patience: int = 0  # rounds without val-loss improvement before stopping; 0 = off
    min_delta: float = 0.0
    round_policy: str = "wait_all"  # wait_all | deadline
    deadline_s: float = math.inf  # virtual seconds after broadcast (deadline policy)
    aggregation_s: float = 0.1  # virtual seconds the server spends aggregating
    target_accuracy: float = 0.9  # summary reports the virtual time until the task's target metric first reaches it (accuracy; R² for regression)
    client_metrics: bool = False  # also write clients.csv (one row per client update)
    figure: bool = True  # write learning_curve.png
    client_eval: bool = False  # score each client's (personalised) model on its own test rows every round: client_eval.csv
    train_eval: bool = False  # also score the global model's loss on all clients' training rows every round: global_train_loss (FedProx's training loss)
    resume: bool = False  # continue from the newest snapshot in the run directory (a multirun re-run does so by itself)
    snapshot_every_s: float = 30.0  # write a snapshot at a round boundary at most this often (wall seconds; 0 = every round)
    keep_snapshots: int = 2  # snapshots kept on disk (older ones are deleted)
    on_divergence: str = "stop"  # NaN/inf loss or weights in training: stop (one line naming where) | skip_client (drop the update) | ignore
    repeats: int = 1  # > 1: run seeds seed … seed + repeats − 1 (into seed_<s>/) and report their mean
    objective: str | None = None  # what a job returns to a sweeper: final_<metric> (a metric the task reports) | virtual_s | time_to_target_s; null: final_<the task's target metric>
    aggregation: str = "constant"  # constant | linear | measured: time beyond aggregation_s (fedsim.fl.aggregation_cost)
    aggregation_per_param_s: float = 2e-9  # linear: virtual s per update × parameter (FedAvg's sum measured 1.0–1.8 ns on one core)
    aggregation_scale: float = 1.0  # measured: virtual seconds per wall second of the real aggregation
    events_max_rows: int = 1_000_000  # events.csv holds at most this many rows: above it, the whole histories of the first clients that fit (+ event_counts.csv)

    def __post_init__(self) -> None:
        require(self.max_rounds >= 1, "run.max_rounds", "≥ 1", self.max_rounds)
        require(self.max_time_s > 0, "run.max_time_s", "> 0 (inf: no budget)", self.max_time_s, finite=False)
        require(self.patience >= 0, "run.patience", "≥ 0", self.patience)
        require(self.round_policy in ("wait_all", "deadline"), "run.round_policy", "wait_all or deadline", self.round_policy)
        require(self.deadline_s > 0, "run.deadline_s", "> 0 (inf: no deadline)", self.deadline_s, finite=False)
        require(self.aggregation_s >= 0, "run.aggregation_s", "≥ 0", self.aggregation_s)
        require(0 < self.target_accuracy <= 1, "run.target_accuracy", "in (0, 1]", self.target_accuracy)
        require(self.snapshot_every_s >= 0, "run.snapshot_every_s", "≥ 0", self.snapshot_every_s)
        require(self.keep_snapshots >= 1, "run.keep_snapshots", "≥ 1", self.keep_snapshots)
        require(self.on_divergence in ("stop", "skip_client", "ignore"), "run.on_divergence", "stop, skip_client or ignore", self.on_divergence)
        require(self.repeats >= 1, "run.repeats", "≥ 1", self.repeats)
        require(self.objective is None or self.objective in OBJECTIVES or self.objective.startswith("final_"), "run.objective", "final_<metric>, " + " or ".join(OBJECTIVES), self.objective)
        require(self.aggregation in AGGREGATION_KINDS, "run.aggregation", ", ".join(AGGREGATION_KINDS), self.aggregation)
        require(self.aggregation_per_param_s >= 0, "run.aggregation_per_param_s", "≥ 0", self.aggregation_per_param_s)
        require(self.aggregation_scale > 0, "run.aggregation_scale", "> 0", self.aggregation_scale)
        require(self.events_max_rows >= 1, "run.events_max_rows", "≥ 1", self.events_max_rows)


@dataclass
class CheckpointConfig:
    """Client checkpoints every τ of local compute; each costs δ = delta_s + bytes ÷ storage bandwidth."""

    enabled: bool = False
    tau_s: Any = 1.0  # τ in virtual seconds of local compute; auto: τ* of the failure law; adaptive: per client, refitted
    tau_steps: int = 0  # > 0: τ counted in local steps instead of seconds
    delta_s: float = 0.05  # fixed part of the checkpoint cost, virtual seconds
    storage_mbps: float = 2000.0  # storage write bandwidth, Mbit/s (inf: writes cost only delta_s)
    restart_s: float = 0.5  # R: virtual seconds to restart from a checkpoint
    server: bool = True  # the server also checkpoints the global model each round
    on_disk: bool = False  # write checkpoint files (under the run directory) instead of memory
    model: str = "renewal"  # auto/adaptive: failure model of C(τ) (renewal | segment | paper; fedsim.checkpoint.cost)
    refit_every: int = 1  # adaptive: refit after every n-th failure of the client, or every n-th round
    refit_on: str = "failures"  # adaptive: failures | rounds
    min_failures: int = 5  # adaptive: own failures before the client's own fit replaces the prior's k
    prior_failures: float = 1.0  # adaptive: weight of the prior law (the configured one), in failures

    def __post_init__(self) -> None:
        self.tau_s = self.tau_s.lower() if isinstance(self.tau_s, str) else self.tau_s
        named = self.tau_s in TAU_RULES
        require(named or (isinstance(self.tau_s, (int, float)) and not isinstance(self.tau_s, bool) and self.tau_s > 0), "checkpoint.tau_s", "> 0, auto or adaptive", self.tau_s)
        self.tau_s = self.tau_s if named else float(self.tau_s)
        require(not named or self.tau_steps == 0, "checkpoint.tau_steps", f"0 with checkpoint.tau_s={self.tau_s}", self.tau_steps)
        require(self.model in ("renewal", "segment", "paper"), "checkpoint.model", "renewal, segment or paper (the engine's clocks renew a node at repair)", self.model)
        require(self.refit_every >= 1, "checkpoint.refit_every", "≥ 1", self.refit_every)
        require(self.refit_on in ("failures", "rounds"), "checkpoint.refit_on", "failures or rounds", self.refit_on)
        require(self.min_failures >= 2, "checkpoint.min_failures", "≥ 2 (a Weibull fit needs two failures)", self.min_failures)
        require(self.prior_failures > 0, "checkpoint.prior_failures", "> 0", self.prior_failures)
        require(self.tau_steps >= 0, "checkpoint.tau_steps", "≥ 0", self.tau_steps)
        require(self.delta_s >= 0, "checkpoint.delta_s", "≥ 0", self.delta_s)
        require(self.storage_mbps > 0, "checkpoint.storage_mbps", "> 0 (inf allowed)", self.storage_mbps, finite=False)
        require(self.restart_s >= 0, "checkpoint.restart_s", "≥ 0", self.restart_s)


@dataclass
class RecoveryConfig:
    """What happens after a failure: on the client, and at the server's aggregation."""

    client: str = "reinit_global"  # reinit_global | restore_checkpoint
    aggregation: str = "wait"  # wait | redistribute | drop (applies once a failure is detected)
    wait_deadline_s: float = math.inf  # wait policy: give up this long after detection
    detection: bool = False  # heartbeats; the server learns of failures only through them
    heartbeat_s: float = 1.0  # heartbeat period, virtual seconds
    timeout_s: float = 3.0  # silence after which a client is declared failed

    def __post_init__(self) -> None:
        require(self.client in ("reinit_global", "restore_checkpoint"), "recovery.client", "reinit_global or restore_checkpoint", self.client)
        require(self.aggregation in ("wait", "redistribute", "drop"), "recovery.aggregation", "wait, redistribute or drop", self.aggregation)
        require(self.wait_deadline_s > 0, "recovery.wait_deadline_s", "> 0 (inf: wait for ever)", self.wait_deadline_s, finite=False)
        require(self.heartbeat_s > 0, "recovery.heartbeat_s", "> 0", self.heartbeat_s)
        require(self.timeout_s > self.heartbeat_s, "recovery.timeout_s", "> recovery.heartbeat_s", self.timeout_s)


@dataclass
class BinaryAnomalyConfig:
    """Binary anomaly detection (fedsim.tasks.BinaryAnomalyDetection): labels 0/1, AUC and flags at a threshold."""

    _target_: str = "fedsim.tasks.BinaryAnomalyDetection"
    anomaly_ratio: float | None = None  # share flagged by a percentile threshold (DAGMM); null: the training rows' share

    def __post_init__(self) -> None:
        require(self.anomaly_ratio is None or 0 < self.anomaly_ratio < 1, "task.anomaly_ratio", "in (0, 1) or null", self.anomaly_ratio)


@dataclass
class ClassificationConfig:
    """Multi-class classification (fedsim.tasks.Classification): cross-entropy, accuracy, macro-F1, per-class recall."""

    _target_: str = "fedsim.tasks.Classification"
    num_classes: int | None = None  # null: from the data
    top_k: int = 5  # top-k accuracy when there are more than k classes; 0: never
    max_class_columns: int = 20  # recall_<c> columns only up to this many classes

    def __post_init__(self) -> None:
        require(self.num_classes is None or self.num_classes >= 2, "task.num_classes", "≥ 2 or null", self.num_classes)
        require(self.top_k >= 0, "task.top_k", "≥ 0", self.top_k)
        require(self.max_class_columns >= 0, "task.max_class_columns", "≥ 0", self.max_class_columns)


@dataclass
class RegressionConfig:
    """Regression (fedsim.tasks.Regression): MSE; reports MSE, MAE and R²."""

    _target_: str = "fedsim.tasks.Regression"
    outputs_per_row: int | None = None  # null: from the data

    def __post_init__(self) -> None:
        require(self.outputs_per_row is None or self.outputs_per_row >= 1, "task.outputs_per_row", "≥ 1 or null", self.outputs_per_row)


@dataclass
class Config:
    """The whole run; each field is one config group under ``conf/``.

    ``model``, ``task`` and ``strategy`` are a class (or function) named by ``_target_``
    and its arguments: fedsim's own come with schemas, a user's from their own YAML.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: Any = MISSING
    task: Any = MISSING
    strategy: Any = MISSING
    failure: FailureConfig = field(default_factory=FailureConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    run: RunConfig = field(default_factory=RunConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)

    def __post_init__(self) -> None:
        if isinstance(self.strategy, dict):  # a user's strategy YAML, no schema
            self.strategy = PluginStrategyConfig.from_mapping(self.strategy)
        if self.data.declared_rows is not None and not self.compute.system_only:
            raise FedsimError("data.declared_rows needs compute.system_only=true (real training needs real rows); drop it or add compute.system_only=true")
        if self.compute.system_only and self.run.aggregation == "measured":
            raise FedsimError("run.aggregation=measured times the real aggregation, which compute.system_only=true does not do; use linear")


@functools.cache
def register_configs() -> None:
    """Put the schemas in hydra's ConfigStore, once per process: the store outlives every compose, and storing
    again (a sixth of a bad config's one-line error) would change nothing."""
    from fedsim.data.synthetic import SyntheticSource

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="strategy", name="base_schema", node=StrategyConfig)
    cs.store(group="task", name="binary_anomaly_schema", node=BinaryAnomalyConfig)
    cs.store(group="task", name="classification_schema", node=ClassificationConfig)
    cs.store(group="task", name="regression_schema", node=RegressionConfig)
    cs.store(group="strategy", name="fedprox_schema", node=FedProxConfig)
    cs.store(group="strategy", name="fedopt_schema", node=FedOptConfig)
    cs.store(group="strategy", name="fedl2p_schema", node=FedL2PConfig)
    cs.store(group="strategy", name="fedasync_schema", node=FedAsyncConfig)
    cs.store(group="strategy", name="fedbuff_schema", node=FedBuffConfig)
    cs.store(group="model", name="dnn_schema", node=DNNConfig)
    cs.store(group="data/source", name="synthetic_schema", node=SyntheticSource)
