"""The FDAGMM paper's two-client KDD Cup 99 scenarios (Chen et al., §4.1, Table 2, Fig. 4).

Attacks are common (smurf, neptune) or rare (the other 20 types). Client 0 holds
1/2/5/10 % of each common attack (scenarios 1-4) plus every rare attack; client 1
holds the remaining common attacks. Each client's attacks are split half for
training, half for testing, per attack type. Normal records are dealt to the two
clients in proportion to their attack counts, so both clients have the data set's
anomaly ratio ("similar in anomaly ratio"), and go to the test sets only: training
sets "only include half of the attack samples".

Labels follow DAGMM on KDD Cup: the minority class, ``normal`` traffic, is the
anomaly (y = 1); the attacks are the "normal" class a DAGMM is trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.data import preprocess
from fedsim.data.dataset import Dataset
from fedsim.data.kddcup99 import NORMAL
from fedsim.errors import FedsimError

COMMON_ATTACKS: tuple[str, ...] = ("smurf", "neptune")
COMMON_SHARE: dict[int, float] = {1: 0.01, 2: 0.02, 3: 0.05, 4: 0.10}
"""Share of each common attack type held by client 0, per scenario."""


@dataclass(frozen=True)
class ClientRows:
    """Row indices (into the whole file) of one client's training and test sets."""

    train: np.ndarray
    test: np.ndarray


def _halves(rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rows = rng.permutation(rows)
    return rows[: len(rows) // 2], rows[len(rows) // 2 :]


def scenario_rows(
    categories: np.ndarray,
    common_share: float,
    rng: np.random.Generator,
    *,
    common: tuple[str, ...] = COMMON_ATTACKS,
    normal: str = NORMAL,
) -> tuple[ClientRows, ClientRows]:
    """Client 0 and client 1 rows for a share of common attacks held by client 0."""
    if not 0.0 <= common_share <= 1.0:
        raise FedsimError(f"common_share must be in [0, 1] (got {common_share})")
    train: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    test: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    attacks = np.zeros(2, dtype=np.int64)
    for kind in np.unique(categories[categories != normal]):
        rows = rng.permutation(np.flatnonzero(categories == kind))
        cut = int(round(common_share * len(rows))) if kind in common else len(rows)
        for k, own in enumerate((rows[:cut], rows[cut:])):
            first, second = _halves(own, rng)
            train[k].append(first)
            test[k].append(second)
            attacks[k] += len(own)
    normals = rng.permutation(np.flatnonzero(categories == normal))
    n0 = int(round(len(normals) * attacks[0] / max(attacks.sum(), 1)))
    test[0].append(normals[:n0])
    test[1].append(normals[n0:])
    return tuple(  # type: ignore[return-value]
        ClientRows(np.sort(np.concatenate(train[k])), np.sort(np.concatenate(test[k]))) for k in range(2)
    )


def build_clients(
    table: preprocess.ParsedTable,
    clients: tuple[ClientRows, ...],
    *,
    scaling: preprocess.Scaling = "minmax",
    normal: str = NORMAL,
) -> tuple[Dataset, ...]:
    """Each client's encoded data; y = 1 for ``normal`` rows (the DAGMM anomaly class).

    One scaler is fit on all clients' training rows: its statistics are sums that
    clients can aggregate federatedly, and it gives every method the same inputs.
    """
    scaler = preprocess.fit_scaler(table.numeric[np.concatenate([c.train for c in clients])], scaling)
    names = preprocess.feature_names(table)
    anomaly = (table.category == normal).astype(np.int64)
    return tuple(
        Dataset(
            x_train=preprocess.encode(table, c.train, scaler),
            y_train=anomaly[c.train],
            x_test=preprocess.encode(table, c.test, scaler),
            y_test=anomaly[c.test],
            feature_names=names,
            category_train=table.category[c.train],
            category_test=table.category[c.test],
            name=f"kddcup99-fdagmm-client{k}",
            info={"label": f"1 = '{normal}' traffic (DAGMM convention)", "scaling": scaling},
        )
        for k, c in enumerate(clients)
    )
