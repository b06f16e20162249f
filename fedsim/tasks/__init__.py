"""Tasks: what a federation learns and how it is scored (``task=`` in the config)."""

from fedsim.tasks.anomaly import BinaryAnomalyDetection
from fedsim.tasks.base import Task
from fedsim.tasks.classification import Classification
from fedsim.tasks.regression import Regression

__all__ = ["Task", "BinaryAnomalyDetection", "Classification", "Regression"]
