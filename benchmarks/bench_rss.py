"""Bounded memory and disk over a long run: resident memory after round 500 against round 50.

One 500-round run per mode, through the same builder ``fedsim`` uses, with Weibull failures,
10 % dropout, checkpoints written to disk and a snapshot at every round boundary; the
process's current RSS (``/proc/self/status``) is read when rounds 50 and 500 end. The issue's
target: RSS(500) within 10 % of RSS(50) in both modes; checkpoint and snapshot files stay
bounded (pruned) and are counted at the end.

    python benchmarks/bench_rss.py [--quick] [--rounds 500]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workload import common_args, memory_mib, setup  # noqa: E402

OVERRIDES = [
    "model.hidden=[60,30,10]", "model.batch_norm=false", "model.dropout=0", "data.num_clients=6", "strategy.batch_size=256",
    "failure=weibull", "failure.scale=30", "failure.repair_mean_s=2", "failure.dropout=0.1", "checkpoint=every_tau",
    "recovery=restore_checkpoint", "checkpoint.tau_s=0.5", "checkpoint.on_disk=true", "run.snapshot_every_s=0", "run.figure=false",
]  # fmt: skip


def run(mode: str, rounds: int, marks: tuple[int, int]) -> dict[str, float]:
    """One long run; RSS at the two marked rounds and the files left on disk."""
    from hydra import compose, initialize_config_dir

    from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
    from fedsim.config import register_configs
    from fedsim.experiments import snapshots
    from fedsim.experiments.run import run_experiment

    register_configs()
    extra = ["compute.system_only=true"] if mode == "system-only" else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_config(compose("config", overrides=[*OVERRIDES, *extra, f"run.max_rounds={rounds}", SEARCHPATH]))
    seen: dict[int, float] = {}

    def on_round(row: dict[str, object]) -> None:
        if int(row["round"]) in marks:
            seen[int(row["round"])] = memory_mib()[0]

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        writer = snapshots.SnapshotWriter(out / snapshots.DIRECTORY, "bench", every_s=0, keep=cfg.run.keep_snapshots)
        result = run_experiment(cfg, on_round=on_round, out_dir=out, on_snapshot=writer)
        files = {"checkpoints": len(list((out / "checkpoints").glob("*.ckpt"))), "snapshots": len(list((out / snapshots.DIRECTORY).glob("*.ckpt")))}
    first, last = seen[marks[0]], seen[marks[1]]
    return {"rss_first_mib": first, "rss_last_mib": last, "growth": last / first - 1, "events": len(result.events), **files}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = common_args(__doc__)
    p.add_argument("--rounds", type=int, default=500)
    args = p.parse_args(argv)
    setup(args)
    rounds = 20 if args.quick else args.rounds
    marks = (rounds // 10, rounds)
    out = {}
    for mode in ("real training", "system-only"):
        r = out[mode] = run(mode, rounds, marks)
        verdict = "met" if r["growth"] <= 0.10 else "MISSED"
        print(
            f"{mode}: RSS after round {marks[0]} {r['rss_first_mib']:.0f} MiB, after round {marks[1]} {r['rss_last_mib']:.0f} MiB "
            f"({r['growth']:+.1%}; target ≤ +10 %: {verdict}); {r['events']} events; files left: {r['checkpoints']} checkpoints, {r['snapshots']} snapshots"
        )
    return out


if __name__ == "__main__":
    main()
