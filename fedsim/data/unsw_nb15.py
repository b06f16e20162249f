"""UNSW-NB15 partitioned sets (Moustafa & Slay 2015).

The official training (175,341 rows) and testing (82,332 rows) files share one
layout: ``id``, 42 features (``proto``, ``service``, ``state`` categorical; ``-``
means no service), ``attack_cat`` and the binary ``label``; the files start with a
UTF-8 byte-order mark. With both files the official split is used; with one (only
the 82,332-row partition is in ``../shared/datasets``) it is split stratified by
``attack_cat``, seeded. One-hot vocabularies come from all rows read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.data import cache, preprocess
from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.seeding import rng

DEFAULT_PATH = preprocess.SHARED_DATASETS / "unsw-nb15" / "UNSW_NB15_testing-set.csv.gz"

CATEGORICAL: tuple[str, ...] = ("proto", "service", "state")
NUMERIC: tuple[str, ...] = (
    "dur", "spkts", "dpkts", "sbytes", "dbytes", "rate", "sttl", "dttl", "sload", "dload",
    "sloss", "dloss", "sinpkt", "dinpkt", "sjit", "djit", "swin", "stcpb", "dtcpb", "dwin",
    "tcprtt", "synack", "ackdat", "smean", "dmean", "trans_depth", "response_body_len",
    "ct_srv_src", "ct_state_ttl", "ct_dst_ltm", "ct_src_dport_ltm", "ct_dst_sport_ltm",
    "ct_dst_src_ltm", "is_ftp_login", "ct_ftp_cmd", "ct_flw_http_mthd", "ct_src_ltm",
    "ct_srv_dst", "is_sm_ips_ports",
)  # fmt: skip
DTYPES: dict[str, object] = {
    "id": np.int64, **{c: str for c in CATEGORICAL}, **{c: np.float32 for c in NUMERIC},
    "attack_cat": str, "label": np.int64,
}  # fmt: skip


def _read(path: Path, max_rows: int | None) -> pd.DataFrame:
    frame = preprocess.read_csv(path, names=None, dtype=DTYPES, max_rows=max_rows)
    missing = [c for c in DTYPES if c not in frame.columns]
    if missing:
        raise FedsimError(f"{path} lacks {len(missing)} UNSW-NB15 column(s) ({preprocess.columns_text(missing)}); point data.source.path at a partitioned-set CSV")
    return frame


def _parse(paths: tuple[Path, ...], max_rows: int | None) -> dict[str, np.ndarray]:
    frames = [_read(p, max_rows) for p in paths]
    frame = pd.concat(frames, ignore_index=True)
    table = preprocess.parse_frame(
        frame,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        label=frame["label"].to_numpy(),
        category=frame["attack_cat"].str.strip().to_numpy(dtype=str),
    )
    return {**table.to_arrays(), "source": np.repeat(np.arange(len(frames)), [len(f) for f in frames])}


def load_unsw_nb15(
    path: str | Path | None = None,
    *,
    test_path: str | Path | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    scaling: preprocess.Scaling = "standard",
    max_rows: int | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """UNSW-NB15: ``path`` trains (split when ``test_path`` is None), ``test_path`` tests."""
    paths = (preprocess.resolve(path, DEFAULT_PATH, what="UNSW-NB15 file", config_key="data.source.path"),)
    if test_path is not None:
        paths += (preprocess.resolve(test_path, DEFAULT_PATH, what="UNSW-NB15 test file", config_key="data.source.test_path"),)
    key = cache.cache_key("unsw_nb15", tuple(cache.file_sha256(p) for p in paths), {"max_rows": max_rows})
    arrays, _ = cache.cached_arrays(key, lambda: _parse(paths, max_rows), cache_dir)
    table = preprocess.ParsedTable.from_arrays(arrays)
    if test_path is None:
        train, test = preprocess.stratified_split(table.category, test_fraction, rng(seed, "unsw-nb15-split"))
        split = f"stratified by attack_cat, test_fraction={test_fraction}, seed={seed}"
    else:
        train, test = np.flatnonzero(arrays["source"] == 0), np.flatnonzero(arrays["source"] == 1)
        split = "official training/testing files"
    return preprocess.to_tabular(
        table, train, test, scaling=scaling, name="unsw_nb15",
        info={"paths": [str(p) for p in paths], "rows": len(table), "split": split},
    )  # fmt: skip


@dataclass
class UNSWNB15Source:
    """Config of :func:`load_unsw_nb15` (hydra ``data/source=unsw_nb15``)."""

    _target_: str = "fedsim.data.unsw_nb15.load_unsw_nb15"
    path: str | None = None
    """Training CSV (gzip or plain); None = the shared 82,332-row partition, which is then split."""
    test_path: str | None = None
    """Official testing CSV; None = split ``path`` stratified by attack_cat."""
    seed: int = 0
    """Seed of the stratified split."""
    test_fraction: float = 0.3
    """Held-out share of each attack_cat when splitting one file."""
    scaling: str = "standard"
    """Numeric scaling fit on training rows: standard | minmax | none."""
    max_rows: int | None = None
    """Read only the first rows of each file; None = all."""
    cache_dir: str | None = None
    """Parsed-data cache; None = ``$FEDSIM_CACHE`` or ``.fedsim-cache/``."""
