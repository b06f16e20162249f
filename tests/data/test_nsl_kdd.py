"""NSL-KDD loader on small files in its published layout (made from the KDD column set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedsim.data import kddcup99, nsl_kdd
from fedsim.errors import FedsimError


def _line(gen: np.random.Generator, label: str) -> str:
    values = []
    for col in kddcup99.COLUMNS:
        if col == "protocol_type":
            values.append(str(gen.choice(["tcp", "udp", "icmp"])))
        elif col == "service":
            values.append(str(gen.choice(["http", "ftp", "private"])))
        elif col == "flag":
            values.append(str(gen.choice(["SF", "S0"])))
        else:
            values.append(f"{gen.uniform(0, 10):.2f}")
    return ",".join([*values, label, str(gen.integers(0, 22))]) + "\n"


def _write(path: Path, n: int, seed: int) -> None:
    gen = np.random.default_rng(seed)
    path.write_text("".join(_line(gen, str(gen.choice(["normal", "neptune", "satan"]))) for _ in range(n)))


def test_official_split_and_one_hot_from_both_files(tmp_path: Path) -> None:
    _write(tmp_path / "KDDTrain+.txt", 300, 0)
    _write(tmp_path / "KDDTest+.txt", 100, 1)
    data = nsl_kdd.load_nsl_kdd(tmp_path / "KDDTrain+.txt", test_path=tmp_path / "KDDTest+.txt", cache_dir=tmp_path)
    assert (len(data.x_train), len(data.x_test)) == (300, 100)
    assert data.num_features == 38 + 3 + 3 + 2 and "difficulty" not in data.feature_names
    assert np.isfinite(data.x_test).all()
    np.testing.assert_array_equal(data.y_test, data.category_test != "normal")
    np.testing.assert_allclose(data.x_train[:, :38].mean(0), 0.0, atol=1e-4)


def test_missing_files_say_where_they_were_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FedsimError, match="NSL-KDD training file not found"):
        nsl_kdd.load_nsl_kdd(tmp_path / "KDDTrain+.txt", cache_dir=tmp_path)
