"""The typed configs of the ``strategy`` group: client selection, aggregation, the clients' training.

Each schema's ``_target_`` names the strategy class (or function) that
:mod:`fedsim.experiments.plugins` builds from the schema's own fields; the engine reads
the local-training and straggler fields (:data:`ENGINE_KEYS`) itself. A user's strategy
YAML without a schema becomes a :class:`PluginStrategyConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from fedsim.errors import require
from fedsim.train.local import OPTIMIZERS


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
        require(self.stragglers in ("drop", "partial"), "strategy.stragglers", "drop or partial", self.stragglers)
        require(self.optimizer in OPTIMIZERS, "strategy.optimizer", " or ".join(OPTIMIZERS), self.optimizer)
        require(0 <= self.momentum < 1, "strategy.momentum", "in [0, 1)", self.momentum)
        require(0 < self.fraction <= 1, "strategy.fraction", "in (0, 1]", self.fraction)
        require(self.min_clients >= 1, "strategy.min_clients", "≥ 1", self.min_clients)
        require(self.local_epochs >= 1, "strategy.local_epochs", "≥ 1", self.local_epochs)
        require(self.batch_size >= 2, "strategy.batch_size", "≥ 2", self.batch_size)
        require(self.lr > 0, "strategy.lr", "> 0", self.lr)


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
        require("_target_" in known, "strategy._target_", "the strategy's class (e.g. mypkg.Median)", known.get("_target_"))
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
        require(self.mu >= 0, "strategy.mu", "≥ 0", self.mu)


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
        require(self.server_lr > 0, "strategy.server_lr", "> 0", self.server_lr)
        require(0 <= self.beta1 < 1, "strategy.beta1", "in [0, 1)", self.beta1)
        require(0 <= self.beta2 < 1, "strategy.beta2", "in [0, 1)", self.beta2)
        require(self.tau > 0, "strategy.tau", "> 0", self.tau)


@dataclass
class AsyncConfig(StrategyConfig):
    """What every asynchronous strategy takes: clients training at once, and the staleness bound."""

    concurrency: int | None = None  # clients training at once; null: as many as strategy.fraction selects
    max_staleness: int | None = None  # updates staler than this many versions are dropped; null: none are

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.concurrency is None or self.concurrency >= 1, "strategy.concurrency", "≥ 1 or null", self.concurrency)
        require(self.max_staleness is None or self.max_staleness >= 0, "strategy.max_staleness", "≥ 0 or null", self.max_staleness)


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
        require(0 < self.alpha <= 1, "strategy.alpha", "in (0, 1]", self.alpha)
        require(self.staleness in ("constant", "polynomial", "hinge"), "strategy.staleness", "constant, polynomial or hinge", self.staleness)
        require(self.a >= 0, "strategy.a", "≥ 0", self.a)
        require(self.b >= 0, "strategy.b", "≥ 0", self.b)


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
        require(self.buffer_size >= 1, "strategy.buffer_size", "≥ 1", self.buffer_size)
        require(self.server_lr > 0, "strategy.server_lr", "> 0", self.server_lr)


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
        require(self.finetune_steps >= 0, "strategy.finetune_steps", "≥ 0", self.finetune_steps)
        require(self.finetune_batch_size >= 2, "strategy.finetune_batch_size", "≥ 2", self.finetune_batch_size)
        require(self.finetune_lr > 0, "strategy.finetune_lr", "> 0", self.finetune_lr)
        require(self.lr_max > 0, "strategy.lr_max", "> 0", self.lr_max)
        require(self.meta_lr >= 0, "strategy.meta_lr", "≥ 0", self.meta_lr)
        require(self.meta_clip > 0, "strategy.meta_clip", "> 0", self.meta_clip)
        require(self.meta_hidden >= 1, "strategy.meta_hidden", "≥ 1", self.meta_hidden)
        require(0 < self.meta_val_fraction < 1, "strategy.meta_val_fraction", "in (0, 1)", self.meta_val_fraction)
