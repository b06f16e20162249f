"""FedProx's Synthetic(α, β): devices whose models (α) and inputs (β) differ by a tunable amount.

Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020, §5.1, following
the authors' generator (github.com/litian96/FedProx, ``data/synthetic_1_1`` and
``data/synthetic_iid``). Device k draws u_k ~ N(0, α) and B_k ~ N(0, β) (α, β are standard
deviations, as ``np.random.normal`` reads them there); its labelling model W_k, b_k has
entries ~ N(u_k, 1), its input mean v_k entries ~ N(B_k, 1); its rows are x ~ N(v_k, Σ) with
Σ = diag(j^−1.2) and y = argmax(W_kᵀx + b_k). α = β = 0 still gives every device its own
W_k, b_k, v_k; ``iid`` is the reference's IID variant (one W, b ~ N(0, 1) for all, v = 0).
Device sizes follow the reference's power law, ``int(lognormal(4, 2)) + 50``; each device's
rows split 90/10 into train and test, and ``groups_*`` name the device, so
``data.partition=natural`` makes one client per device.

Every draw comes from its own stream keyed by purpose and device (:func:`fedsim.seeding.rng`),
so device sizes do not depend on α or β, and changing α moves only u_k (β only B_k).

A property of the generator as published, kept here: u_k adds the same u_k·(Σ_j x_j + 1) to
every class's logit, so α never changes which class wins, and with the same draws the data
at any α is the data at α = 0. Devices' labelling models differ through their own W_k, b_k
at every α; β is what moves their inputs (and through them their label mix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.seeding import rng

STREAM = "fedprox-synthetic"
INPUT_DECAY = 1.2  # Σ_jj = j^−1.2 (1-based j)


@dataclass
class FedProxSyntheticSource:
    """Config of :func:`load_fedprox_synthetic` (hydra ``data/source=synthetic_fedprox``); the seed is ``run.seed``."""

    _target_: str = "fedsim.data.fedprox_synthetic.load_fedprox_synthetic"
    alpha: float = 1.0
    """α: std of u_k, how far devices' labelling models differ (conf reads ``${data.alpha}``)."""
    beta: float = 1.0
    """β: std of B_k, how far devices' input means differ (conf reads ``${data.beta}``)."""
    iid: bool = False
    """The reference's IID variant: one shared W, b and v = 0 (α, β unused)."""
    num_devices: int = 30
    """Devices (owners of rows); conf reads ``${data.num_clients}`` so the natural split fits."""
    num_features: int = 60
    num_classes: int = 10
    test_fraction: float = 0.1
    """Share of each device's rows held out for test (the reference's 10 %)."""


def device_sizes(num_devices: int, seed: int) -> np.ndarray:
    """Rows per device: ``int(lognormal(4, 2)) + 50`` as in the reference, one stream per device."""
    return np.array([int(rng(seed, f"{STREAM}/size", k).lognormal(4.0, 2.0)) + 50 for k in range(num_devices)], dtype=np.int64)


def _check(alpha: float, beta: float, num_devices: int, num_features: int, num_classes: int, test_fraction: float) -> None:
    checks = (
        (alpha >= 0, "alpha", alpha, "≥ 0 (set data.alpha)"),
        (beta >= 0, "beta", beta, "≥ 0 (set data.beta)"),
        (num_devices >= 1, "num_devices", num_devices, "≥ 1 (set data.num_clients)"),
        (num_features >= 1, "num_features", num_features, "≥ 1"),
        (num_classes >= 2, "num_classes", num_classes, "≥ 2"),
        (0 < test_fraction < 1, "test_fraction", test_fraction, "in (0, 1)"),
    )
    for ok, key, value, allowed in checks:
        if not ok or not np.isfinite(value):
            raise FedsimError(f"data.source.{key}={value!r} is out of range: must be {allowed}; fix the override or conf/data/source/synthetic_fedprox.yaml")


def load_fedprox_synthetic(
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    iid: bool = False,
    num_devices: int = 30,
    num_features: int = 60,
    num_classes: int = 10,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Generate Synthetic(α, β) (or the IID variant) for ``num_devices`` devices, split per device into train and test."""
    _check(alpha, beta, num_devices, num_features, num_classes, test_fraction)
    sizes = device_sizes(num_devices, seed)
    scale = np.arange(1, num_features + 1, dtype=np.float64) ** (-INPUT_DECAY / 2)  # √Σ_jj
    shared = rng(seed, f"{STREAM}/model-iid")
    w_iid, b_iid = shared.normal(size=(num_features, num_classes)), shared.normal(size=num_classes)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("x_train", "y_train", "g_train", "x_test", "y_test", "g_test")}
    for k, n in enumerate(sizes):
        if iid:
            w, b, v = w_iid, b_iid, np.zeros(num_features)
        else:
            z_u, z_b = rng(seed, f"{STREAM}/prior", k).normal(size=2)
            u, big_b = alpha * z_u, beta * z_b
            model = rng(seed, f"{STREAM}/model", k)
            w, b = u + model.normal(size=(num_features, num_classes)), u + model.normal(size=num_classes)
            v = big_b + rng(seed, f"{STREAM}/input-mean", k).normal(size=num_features)
        x = v + scale * rng(seed, f"{STREAM}/x", k).normal(size=(n, num_features))
        y = np.argmax(x @ w + b, axis=1).astype(np.int64)
        order = rng(seed, f"{STREAM}/split", k).permutation(n)
        n_train = int((1 - test_fraction) * n)
        for part, rows in (("train", order[:n_train]), ("test", order[n_train:])):
            parts[f"x_{part}"].append(x[rows].astype(np.float32))
            parts[f"y_{part}"].append(y[rows])
            parts[f"g_{part}"].append(np.full(len(rows), k, dtype=np.int64))
    cat = {key: np.concatenate(value) for key, value in parts.items()}
    return Dataset(
        x_train=cat["x_train"],
        y_train=cat["y_train"],
        x_test=cat["x_test"],
        y_test=cat["y_test"],
        feature_names=tuple(f"x{j}" for j in range(num_features)),
        name="synthetic_iid" if iid else f"synthetic({alpha:g},{beta:g})",
        info={"device_sizes": sizes.tolist()},
        groups_train=cat["g_train"],
        groups_test=cat["g_test"],
    )
