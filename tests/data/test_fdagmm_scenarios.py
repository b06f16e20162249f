"""The FDAGMM scenario partitions follow the paper's description (§4.1, Table 2, Fig. 4)."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.data import preprocess
from fedsim.data.fdagmm_scenarios import COMMON_ATTACKS, COMMON_SHARE, build_clients, scenario_rows


def _categories() -> np.ndarray:
    # Proportions like the 10% file, scaled down: two common types, a few rare ones, normals.
    counts = {"smurf": 28_079, "neptune": 10_720, "normal": 9_728, "satan": 159, "back": 220, "spy": 3, "land": 1}
    return np.repeat(np.array(list(counts)), list(counts.values()))


@pytest.mark.parametrize("scenario", [1, 2, 3, 4])
def test_attack_proportions_and_half_half_split(scenario: int) -> None:
    cats = _categories()
    share = COMMON_SHARE[scenario]
    c0, c1 = scenario_rows(cats, share, np.random.default_rng(scenario))
    every = np.concatenate([c0.train, c0.test, c1.train, c1.test])
    assert len(every) == len(cats) == len(np.unique(every))  # disjoint, covers the file
    for kind in np.unique(cats[cats != "normal"]):
        total = (cats == kind).sum()
        own0 = (cats[c0.train] == kind).sum() + (cats[c0.test] == kind).sum()
        expected = round(share * total) if kind in COMMON_ATTACKS else total
        assert own0 == expected
        for client in (c0, c1):
            tr, te = (cats[client.train] == kind).sum(), (cats[client.test] == kind).sum()
            assert tr == (tr + te) // 2  # half for training, the other half for testing
    for client in (c0, c1):
        assert (cats[client.train] != "normal").all()  # training sets hold attacks only
    ratios = [(cats[c.test] == "normal").sum() / (len(c.train) + len(c.test)) for c in (c0, c1)]
    overall = (cats == "normal").mean()
    assert ratios == pytest.approx([overall, overall], abs=2e-3)  # similar anomaly ratio


def test_rows_are_seeded() -> None:
    cats = _categories()
    a = scenario_rows(cats, 0.05, np.random.default_rng(7))
    b = scenario_rows(cats, 0.05, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0].test, b[0].test)


def test_clients_share_one_scaler_fit_on_training_rows() -> None:
    cats = np.array(["smurf"] * 6 + ["satan"] * 2 + ["normal"] * 2)
    numeric = np.arange(10, dtype=np.float32)[:, None]
    table = preprocess.ParsedTable(
        numeric=numeric, numeric_names=("v",), codes=np.zeros((10, 0), np.int32), categorical_names=(),
        vocab=(), label=(cats != "normal").astype(np.int64), category=cats,
    )  # fmt: skip
    rows = scenario_rows(cats, 0.5, np.random.default_rng(0))
    clients = build_clients(table, rows, scaling="minmax")
    train_values = np.concatenate([c.x_train[:, 0] for c in clients])
    assert train_values.min() == 0.0 and train_values.max() == 1.0
    for client in clients:
        np.testing.assert_array_equal(client.y_test, client.category_test == "normal")
        assert client.y_train.sum() == 0
