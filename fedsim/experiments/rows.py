"""How a dataset's rows are dealt: a cap on training rows, the server's validation rows, client shards.

Pure functions of (data, config); the seeded streams make every split a function of ``run.seed``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fedsim.config import Config
from fedsim.data import partition
from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.seeding import rng
from fedsim.sim.fleet import group_counts


@dataclass(frozen=True)
class Split:
    """Row indices: per-client training shards, the server's validation rows, per-client test shards."""

    clients: list[np.ndarray]
    val: np.ndarray
    client_tests: list[np.ndarray] | None = None  # with run.client_eval: each client's own test rows


def class_labels(labels: np.ndarray | None, targets: np.ndarray, name: str) -> np.ndarray | None:
    """What a split by class reads: the finer ``labels`` (attack categories) if given, else whole-number ``targets``; None if neither."""
    if labels is not None:
        return np.asarray(labels)
    y = np.asarray(targets)
    if y.ndim == 1 and (y.dtype.kind in "iub" or bool(np.all(y == np.round(y)))):
        return y
    return None


def split_rows(data: Dataset, cfg: Config) -> Split:
    """Hold out the server's validation rows, then partition the rest across clients.

    With ``run.client_eval`` the test rows are dealt to clients too, with the same skew
    (the same Dirichlet class proportions, or the same owners), so a client's test rows
    look like its training rows: what a personalised model is scored on.
    """
    g = rng(cfg.run.seed, "partition")
    n = len(data.y_train)
    order = g.permutation(n)
    n_val = max(1, int(round(cfg.data.val_fraction * n)))
    val, rest = np.sort(order[:n_val]), np.sort(order[n_val:])
    g_test = rng(cfg.run.seed, "test-partition")
    wanted = cfg.run.client_eval
    if cfg.data.partition == "iid":
        shards = partition.iid(len(rest), cfg.data.num_clients, g, min_rows=2)
        tests = partition.iid(len(data.y_test), cfg.data.num_clients, g_test) if wanted else None
    elif cfg.data.partition == "natural":
        if data.groups_train is None or data.groups_test is None:
            raise FedsimError(f"data.partition=natural needs the data's own owners (devices, writers), and {data.name} names none; use data.partition=iid or dirichlet")
        shards, owners = partition.natural(data.groups_train[rest], cfg.data.num_clients, min_rows=2)
        tests = partition.by_owner(data.groups_test, owners) if wanted else None
    else:
        labels = class_labels(data.category_train, data.y_train, data.name)
        test_labels = class_labels(data.category_test, data.y_test, data.name)
        if labels is None or test_labels is None:
            raise FedsimError(f"data.partition=dirichlet splits by class, but the targets of {data.name} are not class labels; use data.partition=iid (or natural)")
        shards, shares = partition.dirichlet_split(labels[rest], cfg.data.num_clients, cfg.data.alpha, g, min_rows=2)
        tests = partition.by_proportions(test_labels, shares, g_test) if wanted else None
    return Split(clients=[rest[s] for s in shards], val=val, client_tests=tests)


def declared_sizes(cfg: Config) -> np.ndarray:
    """Each client's training rows when ``data.declared_rows`` are dealt without data (system-only).

    ``iid``: near-equal shards, exactly the sizes an iid split of that many real rows
    gives; ``dirichlet``: shares ~ Dirichlet(α) over the clients from the partition
    stream, rounded by largest remainder (every client must get a row).
    """
    total, n = int(cfg.data.declared_rows or 0), cfg.data.num_clients
    if cfg.data.partition == "iid":
        return np.full(n, total // n, dtype=np.int64) + (np.arange(n) < total % n)
    if cfg.data.partition == "natural":
        raise FedsimError("data.partition=natural needs the data's owners, and data.declared_rows loads no data; use iid or dirichlet")
    sizes = group_counts(total, rng(cfg.run.seed, "partition").dirichlet(np.full(n, cfg.data.alpha)))
    if sizes.min() < 1:
        raise FedsimError(
            f"data.declared_rows={total} under data.partition=dirichlet, data.alpha={cfg.data.alpha} leaves "
            f"{int((sizes < 1).sum())} clients without rows; raise data.declared_rows or data.alpha"
        )
    return sizes.astype(np.int64)


def cap_rows(data: Dataset, max_rows: int | None, seed: int) -> Dataset:
    """``data`` with at most ``max_rows`` training rows, sampled per class (or category) so their shares stay."""
    if max_rows is None or len(data.y_train) <= max_rows:
        return data
    g = rng(seed, "max-rows")
    labels = class_labels(data.category_train, data.y_train, data.name)
    keep = partition.stratified_sample(labels, max_rows, g) if labels is not None else np.sort(g.choice(len(data.y_train), max_rows, replace=False))
    pick = lambda a: a[keep] if a is not None else None  # noqa: E731
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep], category_train=pick(data.category_train), groups_train=pick(data.groups_train))
