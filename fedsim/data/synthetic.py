"""The embedded default dataset: seeded, synthetic network-flow records.

Shaped like UNSW-NB15 so the paper's DNN sees a familiar problem without a download:
36 heavy-tailed numeric flow features plus one-hot ``proto`` (3) and ``state`` (4),
i.e. 43 inputs as in the checkpointing paper; a minority of attack rows from several
attack categories, each shifting its own subset of features (some subtly), so a
Dirichlet split over categories gives clients genuinely different problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.data.dataset import Dataset
from fedsim.seeding import rng as stream

PROTOS = ("tcp", "udp", "icmp")
STATES = ("FIN", "CON", "INT", "REQ")
ATTACKS = ("DoS", "Exploits", "Reconnaissance", "Fuzzers")


@dataclass
class SyntheticSource:
    """Config of the embedded dataset (hydra instantiates :func:`make_synthetic`)."""

    _target_: str = "fedsim.data.synthetic.make_synthetic"
    n_samples: int = 4000  # rows, train + test
    n_numeric: int = 36  # numeric features before the 7 one-hot columns
    anomaly_ratio: float = 0.3  # fraction of attack rows
    separation: float = 1.0  # scale of attack shifts, in standard deviations
    test_fraction: float = 0.25


def _heavy_tailed_signed_log(latent: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``sign·log1p|·|`` (the usual fix for heavy tails) of ``sign·expm1|latent|`` (heavy-tailed like byte and packet counts).

    Row block by row block: the same values as on the whole array, but the temporaries
    stay in cache instead of being fresh pages (ten times faster for 200,000 rows).
    """
    out = np.empty_like(latent)
    for lo in range(0, len(latent), chunk):
        block = latent[lo : lo + chunk]
        numeric = np.sign(block) * np.expm1(np.abs(block))
        out[lo : lo + chunk] = np.sign(numeric) * np.log1p(np.abs(numeric))
    return out


def make_synthetic(
    *,
    n_samples: int = 4000,
    n_numeric: int = 36,
    anomaly_ratio: float = 0.3,
    separation: float = 1.0,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> Dataset:
    """Generate, encode and standardise (train statistics only) the synthetic dataset."""
    if n_samples < 10:
        raise ValueError(f"data.source.n_samples must be ≥ 10 (got {n_samples})")
    if not 0 < anomaly_ratio < 1:
        raise ValueError(f"data.source.anomaly_ratio must be in (0, 1) (got {anomaly_ratio})")
    if not 0 < test_fraction < 1:
        raise ValueError(f"data.source.test_fraction must be in (0, 1) (got {test_fraction})")
    g = stream(seed, "synthetic")
    # The generative model (feature correlations, attack signatures) is fixed by a
    # constant stream so every seed samples the same "network", only different rows.
    world = stream(0, "synthetic-world", n_numeric)
    mix = world.normal(0, 1 / np.sqrt(n_numeric), size=(n_numeric, n_numeric)) + np.eye(n_numeric)
    signatures = {}
    for a in ATTACKS:
        hit = world.random(n_numeric) < 0.3
        signatures[a] = (hit * world.normal(0, 1, n_numeric) * separation, world.dirichlet(np.ones(3)), world.dirichlet(np.ones(4)))

    category = np.where(g.random(n_samples) < anomaly_ratio, g.integers(0, len(ATTACKS), n_samples), -1)
    latent = g.normal(size=(n_samples, n_numeric)) @ mix
    proto_p = np.tile([0.6, 0.35, 0.05], (n_samples, 1))
    state_p = np.tile([0.5, 0.3, 0.15, 0.05], (n_samples, 1))
    for i, a in enumerate(ATTACKS):
        rows = category == i
        shift, pp, sp = signatures[a]
        latent[rows] += shift
        proto_p[rows], state_p[rows] = pp, sp
    proto = (proto_p.cumsum(1) > g.random((n_samples, 1))).argmax(1)
    state = (state_p.cumsum(1) > g.random((n_samples, 1))).argmax(1)
    x = np.empty((n_samples, n_numeric + len(PROTOS) + len(STATES)), dtype=np.float32)
    x[:, :n_numeric] = _heavy_tailed_signed_log(latent)
    x[:, n_numeric : n_numeric + len(PROTOS)] = np.eye(len(PROTOS))[proto]
    x[:, n_numeric + len(PROTOS) :] = np.eye(len(STATES))[state]
    y = (category >= 0).astype(np.int64)
    names = np.array(["Normal", *ATTACKS])[category + 1]
    test = g.random(n_samples) < test_fraction
    mu = x[~test, :n_numeric].mean(0)
    sd = x[~test, :n_numeric].std(0) + 1e-8
    x[:, :n_numeric] = (x[:, :n_numeric] - mu) / sd
    features = tuple(f"f{i}" for i in range(n_numeric)) + tuple(f"proto_{p}" for p in PROTOS) + tuple(f"state_{s}" for s in STATES)
    return Dataset(
        x_train=x[~test],
        y_train=y[~test],
        x_test=x[test],
        y_test=y[test],
        feature_names=features,
        category_train=names[~test],
        category_test=names[test],
        name="synthetic",
    )
