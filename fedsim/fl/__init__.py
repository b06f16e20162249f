"""Federated learning on the simulated clock: server and client processes, strategies."""
