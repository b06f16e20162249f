"""A run SIGKILLed at many moments (mid-round, mid-checkpoint write, mid-snapshot write, mid-table write)
and resumed each time ends with the uninterrupted run's tables: one kill of each kind in the default
tier, twenty in the deep tier; for a synchronous fleet, an asynchronous one (FedBuff: clients are
training at every snapshot) and a user's own data, model, task and strategy (examples/own_problem).

Each attempt is a forked child running the ``fedsim`` entry point (the parent has imported
everything, so a launch costs little). The child kills itself with SIGKILL at the moment it is
told: at the n-th SimPy event of the run's history (a seeded random moment), or inside the first
atomic write of a file kind after that event, once the temporary file is written and before it
is renamed into place.
"""

from __future__ import annotations

import fnmatch
import multiprocessing as mp
import os
import random
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest

FAULTS = [
    "failure=weibull", "failure.scale=3.0", "failure.repair_mean_s=1.0", "failure.dropout=0.2",
    "compute.cost_per_sample_s=0.01", "compute.threads=1", "run.snapshot_every_s=0", "checkpoint=every_tau",
    "recovery=restore_checkpoint", "checkpoint.tau_s=0.3", "checkpoint.on_disk=true", "run.figure=false", "run.client_metrics=true",
]  # fmt: skip
ARGS = ["model.hidden=[32,16]", "data.num_clients=4", "data.max_rows=800", "run.max_rounds=25", "strategy=fedadam", *FAULTS]
TABLES = ("rounds.csv", "events.csv", "accounting.csv", "clients.csv")
ASYNC = [*ARGS, "strategy=fedbuff", "strategy.buffer_size=2", "strategy.concurrency=3"]  # clients are training at every snapshot
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_problem"
PLUGIN = [  # a user's data, model, task and strategy from examples/own_problem
    "--config-dir", str(EXAMPLE / "conf"), "data=waves", "model=seqconv", "task=smoothed", "strategy=trimmed_mean", "run.max_rounds=12", *FAULTS,
]  # fmt: skip


def _child(run_dir: Path, resume: bool, kill: tuple[str, int] | None, args: list[str]) -> None:
    """Run the entry point; SIGKILL ourselves at ``kill = (kind, n)``: at SimPy event n of the run's
    history (a resumed run replays it from event 1), or in the first write of a file matching
    ``kind`` after event n. Without a kill, the number of events goes to ``<run dir>.steps``."""
    import simpy

    from fedsim.cli import main

    sys.path.insert(0, str(EXAMPLE))  # what PYTHONPATH=examples/own_problem does
    step, count = simpy.Environment.step, [0]

    def counting_step(env: simpy.Environment) -> None:
        count[0] += 1
        if kill is not None and kill[0] == "event" and count[0] == kill[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        step(env)

    simpy.Environment.step = counting_step
    replace = os.replace  # every atomic write ends in one: temporary file written, not yet renamed

    def dying_replace(src, dst) -> None:
        if kill is not None and fnmatch.fnmatch(Path(dst).name, kill[0]) and count[0] >= kill[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        replace(src, dst)

    os.replace = dying_replace
    os.chdir(run_dir.parent)
    main([*args, f"hydra.run.dir={run_dir}", f"run.resume={str(resume).lower()}"])
    if kill is None:
        Path(f"{run_dir}.steps").write_text(str(count[0]))


def _run(run_dir: Path, resume: bool, kill: tuple[str, int] | None = None, args: list[str] = ARGS) -> int:
    proc = mp.get_context("fork").Process(target=_child, args=(run_dir, resume, kill, list(args)))
    proc.start()
    proc.join()
    return proc.exitcode


@pytest.mark.slow
@pytest.mark.parametrize("args", [ARGS, ASYNC, PLUGIN], ids=["sync", "async", "plugin"])
@pytest.mark.parametrize("events, snapshots, checkpoints, tables", [(1, 1, 1, ["rounds.csv"]), pytest.param(8, 4, 4, TABLES, marks=pytest.mark.deep)])
def test_kills_and_resumes_end_with_the_uninterrupted_tables(tmp_path, args, events, snapshots, checkpoints, tables):
    import torch

    torch.set_num_threads(1)  # forked children must not inherit a thread pool
    reference = tmp_path / "reference"
    assert _run(reference, resume=False, args=args) == 0
    steps = int(Path(f"{reference}.steps").read_text())
    g = random.Random(0)
    kinds = ["event"] * events + ["snapshot-*"] * snapshots + ["client*.ckpt"] * checkpoints
    g.shuffle(kinds)
    moments = sorted(g.randint(steps // 50, steps * 95 // 100) for _ in kinds)  # ascending: every attempt gets further
    kills = list(zip(kinds, moments)) + [(name, steps) for name in tables]
    run_dir = tmp_path / "killed"
    killed = [_run(run_dir, resume=i > 0, kill=k, args=args) == -signal.SIGKILL for i, k in enumerate(kills)]
    assert all(killed), list(zip(kills, killed))
    assert _run(run_dir, resume=True, args=args) == 0
    for name in TABLES:
        want, got = pd.read_csv(reference / name), pd.read_csv(run_dir / name)
        if name == "rounds.csv":
            want, got = want.drop(columns="wall_s"), got.drop(columns="wall_s")
        pd.testing.assert_frame_equal(got, want, obj=name)
    assert len(list((run_dir / "snapshots").glob("snapshot-*.ckpt"))) <= 2  # pruned to run.keep_snapshots


def test_checkpoint_files_a_killed_attempt_left_are_not_restored(tmp_path):
    """Found by a kill in round 2: the run resumed from round 1's snapshot restored the killed
    attempt's round-2 checkpoint, from its future. Client 2 drops out of round 1 (the replay writes
    no checkpoint over the stale one) and fails in round 2 before its first checkpoint; a run starts
    with no checkpoints, so it downloads the global model as the uninterrupted run did."""
    from hydra import compose, initialize_config_dir

    from fedsim.checkpoint.store import DiskStore
    from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
    from fedsim.config import register_configs
    from fedsim.experiments.run import run_experiment
    from fedsim.fl.replay import Snapshot

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_config(compose("config", overrides=[*ARGS, "run.max_rounds=3", SEARCHPATH]))
    taken: list[Snapshot] = []
    reference = run_experiment(cfg, out_dir=tmp_path / "reference", on_snapshot=lambda make: taken.append(make()))
    store = DiskStore(tmp_path / "killed" / "checkpoints")
    for cid in range(4):  # what a kill late in round 2 leaves
        store.save(f"client{cid}-for{cid}", {"round": 2, "step": 2, "flat": reference.final, "optimizer": None})
    resumed = run_experiment(cfg, out_dir=tmp_path / "killed", resume=Snapshot.from_payload(taken[0].payload()))
    pd.testing.assert_frame_equal(resumed.events, reference.events)
