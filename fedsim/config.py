"""Typed structured configs, one dataclass per hydra config group.

Hydra composes YAML from ``conf/`` onto these schemas (unknown keys are rejected),
and ``__post_init__`` checks every value when the config becomes objects, so a bad
setting stops the run with one line naming the key and its allowed range. Units are
in the field comments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from fedsim.errors import FedsimError
from fedsim.fl.aggregation_cost import KINDS as AGGREGATION_KINDS
from fedsim.models.dnn import PAPER_HIDDEN
from fedsim.train.local import OPTIMIZERS

TAU_RULES = ("auto", "adaptive")  # checkpoint.tau_s values that are rules, not numbers
PARTITIONS = ("iid", "dirichlet", "natural")  # data.partition
OBJECTIVES = ("virtual_s", "time_to_target_s")  # run.objective, besides final_<metric> of the task's metrics


def _require(ok: bool, key: str, allowed: str, value: object, *, finite: bool = True) -> None:
    """One line naming the key, its value and the allowed range; NaN and ±inf fail unless ``finite=False``."""
    if finite and isinstance(value, float) and not math.isfinite(value):
        ok, allowed = False, f"{allowed} and finite"
    if not ok:
        raise FedsimError(f"{key}={value!r} is out of range: must be {allowed}; fix the override or conf/ file")


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
        _require(self.max_rows is None or self.max_rows >= 10, "data.max_rows", "≥ 10 or null", self.max_rows)
        _require(self.declared_rows is None or self.declared_rows >= self.num_clients, "data.declared_rows", "≥ data.num_clients or null", self.declared_rows)
        _require(self.declared_features >= 1, "data.declared_features", "≥ 1", self.declared_features)
        _require(self.num_clients >= 1, "data.num_clients", "≥ 1", self.num_clients)
        _require(self.partition in PARTITIONS, "data.partition", ", ".join(PARTITIONS), self.partition)
        _require(self.alpha > 0 if self.partition == "dirichlet" else self.alpha >= 0, "data.alpha", "> 0 under partition=dirichlet, else ≥ 0", self.alpha)
        _require(self.beta >= 0, "data.beta", "≥ 0", self.beta)
        _require(0 < self.val_fraction < 1, "data.val_fraction", "in (0, 1)", self.val_fraction)


@dataclass
class DNNConfig:
    """The checkpointing paper's DNN (fedsim.models.dnn.AnomalyDNN)."""

    _target_: str = "fedsim.models.dnn.AnomalyDNN"
    hidden: list[int] = field(default_factory=lambda: list(PAPER_HIDDEN))
    dropout: float = 0.2  # on the last three hidden layers
    batch_norm: bool = True

    def __post_init__(self) -> None:
        _require(0 <= self.dropout < 1, "model.dropout", "in [0, 1)", self.dropout)
        _require(all(h > 0 for h in self.hidden), "model.hidden", "positive layer widths", self.hidden)


@dataclass
class StrategyConfig:
    """Client selection, aggregation (the class ``_target_`` names) and local training.

    ``fedavg`` and ``proposed`` (FedAvg aggregation plus the paper's fault tolerance)
    use this schema; strategies with settings of their own extend it below, so a key
    that the chosen strategy does not have is rejected. Every field but the local
    training and straggler ones (:data:`ENGINE_KEYS`) goes to the strategy's constructor. A user's
    strategy YAML without a schema becomes a :class:`PluginStrategyConfig`.
    """

    _target_: str = "fedsim.fl.strategies.FedAvg"
    name: str = "fedavg"  # a label for tables and figures
    fraction: float = 1.0  # share of clients selected per round
    min_clients: int = 1
    local_epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3  # the clients' learning rate
    optimizer: str = "adam"  # the clients' optimiser: adam (the checkpointing paper's) | sgd (FedProx's)
    momentum: float = 0.0  # sgd: heavy-ball momentum
    stragglers: str = "drop"  # drop | partial: stragglers (compute.straggler_share, or late under a deadline) send what they did (FedProx)

    def constructor_kwargs(self) -> dict[str, Any]:
        """The strategy's own settings: every field but those the engine reads (:data:`ENGINE_KEYS`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ENGINE_KEYS}

    def __post_init__(self) -> None:
        _require(self.stragglers in ("drop", "partial"), "strategy.stragglers", "drop or partial", self.stragglers)
        _require(self.optimizer in OPTIMIZERS, "strategy.optimizer", " or ".join(OPTIMIZERS), self.optimizer)
        _require(0 <= self.momentum < 1, "strategy.momentum", "in [0, 1)", self.momentum)
        _require(0 < self.fraction <= 1, "strategy.fraction", "in (0, 1]", self.fraction)
        _require(self.min_clients >= 1, "strategy.min_clients", "≥ 1", self.min_clients)
        _require(self.local_epochs >= 1, "strategy.local_epochs", "≥ 1", self.local_epochs)
        _require(self.batch_size >= 2, "strategy.batch_size", "≥ 2", self.batch_size)
        _require(self.lr > 0, "strategy.lr", "> 0", self.lr)


ENGINE_KEYS = ("_target_", "name", "local_epochs", "batch_size", "lr", "optimizer", "momentum", "stragglers")  # strategy keys the engine reads


@dataclass
class PluginStrategyConfig(StrategyConfig):
    """A user's strategy from a YAML without a schema: the base fields, and ``options`` for its constructor."""

    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, node: dict[str, Any]) -> PluginStrategyConfig:
        """Split a strategy node into the base fields and the rest (the constructor's own keywords)."""
        base = {f.name for f in fields(StrategyConfig)}
        known = {k: v for k, v in node.items() if k in base}
        _require("_target_" in known, "strategy._target_", "the strategy's class (e.g. mypkg.Median)", known.get("_target_"))
        known.setdefault("name", str(known["_target_"]).rsplit(".", 1)[-1].lower())
        return cls(**known, options={k: v for k, v in node.items() if k not in base})

    def constructor_kwargs(self) -> dict[str, Any]:
        """The base fields the constructor takes, and the plug-in's own options."""
        return {**{k: v for k, v in super().constructor_kwargs().items() if k != "options"}, **self.options}


@dataclass
class FedProxConfig(StrategyConfig):
    """FedProx: FedAvg plus a proximal term μ/2·‖w − w_global‖² in each client's loss."""

    _target_: str = "fedsim.fl.strategies.FedProx"
    name: str = "fedprox"
    mu: float = 0.01  # proximal weight; 0 is FedAvg exactly


    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.mu >= 0, "strategy.mu", "≥ 0", self.mu)


@dataclass
class FedOptConfig(StrategyConfig):
    """FedAdam / FedYogi: an adaptive optimiser on the server (Reddi et al., 2021)."""

    _target_: str = "fedsim.fl.strategies.FedAdam"  # or fedsim.fl.strategies.FedYogi
    name: str = "fedadam"
    server_lr: float = 0.01  # η
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3  # adaptivity τ: floor of the denominator, and √v₀


    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.server_lr > 0, "strategy.server_lr", "> 0", self.server_lr)
        _require(0 <= self.beta1 < 1, "strategy.beta1", "in [0, 1)", self.beta1)
        _require(0 <= self.beta2 < 1, "strategy.beta2", "in [0, 1)", self.beta2)
        _require(self.tau > 0, "strategy.tau", "> 0", self.tau)


@dataclass
class AsyncConfig(StrategyConfig):
    """What every asynchronous strategy takes: clients training at once, and the staleness bound."""

    concurrency: int | None = None  # clients training at once; null: as many as strategy.fraction selects
    max_staleness: int | None = None  # updates staler than this many versions are dropped; null: none are

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.concurrency is None or self.concurrency >= 1, "strategy.concurrency", "≥ 1 or null", self.concurrency)
        _require(self.max_staleness is None or self.max_staleness >= 0, "strategy.max_staleness", "≥ 0 or null", self.max_staleness)


@dataclass
class FedAsyncConfig(AsyncConfig):
    """FedAsync (Xie et al., 2019): each update mixed in at once with α·s(staleness)."""

    _target_: str = "fedsim.fl.strategies.FedAsync"
    name: str = "fedasync"
    alpha: float = 0.6  # mixing weight α
    staleness: str = "polynomial"  # s(): constant | polynomial (1 + staleness)^−a | hinge (1 up to b, then 1/(a(staleness − b) + 1))
    a: float = 0.5
    b: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 < self.alpha <= 1, "strategy.alpha", "in (0, 1]", self.alpha)
        _require(self.staleness in ("constant", "polynomial", "hinge"), "strategy.staleness", "constant, polynomial or hinge", self.staleness)
        _require(self.a >= 0, "strategy.a", "≥ 0", self.a)
        _require(self.b >= 0, "strategy.b", "≥ 0", self.b)


@dataclass
class FedBuffConfig(AsyncConfig):
    """FedBuff (Nguyen et al., AISTATS 2022): K staleness-weighted client changes per server step."""

    _target_: str = "fedsim.fl.strategies.FedBuff"
    name: str = "fedbuff"
    buffer_size: int = 10  # K
    server_lr: float = 1.0  # η_g
    staleness_weighting: bool = True  # weight each change 1/√(1 + staleness)

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.buffer_size >= 1, "strategy.buffer_size", "≥ 1", self.buffer_size)
        _require(self.server_lr > 0, "strategy.server_lr", "> 0", self.server_lr)


@dataclass
class FedL2PConfig(StrategyConfig):
    """FedL2P: FedAvg's global model plus meta-nets that personalise it per client (fedsim.fl.strategies.fedl2p)."""

    _target_: str = "fedsim.fl.strategies.fedl2p.fedl2p"
    name: str = "fedl2p"
    finetune_steps: int = 5  # SGD steps of a client's personalisation (each is also unrolled for the hypergradient)
    finetune_batch_size: int = 32
    finetune_lr: float = 0.01  # SGD rate that the LR-net's per-tensor multipliers scale
    lr_max: float = 100.0  # clamp of an LR multiplier
    meta_lr: float = 0.1  # server SGD step on the averaged, clamped hypergradient
    meta_clip: float = 1.0  # clamp of each hypergradient coordinate (the authors' ±1)
    meta_hidden: int = 100  # width of the meta-nets' hidden layers
    meta_val_fraction: float = 0.2  # share of a client's rows held out for its meta-validation loss


    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.finetune_steps >= 0, "strategy.finetune_steps", "≥ 0", self.finetune_steps)
        _require(self.finetune_batch_size >= 2, "strategy.finetune_batch_size", "≥ 2", self.finetune_batch_size)
        _require(self.finetune_lr > 0, "strategy.finetune_lr", "> 0", self.finetune_lr)
        _require(self.lr_max > 0, "strategy.lr_max", "> 0", self.lr_max)
        _require(self.meta_lr >= 0, "strategy.meta_lr", "≥ 0", self.meta_lr)
        _require(self.meta_clip > 0, "strategy.meta_clip", "> 0", self.meta_clip)
        _require(self.meta_hidden >= 1, "strategy.meta_hidden", "≥ 1", self.meta_hidden)
        _require(0 < self.meta_val_fraction < 1, "strategy.meta_val_fraction", "in (0, 1)", self.meta_val_fraction)


@dataclass
class FailureGroup:
    """One part of a mixed fleet: a ``share`` of the clients with Weibull shape k and scale λ (virtual s)."""

    share: float = 1.0
    shape: float = 1.5
    scale: float = 600.0

    def __post_init__(self) -> None:
        _require(0 < self.share <= 1, "failure.groups[].share", "in (0, 1]", self.share)
        _require(self.shape > 0, "failure.groups[].shape", "> 0", self.shape)
        _require(self.scale > 0, "failure.groups[].scale", "> 0", self.scale)


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
        _require(self.shape > 0, "failure.shape", "> 0", self.shape)
        _require(self.scale > 0, "failure.scale", "> 0", self.scale)
        _require(self.repair in ("fixed", "exponential", "lognormal"), "failure.repair", "fixed, exponential or lognormal", self.repair)
        _require(self.repair_mean_s >= 0, "failure.repair_mean_s", "≥ 0", self.repair_mean_s)
        _require(self.repair_cv >= 0, "failure.repair_cv", "≥ 0", self.repair_cv)
        _require(0 <= self.dropout < 1, "failure.dropout", "in [0, 1)", self.dropout)
        for part in ("link", "server"):
            _require(getattr(self, f"{part}_shape") > 0, f"failure.{part}_shape", "> 0", getattr(self, f"{part}_shape"))
            _require(getattr(self, f"{part}_scale") > 0, f"failure.{part}_scale", "> 0", getattr(self, f"{part}_scale"))
            _require(getattr(self, f"{part}_repair_mean_s") >= 0, f"failure.{part}_repair_mean_s", "≥ 0", getattr(self, f"{part}_repair_mean_s"))
        shares = sum(g.share for g in self.groups)
        _require(not self.groups or abs(shares - 1) < 1e-9, "failure.groups", "shares summing to 1", [g.share for g in self.groups])


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
        _require(self.latency_s >= 0, "network.latency_s", "≥ 0", self.latency_s)
        _require(self.down_mbps > 0, "network.down_mbps", "> 0", self.down_mbps)
        _require(self.up_mbps > 0, "network.up_mbps", "> 0", self.up_mbps)
        for key in ("server_down_mbps", "server_up_mbps"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"network.{key}", "> 0, or null for unlimited", value)
        _require(self.spread >= 0, "network.spread", "≥ 0", self.spread)


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
        _require(self.precision in ("32", "bf16-mixed", "auto"), "compute.precision", "32, bf16-mixed or auto", self.precision)
        _require(self.batched in ("auto", "true", "false"), "compute.batched", "auto, true or false", self.batched)
        _require(0.5 <= self.surrogate_final_accuracy <= 1, "compute.surrogate_final_accuracy", "in [0.5, 1]", self.surrogate_final_accuracy)
        _require(self.surrogate_scale_epochs > 0, "compute.surrogate_scale_epochs", "> 0", self.surrogate_scale_epochs)
        _require(self.device in ("auto", "cpu", "cuda"), "compute.device", "auto, cpu or cuda", self.device)
        _require(self.threads >= 0, "compute.threads", "≥ 0", self.threads)
        _require(0 <= self.straggler_share < 1, "compute.straggler_share", "in [0, 1)", self.straggler_share)
        _require(self.cost_per_sample_s >= 0, "compute.cost_per_sample_s", "≥ 0", self.cost_per_sample_s)
        _require(self.speed_dist in ("fixed", "lognormal", "uniform"), "compute.speed_dist", "fixed, lognormal or uniform", self.speed_dist)
        _require(self.speed_spread >= 0 and (self.speed_dist != "uniform" or self.speed_spread < 1), "compute.speed_spread", "≥ 0 (< 1 for uniform)", self.speed_spread)


@dataclass
class RunConfig:
    """Rounds, stopping rule, round policy, seed and outputs."""

    seed: int = 0
    max_rounds: int = 10  # rounds; under an asynchronous strategy, model versions
    max_time_s: float = math.inf  # virtual seconds: no round starts after this (a budget that compares protocols)
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
        _require(self.max_rounds >= 1, "run.max_rounds", "≥ 1", self.max_rounds)
        _require(self.max_time_s > 0, "run.max_time_s", "> 0 (inf: no budget)", self.max_time_s, finite=False)
        _require(self.patience >= 0, "run.patience", "≥ 0", self.patience)
        _require(self.round_policy in ("wait_all", "deadline"), "run.round_policy", "wait_all or deadline", self.round_policy)
        _require(self.deadline_s > 0, "run.deadline_s", "> 0 (inf: no deadline)", self.deadline_s, finite=False)
        _require(self.aggregation_s >= 0, "run.aggregation_s", "≥ 0", self.aggregation_s)
        _require(0 < self.target_accuracy <= 1, "run.target_accuracy", "in (0, 1]", self.target_accuracy)
        _require(self.snapshot_every_s >= 0, "run.snapshot_every_s", "≥ 0", self.snapshot_every_s)
        _require(self.keep_snapshots >= 1, "run.keep_snapshots", "≥ 1", self.keep_snapshots)
        _require(self.on_divergence in ("stop", "skip_client", "ignore"), "run.on_divergence", "stop, skip_client or ignore", self.on_divergence)
        _require(self.repeats >= 1, "run.repeats", "≥ 1", self.repeats)
        _require(self.objective is None or self.objective in OBJECTIVES or self.objective.startswith("final_"), "run.objective", "final_<metric>, " + " or ".join(OBJECTIVES), self.objective)
        _require(self.aggregation in AGGREGATION_KINDS, "run.aggregation", ", ".join(AGGREGATION_KINDS), self.aggregation)
        _require(self.aggregation_per_param_s >= 0, "run.aggregation_per_param_s", "≥ 0", self.aggregation_per_param_s)
        _require(self.aggregation_scale > 0, "run.aggregation_scale", "> 0", self.aggregation_scale)
        _require(self.events_max_rows >= 1, "run.events_max_rows", "≥ 1", self.events_max_rows)


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
        _require(named or (isinstance(self.tau_s, (int, float)) and not isinstance(self.tau_s, bool) and self.tau_s > 0), "checkpoint.tau_s", "> 0, auto or adaptive", self.tau_s)
        self.tau_s = self.tau_s if named else float(self.tau_s)
        _require(not named or self.tau_steps == 0, "checkpoint.tau_steps", f"0 with checkpoint.tau_s={self.tau_s}", self.tau_steps)
        _require(self.model in ("renewal", "segment", "paper"), "checkpoint.model", "renewal, segment or paper (the engine's clocks renew a node at repair)", self.model)
        _require(self.refit_every >= 1, "checkpoint.refit_every", "≥ 1", self.refit_every)
        _require(self.refit_on in ("failures", "rounds"), "checkpoint.refit_on", "failures or rounds", self.refit_on)
        _require(self.min_failures >= 2, "checkpoint.min_failures", "≥ 2 (a Weibull fit needs two failures)", self.min_failures)
        _require(self.prior_failures > 0, "checkpoint.prior_failures", "> 0", self.prior_failures)
        _require(self.tau_steps >= 0, "checkpoint.tau_steps", "≥ 0", self.tau_steps)
        _require(self.delta_s >= 0, "checkpoint.delta_s", "≥ 0", self.delta_s)
        _require(self.storage_mbps > 0, "checkpoint.storage_mbps", "> 0 (inf allowed)", self.storage_mbps, finite=False)
        _require(self.restart_s >= 0, "checkpoint.restart_s", "≥ 0", self.restart_s)


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
        _require(self.client in ("reinit_global", "restore_checkpoint"), "recovery.client", "reinit_global or restore_checkpoint", self.client)
        _require(self.aggregation in ("wait", "redistribute", "drop"), "recovery.aggregation", "wait, redistribute or drop", self.aggregation)
        _require(self.wait_deadline_s > 0, "recovery.wait_deadline_s", "> 0 (inf: wait for ever)", self.wait_deadline_s, finite=False)
        _require(self.heartbeat_s > 0, "recovery.heartbeat_s", "> 0", self.heartbeat_s)
        _require(self.timeout_s > self.heartbeat_s, "recovery.timeout_s", "> recovery.heartbeat_s", self.timeout_s)


@dataclass
class BinaryAnomalyConfig:
    """Binary anomaly detection (fedsim.tasks.BinaryAnomalyDetection): labels 0/1, AUC and flags at a threshold."""

    _target_: str = "fedsim.tasks.BinaryAnomalyDetection"
    anomaly_ratio: float | None = None  # share flagged by a percentile threshold (DAGMM); null: the training rows' share

    def __post_init__(self) -> None:
        _require(self.anomaly_ratio is None or 0 < self.anomaly_ratio < 1, "task.anomaly_ratio", "in (0, 1) or null", self.anomaly_ratio)


@dataclass
class ClassificationConfig:
    """Multi-class classification (fedsim.tasks.Classification): cross-entropy, accuracy, macro-F1, per-class recall."""

    _target_: str = "fedsim.tasks.Classification"
    num_classes: int | None = None  # null: from the data
    top_k: int = 5  # top-k accuracy when there are more than k classes; 0: never
    max_class_columns: int = 20  # recall_<c> columns only up to this many classes

    def __post_init__(self) -> None:
        _require(self.num_classes is None or self.num_classes >= 2, "task.num_classes", "≥ 2 or null", self.num_classes)
        _require(self.top_k >= 0, "task.top_k", "≥ 0", self.top_k)
        _require(self.max_class_columns >= 0, "task.max_class_columns", "≥ 0", self.max_class_columns)


@dataclass
class RegressionConfig:
    """Regression (fedsim.tasks.Regression): MSE; reports MSE, MAE and R²."""

    _target_: str = "fedsim.tasks.Regression"
    outputs_per_row: int | None = None  # null: from the data

    def __post_init__(self) -> None:
        _require(self.outputs_per_row is None or self.outputs_per_row >= 1, "task.outputs_per_row", "≥ 1 or null", self.outputs_per_row)


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


def register_configs() -> None:
    """Put the schemas in hydra's ConfigStore (idempotent)."""
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
