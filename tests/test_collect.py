"""``fedsim collect`` on hand-made sweep directories: columns, statuses, and nothing dropped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from fedsim.collect import JOBS, TABLE, collect, main, parse_params

TASK = ["run.max_rounds=2", "failure.dropout=0.0,0.5"]
PARAMS = {"run.seed": "0,1"}


def make_sweep(root: Path, done: set[int], started: set[int], task=TASK, params=PARAMS) -> Path:
    """A sweep dir as hydra leaves it: multirun.yaml, then per job .hydra/, config.yaml, rounds.csv, summary.json."""
    from fedsim.sweep import expand

    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}, "sweeper": {"params": params}}}))
    for num, overrides in enumerate(expand(task, params)):
        if num not in done | started:
            continue
        job = root / f"{num}_{','.join(overrides)}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
        (job / "config.yaml").write_text(yaml.safe_dump({"strategy": {"name": "fedavg"}, "run": {"seed": 0}, "failure": {"dropout": 0.0, "shape": 1.5}}))
        if num in done:
            pd.DataFrame({"round": [1, 2], "accuracy": [0.5 + num / 100, 0.6 + num / 100], "failures": [0, 1]}).to_csv(job / "rounds.csv", index=False)
            (job / "summary.json").write_text(json.dumps({"final_accuracy": 0.6 + num / 100, "failures": 1, "virtual_s": 3.0}))
    return root


def test_every_grid_point_is_a_job_with_typed_parameter_columns(tmp_path):
    got = collect(make_sweep(tmp_path / "s", done={0, 1, 2, 3}, started=set()))
    assert list(got.jobs["job_num"]) == [0, 1, 2, 3] and set(got.jobs["status"]) == {"complete"}
    assert len(got.table) == 8  # 4 jobs × 2 rounds
    t = got.table
    assert list(t.columns[:3]) == ["job", "job_num", "status"]
    assert t["run.seed"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # hydra order: sweeper params first
    assert t["failure.dropout"].tolist() == [0.0, 0.0, 0.5, 0.5] * 2 and t["failure.dropout"].dtype == float
    assert (t["run.max_rounds"] == 2).all() and (t["strategy.name"] == "fedavg").all()  # a study key from config.yaml
    assert "summary.failures" in t and "failures" in t  # the job's total and the per-round count stay apart
    assert t.groupby("job")["accuracy"].last().tolist() == t.groupby("job")["summary.final_accuracy"].first().tolist()


def test_failed_and_missing_jobs_are_reported_not_dropped(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "s", done={0, 3}, started={1})
    assert main([str(sweep)]) == 1
    err = capsys.readouterr().err
    assert "4 jobs: 2 complete, 1 incomplete, 1 missing" in err
    assert "incomplete: 1_run.seed=0" in err and "missing: job 2" in err
    table, jobs = pd.read_parquet(sweep / TABLE), pd.read_csv(sweep / JOBS)
    assert jobs.set_index("job_num")["status"].to_dict() == {0: "complete", 1: "incomplete", 2: "missing", 3: "complete"}
    assert len(table) == 2 + 1 + 1 + 2
    missing = table[table["status"] == "missing"].iloc[0]
    assert missing["run.seed"] == 1 and missing["failure.dropout"] == 0.0 and pd.isna(missing["round"])


def test_jobs_of_an_older_grid_are_stale(tmp_path):
    sweep = make_sweep(tmp_path / "s", done={0, 1, 2, 3}, started=set())
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": ["run.max_rounds=2", "failure.dropout=0.0"]}, "sweeper": {"params": PARAMS}}}))
    jobs = collect(sweep).jobs
    assert sorted(jobs["status"]) == ["complete", "complete", "stale", "stale"]


def test_an_empty_dir_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no hydra jobs" in capsys.readouterr().err


def test_parse_params_types_values_and_stringifies_lists():
    assert parse_params(["a.b=0.5", "c=3", "d=[16,8]", "e=x", "+f=true"]) == {"a.b": 0.5, "c": 3, "d": "[16, 8]", "e": "x", "f": True}


def test_a_job_failing_mid_sweep_is_named_and_the_others_finish(tmp_path):
    """The end-of-sweep report reads only job statuses: one line naming the failed job, exit 2, the other job done."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "fedsim", "-m", "strategy.lr=0.01,1e9", "run.max_rounds=3", "data.num_clients=4",
        "data.max_rows=600", "model.hidden=[16,8]", "compute.threads=1", "run.figure=false", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    report = [line for line in proc.stderr.splitlines() if "jobs did not finish" in line]
    assert len(report) == 1 and report[0].startswith("fedsim: error: 1 of 2 jobs did not finish (1)"), proc.stderr[-2000:]
    assert (next(sweep.glob("0_*")) / "summary.json").is_file()
