"""scikit-learn's 8×8 digits as a small image task: shapes, scaling, a stratified seeded split, and a CNN run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsim.cli import main
from fedsim.data.digits import load_digits
from fedsim.errors import FedsimError


def test_images_in_unit_range_with_ten_classes():
    d = load_digits(seed=0)
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.input_shape == (1, 8, 8) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.min() == 0 and d.x_train.max() == 1
    assert set(np.unique(d.y_test)) == set(range(10))


def test_split_is_stratified_and_seeded():
    a, b, c = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    assert np.array_equal(a.x_test, b.x_test) and not np.array_equal(a.x_test, c.x_test)
    share = np.bincount(a.y_test, minlength=10) / np.bincount(np.concatenate([a.y_train, a.y_test]), minlength=10)
    assert np.allclose(share, 0.25, atol=0.01)


def test_bad_test_fraction_names_the_key():
    with pytest.raises(FedsimError, match="data.source.test_fraction=0"):
        load_digits(test_fraction=0)


@pytest.mark.slow
def test_cnn_learns_digits_through_the_cli(tmp_path, one_thread):
    main(["data=digits", "model=cnn", "task=classification", "data.num_clients=4", "run.max_rounds=3", "run.figure=false", f"hydra.run.dir={tmp_path}"])
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert {"accuracy", "macro_f1", *(f"recall_{c}" for c in range(10))} <= set(rounds.columns)
    assert rounds["accuracy"].iloc[-1] > 0.5  # chance: 0.1
