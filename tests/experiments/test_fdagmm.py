"""The FDAGMM reproduction runs end to end with tiny settings and writes the tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from fedsim.data.kddcup99 import DEFAULT_PATH
from fedsim.experiments import fdagmm

STUDY = Path(__file__).resolve().parents[2] / "scenarios" / "fdagmm" / "kdd.yaml"


def test_study_file_loads_with_overrides() -> None:
    study = fdagmm.load_study(STUDY, ["seeds=[0]", "rounds=3"])
    assert study.seeds == [0] and study.rounds == 3 and study.scenarios == [1, 2, 3, 4]
    assert study.batch_size == 1024 and study.lr == pytest.approx(1e-4)


def test_tables_put_paper_numbers_beside_measured(tmp_path: Path) -> None:
    records = pd.DataFrame(
        [
            {"scenario": 1, "method": m, "seed": s, "precision": 0.5 + s / 10, "recall": 0.9, "f1": 0.6}
            for m in ("dagmm_c0", "fdagmm", "ideal")
            for s in (0, 1)
        ]
    )
    fdagmm.write_results(records, tmp_path, fdagmm.FdagmmStudy())
    precision = pd.read_csv(tmp_path / "precision.csv")
    assert precision.loc[0, "dagmm_c0 paper"] == "0.3970(0.1304)"
    assert precision.loc[0, "fdagmm fedsim"] == "0.5500(0.0707)"
    assert "Table 5: recall" in (tmp_path / "tables.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f1.csv", "precision.csv", "recall.csv", "records.csv", "tables.md"]


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_PATH.is_file(), reason=f"real data absent: {DEFAULT_PATH} (../shared/datasets)")
def test_one_tiny_cell_per_method(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the study's workers
    try:
        study = fdagmm.FdagmmStudy(alone_epochs=1, ideal_epochs=1, rounds=1, workers=1, cache_dir=str(tmp_path))
        for method in ("dagmm_c0", "fdagmm"):  # Ideal shares dagmm_c0's code path
            record = fdagmm.run_cell(study, 4, method, 0)
            assert 0.0 <= record["precision"] <= 1.0 and 0.0 <= record["recall"] <= 1.0
    finally:
        torch.set_num_threads(threads)
