"""NSL-KDD (Tavallaee et al. 2009): KDD Cup 99 with duplicates removed, official train/test files.

``KDDTrain+.txt`` and ``KDDTest+.txt`` have the KDD layout (41 features, the
attack type without a trailing dot) plus a difficulty column, which is dropped.
No copy is in ``../shared/datasets``; point ``data.source.path`` at the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.data import cache, preprocess
from fedsim.data.dataset import Dataset
from fedsim.data.kddcup99 import parse_kdd, read_kdd_frame

DEFAULT_DIR = preprocess.SHARED_DATASETS / "nsl-kdd"


def _parse(paths: tuple[Path, Path], max_rows: int | None) -> dict[str, np.ndarray]:
    frames = [read_kdd_frame(p, extra=("difficulty",), max_rows=max_rows) for p in paths]
    table = parse_kdd(pd.concat(frames, ignore_index=True))
    return {**table.to_arrays(), "source": np.repeat([0, 1], [len(f) for f in frames])}


def load_nsl_kdd(
    path: str | Path | None = None,
    *,
    test_path: str | Path | None = None,
    scaling: preprocess.Scaling = "standard",
    max_rows: int | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """NSL-KDD's official split (y = 1 for attacks; categories keep the attack type)."""
    paths = (
        preprocess.resolve(path, DEFAULT_DIR / "KDDTrain+.txt", what="NSL-KDD training file", config_key="data.source.path"),
        preprocess.resolve(test_path, DEFAULT_DIR / "KDDTest+.txt", what="NSL-KDD test file", config_key="data.source.test_path"),
    )  # fmt: skip
    key = cache.cache_key("nsl_kdd", tuple(cache.file_sha256(p) for p in paths), {"max_rows": max_rows})
    arrays, _ = cache.cached_arrays(key, lambda: _parse(paths, max_rows), cache_dir)
    table = preprocess.ParsedTable.from_arrays(arrays)
    train, test = np.flatnonzero(arrays["source"] == 0), np.flatnonzero(arrays["source"] == 1)
    return preprocess.to_tabular(
        table, train, test, scaling=scaling, name="nsl_kdd", info={"paths": [str(p) for p in paths], "rows": len(table)}
    )


@dataclass
class NSLKDDSource:
    """Config of :func:`load_nsl_kdd` (hydra ``data/source=nsl_kdd``)."""

    _target_: str = "fedsim.data.nsl_kdd.load_nsl_kdd"
    path: str | None = None
    """``KDDTrain+.txt`` (gzip or plain); None = ``../shared/datasets/nsl-kdd/KDDTrain+.txt``."""
    test_path: str | None = None
    """``KDDTest+.txt``; None = beside the default training file."""
    scaling: str = "standard"
    """Numeric scaling fit on training rows: standard | minmax | none."""
    max_rows: int | None = None
    """Read only the first rows of each file; None = all."""
    cache_dir: str | None = None
    """Parsed-data cache; None = ``$FEDSIM_CACHE`` or ``.fedsim-cache/``."""
