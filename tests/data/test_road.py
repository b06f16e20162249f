"""ROAD loader on a small capture generated in the published candump layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from fedsim.data import road
from fedsim.errors import FedsimError

T0 = 1_600_000_000.0


def _write_log(path: Path, frames: list[tuple[float, int, str]]) -> None:
    text = "".join(f"({t:.6f}) can0 {i:03X}#{d}\n" for t, i, d in frames)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


def _benign(seconds: float) -> list[tuple[float, int, str]]:
    frames = []
    for k in range(int(seconds * 50)):
        t = T0 + k * 0.02
        frames.append((t, 0x0C1, f"{k % 256:02X}00000000000000"))
        frames.append((t + 0.005, 0x1A0, "0102"))  # a 2-byte frame
    return frames


@pytest.fixture
def road_dir(tmp_path: Path) -> Path:
    (tmp_path / "ambient").mkdir()
    (tmp_path / "attacks").mkdir()
    _write_log(tmp_path / "ambient" / "ambient_dyno_drive_1.log", _benign(6))
    attack = _benign(6) + [(T0 + 2.0 + 0.01 * k + 0.001, 0x0C1, "FFEE000000000000") for k in range(100)]
    _write_log(tmp_path / "attacks" / "fuzzing_attack_1.log.gz", sorted(attack))
    meta = {
        "fuzzing_attack_1": {
            "description": "generated",
            "injection_id": "0x0c1",
            "injection_data_str": "FFXX000000000000",
            "injection_interval": [2.0, 3.0],
        }
    }
    (tmp_path / "attacks" / "capture_metadata.json").write_text(json.dumps(meta))
    return tmp_path


def test_frame_labels_follow_interval_id_and_pattern(road_dir: Path) -> None:
    cap = road.parse_candump(road_dir / "attacks" / "fuzzing_attack_1.log.gz")
    assert cap.payload.shape == (len(cap.ts), 8) and set(np.unique(cap.dlc)) == {2, 8}
    meta = json.loads((road_dir / "attacks" / "capture_metadata.json").read_text())["fuzzing_attack_1"]
    hit = road.attack_frames(cap, meta)
    rel = cap.ts - cap.ts[0]
    expected = (cap.ids == 0x0C1) & (cap.payload[:, 0] == 0xFF) & (rel >= 2.0) & (rel <= 3.0)
    np.testing.assert_array_equal(hit, expected)
    assert hit.sum() == 100
    assert not road.attack_frames(cap, {**meta, "injection_data_str": "FFEF" + "X" * 12}).any()
    assert road.attack_frames(cap, {**meta, "injection_id": "XXX"}).sum() == 100


def test_windows_shapes_labels_and_scaling(road_dir: Path, tmp_path: Path) -> None:
    data = road.load_road(road_dir, window_s=1.0, test_fraction=0.3, cache_dir=tmp_path / "cache")
    total = len(data.x_train) + len(data.x_test)
    assert total == 12  # 6 one-second windows per capture
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    assert data.feature_names[:3] == ("count_id_0C1", "count_id_1A0", "count_id_other")
    assert data.num_features == 3 + 6 + 16
    labels = np.concatenate([data.y_train, data.y_test])
    cats = np.concatenate([data.category_train, data.category_test])
    assert labels.sum() == 1 and set(cats) == {"ambient", "fuzzing_attack"}  # one window holds the injection
    np.testing.assert_allclose(data.x_train.mean(0), 0.0, atol=1e-5)
    again = road.load_road(road_dir, window_s=1.0, test_fraction=0.3, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.x_test, data.x_test)


def test_window_statistics_are_exact() -> None:
    cap = road.Capture(
        ts=np.array([0.0, 0.1, 0.4, 1.2]), ids=np.array([1, 2, 1, 1]),
        payload=np.array([[2] * 8, [4] * 8, [6] * 8, [9] * 8], dtype=np.uint8), dlc=np.full(4, 8),
    )  # fmt: skip
    x, y, names = road.window_features(cap, np.array([0, 0, 1, 0], bool), np.array([1, 2]), 1.0)
    row = dict(zip(names, x[0]))
    assert row["count_id_001"] == 2 and row["frames"] == 3 and row["distinct_ids"] == 2
    assert row["gap_mean"] == pytest.approx(0.2) and row["gap_min"] == pytest.approx(0.1)
    assert row["gap_max"] == pytest.approx(0.3) and row["byte0_mean"] == pytest.approx(4.0)
    assert dict(zip(names, x[1]))["frames"] == 1 and y.tolist() == [True, False]


def test_missing_folder_and_metadata_errors(road_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FedsimError, match="ROAD data not found"):
        road.load_road(tmp_path / "absent", cache_dir=tmp_path)
    (road_dir / "attacks" / "capture_metadata.json").write_text("{}")
    with pytest.raises(FedsimError, match="no entry"):
        road.load_road(road_dir, cache_dir=tmp_path / "c2")
