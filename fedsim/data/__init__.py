"""Datasets (embedded synthetic default, real loaders) and client partitioners."""

from fedsim.data.dataset import TabularData

__all__ = ["TabularData"]
