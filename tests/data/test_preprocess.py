"""The shared pipeline: one-hot widths, train-only scaling, stratified splits, BOM-safe reads."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from fedsim.data import preprocess
from fedsim.errors import FedsimError


def _table() -> preprocess.ParsedTable:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 100.0], "c": ["x", "y", "x", "z"]})
    return preprocess.parse_frame(
        frame, numeric=["a"], categorical=["c"], label=np.array([0, 1, 0, 1]), category=np.array(["n", "k", "n", "k"])
    )


def test_one_hot_width_and_names_come_from_the_data() -> None:
    table = _table()
    assert table.vocab == (("x", "y", "z"),)
    x = preprocess.encode(table, np.arange(4), preprocess.fit_scaler(table.numeric, "none"))
    assert x.shape == (4, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 1:].sum(1), 1.0)
    assert preprocess.feature_names(table) == ("a", "c=x", "c=y", "c=z")


def test_scaler_uses_training_rows_only() -> None:
    table = _table()
    data = preprocess.to_tabular(table, np.array([0, 1, 2]), np.array([3]), scaling="standard", name="t", info={})
    np.testing.assert_allclose(data.x_train[:, 0].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(data.x_train[:, 0].std(), 1.0, atol=1e-6)
    assert data.x_test[0, 0] == pytest.approx((100.0 - 2.0) / np.std([1.0, 2.0, 3.0]), rel=1e-5)


def test_minmax_and_constant_columns() -> None:
    scaler = preprocess.fit_scaler(np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32), "minmax")
    np.testing.assert_allclose(scaler(np.array([[2.0, 5.0]], dtype=np.float32)), [[0.5, 0.0]])
    with pytest.raises(FedsimError):
        preprocess.fit_scaler(np.zeros((2, 1)), "robust")  # type: ignore[arg-type]


def test_stratified_split_keeps_proportions_and_is_seeded() -> None:
    strata = np.array(["a"] * 100 + ["b"] * 10)
    train, test = preprocess.stratified_split(strata, 0.3, np.random.default_rng(1))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 110
    assert (strata[test] == "a").sum() == 30 and (strata[test] == "b").sum() == 3
    again, _ = preprocess.stratified_split(strata, 0.3, np.random.default_rng(1))
    np.testing.assert_array_equal(train, again)


def test_byte_order_mark_is_dropped(tmp_path) -> None:
    path = tmp_path / "bom.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\ufeffid,v\n1,2.5\n2,3.5\n")
    for max_rows in (None, 1):
        frame = preprocess.read_csv(path, names=None, dtype={"id": np.int64, "v": np.float32}, max_rows=max_rows)
        assert list(frame.columns) == ["id", "v"]


def test_missing_file_is_one_line_with_the_fix(tmp_path) -> None:
    with pytest.raises(FedsimError) as err:
        preprocess.resolve(None, tmp_path / "nope.gz", what="X file", config_key="data.source.path")
    message = str(err.value)
    assert "\n" not in message and "nope.gz" in message and "data.source.path=" in message


def test_parsed_table_round_trips_through_arrays() -> None:
    table = _table()
    again = preprocess.ParsedTable.from_arrays(table.to_arrays())
    assert again.vocab == table.vocab and again.numeric_names == table.numeric_names
    np.testing.assert_array_equal(again.category, table.category)
