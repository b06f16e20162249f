"""Federated strategies: each a small class on :class:`~fedsim.fl.strategies.base.Strategy`."""

from fedsim.fl.strategies.base import Strategy
from fedsim.fl.strategies.fedavg import FedAvg, FedProx
from fedsim.fl.strategies.fedl2p import FedL2P
from fedsim.fl.strategies.fedopt import FedAdam, FedYogi

__all__ = ["Strategy", "FedAvg", "FedProx", "FedAdam", "FedYogi", "FedL2P"]
