"""FedProx's Synthetic(α, β): shapes, the device power law, owners, seeding, and what α, β and iid change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsim.cli import main
from fedsim.data.fedprox_synthetic import device_sizes, load_fedprox_synthetic
from fedsim.errors import FedsimError


def label_shares(data, k: int) -> np.ndarray:
    y = data.y_train[data.groups_train == k]
    return np.bincount(y, minlength=10) / len(y)


def mean_distance_to_pooled(data, devices) -> float:
    """Mean total-variation distance between a device's label mix and everyone's."""
    pooled = np.bincount(data.y_train, minlength=10) / len(data.y_train)
    return float(np.mean([0.5 * np.abs(label_shares(data, k) - pooled).sum() for k in devices]))


@pytest.fixture(scope="module")
def one_one():
    return load_fedprox_synthetic(alpha=1, beta=1, seed=0)


def test_shapes_classes_and_dtypes(one_one):
    d = one_one
    assert d.input_shape == (60,) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert set(np.unique(np.concatenate([d.y_train, d.y_test]))) <= set(range(10))
    assert len(np.unique(d.y_train)) == 10  # 30 devices with different models cover every class


def test_device_sizes_follow_the_power_law_and_split_90_10(one_one):
    sizes = device_sizes(30, 0)
    assert sizes.min() >= 50 and len(sizes) == 30
    assert sizes.max() > 5 * np.median(sizes)  # heavy tail: lognormal(4, 2)
    for k, n in enumerate(sizes):
        train, test = np.sum(one_one.groups_train == k), np.sum(one_one.groups_test == k)
        assert (train, test) == (int(0.9 * n), n - int(0.9 * n))
    assert one_one.info["device_sizes"] == sizes.tolist()


def test_one_seed_one_dataset():
    a, b, c = (load_fedprox_synthetic(num_devices=5, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(device_sizes(5, 3), device_sizes(5, 4)) and len(a.y_train) != len(c.y_train)


def test_devices_see_different_label_mixes_unless_iid(one_one):
    iid = load_fedprox_synthetic(iid=True, seed=0)
    big = [k for k, n in enumerate(device_sizes(30, 0)) if n >= 300]
    assert len(big) >= 5
    assert mean_distance_to_pooled(one_one, big) > 0.4
    assert mean_distance_to_pooled(iid, big) < 0.1


def test_alpha_moves_only_the_labelling_models_mean_which_argmax_ignores():
    """u_k shifts every class's logit alike (see the module docstring): at the same draws α leaves the data as it is."""
    a, b = load_fedprox_synthetic(alpha=0, beta=1, num_devices=8, seed=1), load_fedprox_synthetic(alpha=4, beta=1, num_devices=8, seed=1)
    assert np.array_equal(a.x_train, b.x_train)
    assert np.mean(a.y_train == b.y_train) > 0.999


def test_beta_shifts_each_devices_inputs_by_one_constant():
    a, b = load_fedprox_synthetic(alpha=1, beta=0, num_devices=8, seed=1), load_fedprox_synthetic(alpha=1, beta=3, num_devices=8, seed=1)
    assert np.array_equal(a.groups_train, b.groups_train)
    shifts = []
    for k in range(8):
        diff = (b.x_train - a.x_train)[a.groups_train == k]
        assert np.allclose(diff, diff.mean(), atol=1e-5)  # B_k: one offset for every feature and row of the device
        shifts.append(diff.mean())
    assert np.std(shifts) > 1  # ~ β = 3 across devices
    assert np.mean(a.y_train != b.y_train) > 0.1  # moved inputs, other argmaxes


def test_zero_alpha_beta_allowed_and_iid_ignores_them():
    assert len(load_fedprox_synthetic(alpha=0, beta=0, num_devices=3).y_train) > 0
    x, y = load_fedprox_synthetic(iid=True, alpha=0, beta=0, num_devices=3), load_fedprox_synthetic(iid=True, alpha=2, beta=2, num_devices=3)
    assert np.array_equal(x.x_train, y.x_train) and np.array_equal(x.y_train, y.y_train)


@pytest.mark.parametrize("key, value", [("alpha", -0.1), ("beta", float("nan")), ("num_devices", 0), ("num_classes", 1), ("test_fraction", 1.0)])
def test_bad_parameter_is_one_line_naming_the_key(key, value):
    with pytest.raises(FedsimError, match=f"data.source.{key}=") as err:
        load_fedprox_synthetic(**{key: value})
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_fedavg_learns_synthetic_one_one_through_the_cli(tmp_path, one_thread):
    main([
        "data=synthetic_fedprox", "data.alpha=1", "data.beta=1", "model=logreg", "task=classification",
        "data.num_clients=5", "strategy.optimizer=sgd", "strategy.lr=0.01", "strategy.batch_size=10", "strategy.local_epochs=2",
        "run.max_rounds=3", "run.figure=false", f"hydra.run.dir={tmp_path}",
    ])  # fmt: skip
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert {"accuracy", "macro_f1", *(f"recall_{c}" for c in range(10))} <= set(rounds.columns)
    assert rounds["accuracy"].iloc[-1] > 0.5 and rounds["accuracy"].iloc[-1] >= rounds["accuracy"].iloc[0]  # chance: 0.1
