"""Datasets (embedded synthetic default, real loaders, built-in multi-class problems) and client partitioners."""

from fedsim.data.dataset import Dataset

__all__ = ["Dataset"]
