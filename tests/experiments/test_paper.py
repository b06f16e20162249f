"""The paper's comparison: a study sweep becomes Table II, Table III and the figures."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fedsim.experiments import paper

TINY = [
    "model.hidden=[16,8,4]", "run.max_rounds=2", "data.num_clients=3", "data.max_rows=250",
    "compute.threads=1", "checkpoint.tau_s=0.2", "failure.scale=5.0", "hydra/launcher=basic",
]  # fmt: skip


def test_table2_study_end_to_end(tmp_path):
    """A 2 methods × 2 seeds version of the Table II scenario: the callback writes every file where the scenario says."""
    out = tmp_path / "results" / "paper"
    cmd = [
        sys.executable, "-m", "fedsim", "scenarios=paper/table2", *TINY, "data=synthetic", "strategy=fedavg,proposed", "run.seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for name in ("table2.csv", "table2.md", "table3.csv", "table3.md", "auc_samples.csv", "fig2.png", "fig2.svg", "runs_table2.csv"):
        assert (out / name).is_file(), name
    t2 = pd.read_csv(out / "table2.csv")
    assert set(t2["method"]) == {"FedAvg", "Proposed"} and (t2["runs"] == 2).all()
    assert t2["client_accuracy_mean"].between(0, 1).all() and (t2["virtual_s_mean"] > 0).all()
    samples = pd.read_csv(out / "auc_samples.csv")
    assert list(samples.columns) == ["dataset", "method", "seed", "client", "auc"]
    assert len(samples) == 2 * 2 * 3  # methods × seeds × clients
    t3 = pd.read_csv(out / "table3.csv")
    assert list(t3["baseline"]) == ["FedAvg"] and t3["n_proposed"].iloc[0] == t3["n_baseline"].iloc[0]
    assert "ROAD: not run" in (out / "table2.md").read_text()


def test_compare_auc_detects_a_shift_and_not_its_absence():
    """30 vs 30 normal samples: a 1.5 σ shift is found (power ≈ 1), none gives p well above 0.05 here (seeded)."""
    g = np.random.default_rng(0)
    base = g.normal(0.8, 0.02, 30)
    shifted = paper.compare_auc(base + 0.03, g.normal(0.8, 0.02, 30))
    assert shifted["p_mw"] < 1e-3 and shifted["p_ks"] < 1e-2 and shifted["cliffs_delta"] > 0.5
    same = paper.compare_auc(base, g.normal(0.8, 0.02, 30))
    assert same["p_mw"] > 0.05 and abs(same["cliffs_delta"]) < 0.3
    assert shifted["A"] == pytest.approx(shifted["U"] / 900)


def test_table2_reports_mean_and_std_over_seeds():
    runs = pd.DataFrame(
        {
            "dataset": "UNSW-NB15", "method": ["Proposed"] * 3 + ["FedAvg"] * 3, "seed": [0, 1, 2] * 2,
            "client_accuracy": [0.9, 0.92, 0.94, 0.8, 0.82, 0.84], "client_auc": 0.9, "accuracy": 0.9, "auc": 0.9,
            "virtual_s": [10.0, 12.0, 14.0, 20.0, 22.0, 24.0], "time_to_target_s": [5.0, np.nan, 7.0, np.nan, np.nan, np.nan],
            "wall_s": 1.0, "rounds": 20,
        }
    )  # fmt: skip
    t = paper.table2(runs)
    row = t[t["method"] == "Proposed"].iloc[0]
    assert row["client_accuracy_mean"] == pytest.approx(0.92) and row["client_accuracy_std"] == pytest.approx(0.02)
    assert row["target_reached"] == 2 and row["paper_accuracy_pct"] == 97.5
    md = paper.table2_markdown(runs, t)
    assert "0.920 (0.020)" in md and "[2/3]" in md and "[0/3]" in md


def test_fig3_draws_clients_and_dropout_panels(tmp_path):
    rows = []
    for study, x, values in (("clients", "num_clients", [2, 10]), ("dropout", "dropout", [0.0, 0.5])):
        for v in values:
            for method in ("FedAvg", "Proposed"):
                for seed in (0, 1):
                    rows.append({"study": study, "dataset": "synthetic", "method": method, "seed": seed, "num_clients": 6, "dropout": 0.1, x: v, "client_accuracy": 0.8 + 0.01 * seed})
    paths = paper_figures().fig3(pd.DataFrame(rows), tmp_path / "fig3")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)


def paper_figures():
    from fedsim.figures import paper as figures

    return figures
