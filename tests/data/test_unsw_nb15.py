"""UNSW-NB15 loader on a slice of the real 82,332-row partition (skipped only when absent)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from fedsim.data import unsw_nb15

needs_file = pytest.mark.skipif(
    not unsw_nb15.DEFAULT_PATH.is_file(), reason=f"real data absent: {unsw_nb15.DEFAULT_PATH} (../shared/datasets)"
)
ROWS = 5_000


@needs_file
def test_slice_is_split_stratified_with_train_only_scaling(tmp_path) -> None:
    data = unsw_nb15.load_unsw_nb15(max_rows=ROWS, test_fraction=0.3, cache_dir=tmp_path)
    assert len(data.x_train) + len(data.x_test) == ROWS
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    width = len(unsw_nb15.NUMERIC) + sum(1 for n in data.feature_names if "=" in n)
    assert data.num_features == width and data.feature_names[0] == "dur"  # BOM gone, id dropped
    numeric = data.x_train[:, : len(unsw_nb15.NUMERIC)]
    np.testing.assert_allclose(numeric.mean(0), 0.0, atol=1e-3)
    np.testing.assert_array_equal(data.y_train, data.category_train != "Normal")
    for cat in np.unique(data.category_train):
        share = (data.category_test == cat).sum() / ((data.category_train == cat).sum() + (data.category_test == cat).sum())
        assert abs(share - 0.3) < 0.1


@needs_file
def test_two_files_give_the_official_split(tmp_path) -> None:
    # A second "official" file made from the first rows of the real one, keeping its layout.
    with gzip.open(unsw_nb15.DEFAULT_PATH, "rt", encoding="utf-8") as src:
        lines = [next(src) for _ in range(301)]
    other = tmp_path / "test-set.csv.gz"
    with gzip.open(other, "wt", encoding="utf-8") as dst:
        dst.writelines(lines)
    data = unsw_nb15.load_unsw_nb15(max_rows=1000, test_path=other, cache_dir=tmp_path)
    assert (len(data.x_train), len(data.x_test)) == (1000, 300)
    assert data.info["split"] == "official training/testing files"
