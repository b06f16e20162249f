"""The in-memory form every loader produces and every partitioner consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train/test arrays of one dataset, already encoded and scaled (scalers fit on train only).

    ``x_*`` hold one sample per row, of any shape: ``(n, d)`` tables, ``(n, C, H, W)``
    images, ``(n, T)`` token ids. ``y_*`` hold one target per row: an integer class
    (``int64``; 1 = anomaly/attack for anomaly detection) or a float target
    (``float32``, ``(n,)`` or ``(n, k)``); the task says which it expects. Optional per-row
    columns help partitioners: ``category_*`` a finer label (the attack type, e.g.
    ``"smurf"``) to split by, ``groups_*`` the natural owner of the row (device, writer,
    user) for ``data.partition=natural``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...] = ()
    category_train: np.ndarray | None = None
    category_test: np.ndarray | None = None
    name: str = "data"
    info: dict[str, object] = field(default_factory=dict)
    groups_train: np.ndarray | None = None
    groups_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"train and test samples must have the same shape (got {self.x_train.shape[1:]} and {self.x_test.shape[1:]})")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("samples and targets must have the same number of rows")
        for part, x, extra in (("train", self.x_train, (self.category_train, self.groups_train)), ("test", self.x_test, (self.category_test, self.groups_test))):
            if any(e is not None and len(e) != len(x) for e in extra):
                raise ValueError(f"category_{part} and groups_{part} need one entry per {part} row")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, taken from the data (never a constant)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_features(self) -> int:
        """Values per sample (the input width of a tabular model)."""
        return int(np.prod(self.input_shape, dtype=np.int64))
