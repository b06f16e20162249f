"""The in-memory form every loader produces and every partitioner consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TabularData:
    """Preprocessed train/test arrays of one dataset.

    ``x_*`` are float32 ``(n, d)`` matrices, already encoded and scaled (scalers fit on
    train only). ``y_*`` are binary int64 labels (1 = anomaly/attack). ``category_*`` hold
    the finer attack label of each row (e.g. ``"smurf"``, ``"Normal"``) so partitioners
    can split by attack type.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    category_train: np.ndarray | None = None
    category_test: np.ndarray | None = None
    name: str = "data"
    info: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError("train and test must have the same number of features")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("features and labels must have the same number of rows")

    @property
    def num_features(self) -> int:
        """Input width, taken from the data (never a constant)."""
        return int(self.x_train.shape[1])
