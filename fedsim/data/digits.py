"""A small image task without a download: scikit-learn's 8×8 handwritten digits.

1,797 grey-scale images of the digits 0–9 (the UCI optical-recognition test set, shipped
inside scikit-learn as ``sklearn.datasets.load_digits``), as ``(n, 1, 8, 8)`` float32 in
[0, 1], so a CNN trains on them in seconds on a CPU. The test rows are a seeded
stratified sample, so every class keeps its share on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.data.dataset import Dataset
from fedsim.data.partition import stratified_sample
from fedsim.errors import FedsimError
from fedsim.seeding import rng

MAX_INTENSITY = 16.0  # load_digits' pixels count 0–16 set cells of a 4×4 block


@dataclass
class DigitsSource:
    """Config of :func:`load_digits` (hydra ``data/source=digits``); the split's seed is ``run.seed``."""

    _target_: str = "fedsim.data.digits.load_digits"
    test_fraction: float = 0.25
    """Held-out share of each digit."""


def load_digits(*, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """The digits as ``(n, 1, 8, 8)`` images scaled to [0, 1], int64 labels 0–9, split stratified by digit."""
    if not 0 < test_fraction < 1:
        raise FedsimError(f"data.source.test_fraction={test_fraction!r} is out of range: must be in (0, 1); fix the override or conf/data/source/digits.yaml")
    from sklearn.datasets import load_digits as sklearn_digits  # loaded only when the digits are used

    bunch = sklearn_digits()
    x = (bunch.images / MAX_INTENSITY).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    test = np.zeros(len(y), dtype=bool)
    test[stratified_sample(y, int(round(test_fraction * len(y))), rng(seed, "digits-split"))] = True
    return Dataset(
        x_train=x[~test],
        y_train=y[~test],
        x_test=x[test],
        y_test=y[test],
        feature_names=tuple(f"px{r}{c}" for r in range(8) for c in range(8)),
        name="digits",
    )
