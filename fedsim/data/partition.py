"""Client partitioners: which training rows each client holds.

Pure functions of (labels, number of clients, seeded generator) returning one index
array per client, sorted, disjoint, covering every row.
"""

from __future__ import annotations

import numpy as np

from fedsim.errors import FedsimError


def _check(n_rows: int, num_clients: int, min_rows: int = 1) -> None:
    if num_clients < 1:
        raise ValueError(f"num_clients must be ≥ 1 (got {num_clients})")
    if num_clients > n_rows:
        raise FedsimError(
            f"data.num_clients={num_clients} exceeds the {n_rows} training rows; "
            "lower data.num_clients or use more data"
        )
    if n_rows // num_clients < min_rows:
        raise FedsimError(
            f"data.num_clients={num_clients} leaves a client fewer than {min_rows} of the {n_rows} training rows "
            "(BatchNorm trains on two or more); lower data.num_clients or use more data"
        )


def iid(n_rows: int, num_clients: int, rng: np.random.Generator, min_rows: int = 1) -> list[np.ndarray]:
    """Shuffle and deal rows into near-equal shards (at least ``min_rows`` each, or a one-line error)."""
    _check(n_rows, num_clients, min_rows)
    order = rng.permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, num_clients)]


def dirichlet(
    labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator, min_rows: int = 1
) -> list[np.ndarray]:
    """Label skew: each class is split across clients with proportions ~ Dirichlet(α).

    Small α gives clients dominated by one class; large α approaches IID. Redraws until
    every client holds at least ``min_rows`` rows (the usual practice, e.g. in FedLab).
    """
    return dirichlet_split(labels, num_clients, alpha, rng, min_rows)[0]


def dirichlet_split(
    labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator, min_rows: int = 1
) -> tuple[list[np.ndarray], dict[object, np.ndarray]]:
    """:func:`dirichlet`, also returning each class's client proportions (to split a test set alike)."""
    _check(len(labels), num_clients)
    if alpha <= 0:
        raise ValueError(f"data.alpha must be > 0 (got {alpha})")
    classes = np.unique(labels)
    for _ in range(1000):
        shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        proportions = {}
        for c in classes:
            rows = rng.permutation(np.flatnonzero(labels == c))
            proportions[c] = rng.dirichlet(np.full(num_clients, alpha))
            for k, part in enumerate(np.split(rows, _cuts(proportions[c], len(rows)))):
                shards[k].append(part)
        parts = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(p) for p in parts) >= min_rows:
            return parts, proportions
    raise FedsimError(f"data.alpha={alpha} could not give every one of {num_clients} clients {min_rows} rows in 1000 draws; raise data.alpha or lower data.num_clients")


def by_proportions(labels: np.ndarray, proportions: dict[object, np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Deal each class's rows to clients in the given proportions (a client may get none).

    Classes missing from ``proportions`` are dealt uniformly.
    """
    num_clients = len(next(iter(proportions.values())))
    shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        share = proportions.get(c, np.full(num_clients, 1 / num_clients))
        for k, part in enumerate(np.split(rows, _cuts(share, len(rows)))):
            shards[k].append(part)
    return [np.sort(np.concatenate(s)).astype(np.int64) for s in shards]


def _cuts(share: np.ndarray, n: int) -> np.ndarray:
    return (np.cumsum(share) * n).astype(int)[:-1]


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` rows drawn without replacement, each class in its share of ``labels``.

    Largest-remainder rounding keeps the total exactly ``n`` (all rows when ``n`` ≥ their number).
    """
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[: n - take.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picks))


def by_category(
    categories: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    shared: tuple[str, ...] = ("normal", "Normal", "ambient"),
) -> list[np.ndarray]:
    """Attack-type skew: each attack category lives on exactly one client.

    Categories are taken in a random order and each goes whole to the client holding
    the fewest attack rows so far, which keeps shard sizes close; rows of the
    ``shared`` (benign) categories are dealt IID so every client sees normal traffic.
    """
    _check(len(categories), num_clients)
    is_shared = np.isin(categories, shared)
    attack_types = rng.permutation(np.unique(categories[~is_shared]))
    if len(attack_types) < num_clients and not is_shared.any():
        raise ValueError(
            f"{len(attack_types)} attack categories cannot cover data.num_clients={num_clients}; "
            "lower data.num_clients or use another data.partition"
        )
    shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    load = np.zeros(num_clients, dtype=np.int64)
    for name in attack_types:
        rows = np.flatnonzero(categories == name)
        k = int(np.argmin(load))
        shards[k].append(rows)
        load[k] += len(rows)
    for k, part in enumerate(np.array_split(rng.permutation(np.flatnonzero(is_shared)), num_clients)):
        shards[k].append(part)
    return [np.sort(np.concatenate(s)).astype(np.int64) for s in shards]


def natural(groups: np.ndarray, num_clients: int, min_rows: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
    """One client per owner in ``groups`` (a device, writer or user id per row), in sorted owner order.

    Returns each client's rows and the owner ids, so a test set can be dealt by the same owners.
    """
    owners, inverse = np.unique(np.asarray(groups), return_inverse=True)
    if len(owners) != num_clients:
        raise FedsimError(f"data.partition=natural makes one client per owner and the data has {len(owners)} owners; set data.num_clients={len(owners)}")
    shards = [np.flatnonzero(inverse == k) for k in range(len(owners))]
    short = [str(owners[k]) for k, rows in enumerate(shards) if len(rows) < min_rows]
    if short:
        raise FedsimError(f"data.partition=natural leaves owner {short[0]} fewer than {min_rows} training rows; lower data.val_fraction or drop that owner from the data")
    return shards, owners


def by_owner(groups: np.ndarray, owners: np.ndarray) -> list[np.ndarray]:
    """The rows of each owner in ``owners`` (a client may get none)."""
    groups = np.asarray(groups)
    return [np.flatnonzero(groups == owner).astype(np.int64) for owner in owners]
