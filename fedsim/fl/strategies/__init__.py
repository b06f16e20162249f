"""Federated strategies: each a small class on :class:`~fedsim.fl.strategies.base.Strategy` (synchronous) or
:class:`~fedsim.fl.strategies.base.AsyncStrategy` (asynchronous)."""

from fedsim.fl.strategies.base import AsyncStrategy, Strategy
from fedsim.fl.strategies.fedasync import FedAsync
from fedsim.fl.strategies.fedavg import FedAvg, FedProx
from fedsim.fl.strategies.fedbuff import FedBuff
from fedsim.fl.strategies.fedl2p import FedL2P
from fedsim.fl.strategies.fedopt import FedAdam, FedYogi

__all__ = ["Strategy", "AsyncStrategy", "FedAvg", "FedProx", "FedAdam", "FedYogi", "FedL2P", "FedAsync", "FedBuff"]
