"""Figures from collected tables: files are written, and the drawn data is the table's data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from fedsim.figures import learning_curve
from fedsim.figures.cli import main as plot_main
from fedsim.figures.sweeps import client_scaling, ctau, dropout_sweep, final_rows, learning_curves


def table(**grid) -> pd.DataFrame:
    """A collected-looking table: one row per job × round over the cartesian ``grid``, plus one failed job."""
    g = np.random.default_rng(0)
    rows = []
    keys = list(grid)
    for num, values in enumerate(itertools.product(*grid.values())):
        job = dict(zip(keys, values, strict=True))
        base = {"job": f"{num}_x", "job_num": num, "status": "complete", "strategy.name": "fedavg", **job}
        base.update({"failure.shape": 1.5, "failure.scale": 20.0, "failure.repair_mean_s": 1.0, "checkpoint.delta_s": 0.05, "checkpoint.restart_s": 0.5})
        base.update({f"summary.{k}": float(v) for k, v in zip(["useful_s", "checkpoint_s", "lost_s", "recovery_s"], g.uniform(0.1, 1, 4), strict=True)})
        base["summary.virtual_s"] = float(g.uniform(5, 10))
        for r in (1, 2, 3):
            rows.append({**base, "round": r, "time_s": r * 1.5, "accuracy": float(g.uniform(0.5, 1)), "auc": float(g.uniform(0.5, 1)), "loss": float(g.uniform(0.1, 1))})
    rows.append({"job": "99_failed", "job_num": 99, "status": "incomplete", **{k: v[0] for k, v in grid.items()}})
    return pd.DataFrame(rows)


def line_means(df: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    means = df.groupby(x)[y].mean()
    return means.index.to_numpy(dtype=float), means.to_numpy()


def test_dropout_sweep_draws_the_mean_final_metrics_per_rate():
    t = table(**{"failure.dropout": [0.0, 0.2, 0.4], "run.seed": [0, 1, 2]})
    fig = dropout_sweep(t)
    final = final_rows(t)
    assert len(final) == 9 and (final["round"] == 3).all()  # last round of each complete job; the failed one is left out
    for ax, y in zip(fig.axes, ["accuracy", "auc"], strict=True):
        x, m = line_means(final, "failure.dropout", y)
        np.testing.assert_allclose(ax.lines[0].get_xdata(), x)
        np.testing.assert_allclose(ax.lines[0].get_ydata(), m)
        assert "dropout" in ax.get_xlabel() and ax.get_ylabel()
        assert len(ax.collections) >= 1  # the CI band over seeds


def test_client_scaling_has_log_x_and_virtual_time():
    t = table(**{"data.num_clients": [2, 4, 8], "run.seed": [0, 1]})
    fig = client_scaling(t)
    acc, time_ax = fig.axes[:2]
    assert acc.get_xscale() == "log" and time_ax.get_xscale() == "log"
    x, m = line_means(final_rows(t), "data.num_clients", "summary.virtual_s")
    np.testing.assert_allclose(time_ax.lines[0].get_ydata(), m)
    assert "(s)" in time_ax.get_ylabel()


def test_learning_curves_one_line_per_swept_value():
    t = table(**{"failure.dropout": [0.0, 0.4], "run.seed": [0, 1]})
    ax = learning_curves(t).axes[0]
    data = t[t["status"] == "complete"]
    for line, (_, group) in zip(ax.lines, data.groupby("failure.dropout"), strict=False):
        np.testing.assert_allclose(line.get_ydata(), group.groupby("round")["accuracy"].mean().to_numpy())


def test_ctau_draws_the_analytic_curve_and_each_jobs_overhead():
    checkpoint = pytest.importorskip("fedsim.checkpoint", reason="C(τ) maths (fedsim.checkpoint) not available")
    t = table(**{"checkpoint.tau_s": [0.5, 1.0, 2.0], "run.seed": [0, 1]})
    ax = ctau(t).axes[0]
    final = final_rows(t)
    expected = (final["summary.checkpoint_s"] + final["summary.lost_s"] + final["summary.recovery_s"]) / final["summary.useful_s"]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.column_stack([final["checkpoint.tau_s"], expected]))
    curve = ax.lines[0]
    r = 0.5 + 1.0  # restart + mean repair
    np.testing.assert_allclose(curve.get_ydata(), checkpoint.expected_overhead(curve.get_xdata(), 0.05, r, 1.5, 20.0, model="renewal"))


def test_plot_command_writes_png_and_svg(tmp_path, capsys):
    path = tmp_path / "collected.parquet"
    table(**{"failure.dropout": [0.0, 0.2], "run.seed": [0, 1]}).to_parquet(path)
    assert plot_main(["dropout", str(path)]) == 0
    for suffix in ("png", "svg"):
        assert (tmp_path / f"dropout.{suffix}").stat().st_size > 1000
    assert plot_main(["scaling", str(path), "--out", str(tmp_path / "x"), "--format", "png"]) == 2  # no client column
    assert "data.num_clients" in capsys.readouterr().err


def test_learning_curve_of_one_run_still_writes_a_png(tmp_path):
    rounds = pd.DataFrame({"time_s": [1.0, 2.0], "accuracy": [0.5, 0.7], "loss": [0.9, 0.6]})
    assert learning_curve(rounds, tmp_path / "lc.png").stat().st_size > 1000
