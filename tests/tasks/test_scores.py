"""Evaluation metrics: the rank-based AUC without scipy.stats."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from fedsim.tasks.scores import auc_roc, average_ranks


def test_average_ranks_are_scipys_ranks_with_ties():
    g = np.random.default_rng(0)
    for n in [1, 2, 5, 100, 2000]:
        for tied in (False, True):
            v = (g.integers(0, max(2, n // 3), n) / 7 if tied else g.random(n)).astype(np.float32)
            assert np.array_equal(average_ranks(v), rankdata(v))


def test_auc_is_the_mann_whitney_statistic_and_nan_when_undefined():
    y = np.array([0, 0, 1, 1, 1])
    assert auc_roc(y, np.array([0.1, 0.4, 0.35, 0.8, 0.9])) == 5 / 6  # of 6 (pos, neg) pairs, 5 ordered right
    assert auc_roc(y, np.array([0.5] * 5)) == 0.5
    assert np.isnan(auc_roc(np.zeros(3, dtype=int), np.array([0.1, 0.2, 0.3])))
    assert np.isnan(auc_roc(y, np.array([0.1, np.nan, 0.3, 0.4, 0.5])))
