"""KDD Cup 99 loader on a slice of the real 10% file (skipped only when it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.data import kddcup99
from fedsim.errors import FedsimError

needs_file = pytest.mark.skipif(
    not kddcup99.DEFAULT_PATH.is_file(), reason=f"real data absent: {kddcup99.DEFAULT_PATH} (../shared/datasets)"
)
ROWS = 20_000


@needs_file
def test_slice_shapes_labels_and_finite(tmp_path) -> None:
    data = kddcup99.load_kddcup99(max_rows=ROWS, cache_dir=tmp_path)
    assert len(data.x_train) + len(data.x_test) == ROWS
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    assert data.num_features == 38 + sum(1 for n in data.feature_names if "=" in n)
    np.testing.assert_array_equal(data.y_train, data.category_train != "normal")
    assert not any(c.endswith(".") for c in np.unique(data.category_train))


@needs_file
def test_scaler_is_fit_on_train_rows_only(tmp_path) -> None:
    data = kddcup99.load_kddcup99(max_rows=ROWS, cache_dir=tmp_path)
    numeric = data.x_train[:, : len(kddcup99.NUMERIC)]
    varying = numeric.std(0) > 0
    np.testing.assert_allclose(numeric.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(numeric.std(0)[varying], 1.0, atol=1e-3)
    assert np.abs(data.x_test[:, : len(kddcup99.NUMERIC)].mean(0)).max() > 1e-3  # test rows not refit


@needs_file
def test_whole_file_has_118_one_hot_width_and_paper_counts(tmp_path) -> None:
    table = kddcup99.read_kddcup99(cache_dir=tmp_path)
    assert len(table) == 494_021
    assert [len(v) for v in table.vocab] == [3, 66, 11]
    assert table.numeric.shape[1] + sum(len(v) for v in table.vocab) == 118
    counts = dict(zip(*np.unique(table.category, return_counts=True)))
    assert counts["smurf"] == 280_790 and counts["normal"] == 97_278 and counts["spy"] == 2
    again = kddcup99.read_kddcup99(cache_dir=tmp_path)  # from the cache
    np.testing.assert_array_equal(again.codes, table.codes)


def test_missing_file_names_path_and_config_key(tmp_path) -> None:
    with pytest.raises(FedsimError, match=r"KDD Cup 99 file not found: looked for .*data\.source\.path="):
        kddcup99.load_kddcup99(tmp_path / "absent.gz", cache_dir=tmp_path)


def test_source_config_targets_the_loader() -> None:
    assert kddcup99.KDDCup99Source()._target_ == "fedsim.data.kddcup99.load_kddcup99"
