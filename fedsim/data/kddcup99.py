"""KDD Cup 1999 (Stolfo et al.): the 10% file or the full 4.9M-row file.

41 features then the label with a trailing dot (``smurf.``). ``protocol_type``,
``service`` and ``flag`` are one-hot encoded with vocabularies taken from the file:
118 columns on the 10% file (66 services), 120 on the full file (70 services), as in
the DAGMM/FDAGMM papers. The file has no separate test set, so rows are split
stratified by attack type (seeded), 50/50 by default as in DAGMM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.data import cache, preprocess
from fedsim.data.dataset import Dataset
from fedsim.seeding import rng

DEFAULT_PATH = preprocess.SHARED_DATASETS / "kddcup99" / "kddcup.data_10_percent.gz"

COLUMNS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)  # fmt: skip
CATEGORICAL: tuple[str, ...] = ("protocol_type", "service", "flag")
NUMERIC: tuple[str, ...] = tuple(c for c in COLUMNS if c not in CATEGORICAL)
NORMAL = "normal"


def read_kdd_frame(path: Path, *, extra: tuple[str, ...] = (), max_rows: int | None = None) -> pd.DataFrame:
    """Read a KDD-layout file (41 features, ``attack_type``, then ``extra`` columns; shared with NSL-KDD)."""
    names = (*COLUMNS, "attack_type", *extra)
    dtype = {c: (str if c in CATEGORICAL or c == "attack_type" else np.float32) for c in names}
    return preprocess.read_csv(path, names=names, dtype=dtype, max_rows=max_rows)


def parse_kdd(frame: pd.DataFrame) -> preprocess.ParsedTable:
    """Codes, numerics and labels of KDD-layout rows; the attack type loses its trailing dot."""
    category = frame["attack_type"].str.rstrip(".").to_numpy(dtype=str)
    return preprocess.parse_frame(
        frame, numeric=NUMERIC, categorical=CATEGORICAL, label=category != NORMAL, category=category
    )


def read_kddcup99(
    path: str | Path | None = None, *, max_rows: int | None = None, cache_dir: str | Path | None = None
) -> preprocess.ParsedTable:
    """The whole file parsed (cached); partitioners that need every row start here."""
    source = preprocess.resolve(path, DEFAULT_PATH, what="KDD Cup 99 file", config_key="data.source.path")
    key = cache.cache_key("kddcup99", (cache.file_sha256(source),), {"max_rows": max_rows})
    arrays, _ = cache.cached_arrays(
        key,
        lambda: parse_kdd(read_kdd_frame(source, max_rows=max_rows)).to_arrays(),
        cache_dir,
    )
    return preprocess.ParsedTable.from_arrays(arrays)


def load_kddcup99(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    test_fraction: float = 0.5,
    scaling: preprocess.Scaling = "standard",
    max_rows: int | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Train/test split of KDD Cup 99 (y = 1 for attacks; categories keep the attack type)."""
    table = read_kddcup99(path, max_rows=max_rows, cache_dir=cache_dir)
    train, test = preprocess.stratified_split(table.category, test_fraction, rng(seed, "kddcup99-split"))
    return preprocess.to_tabular(
        table, train, test, scaling=scaling, name="kddcup99",
        info={"path": str(path or DEFAULT_PATH), "rows": len(table), "test_fraction": test_fraction},
    )  # fmt: skip


@dataclass
class KDDCup99Source:
    """Config of :func:`load_kddcup99` (hydra ``data/source=kddcup99``)."""

    _target_: str = "fedsim.data.kddcup99.load_kddcup99"
    path: str | None = None
    """Data file (gzip or plain); None = ``../shared/datasets/kddcup99/kddcup.data_10_percent.gz``."""
    seed: int = 0
    """Seed of the stratified train/test split."""
    test_fraction: float = 0.5
    """Share of each attack type held out for testing (DAGMM: 0.5)."""
    scaling: str = "standard"
    """Numeric scaling fit on training rows: standard | minmax | none."""
    max_rows: int | None = None
    """Read only the first rows (tests, quick looks); None = whole file."""
    cache_dir: str | None = None
    """Parsed-data cache; None = ``$FEDSIM_CACHE`` or ``.fedsim-cache/``."""
