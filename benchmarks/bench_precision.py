"""fp32 vs bf16-mixed, the paper's DNN: wall time and final accuracy/AUC, each pair in one process.

    python benchmarks/bench_precision.py [--quick] [--clients 6,24] [--seeds 5] [--executor auto]
    python benchmarks/bench_precision.py --study 5 [--out results/precision]   # quickstart scenario, seeds 0..4
    python benchmarks/bench_precision.py --profile                              # where one client-round's time goes

Default: whole fedsim runs on the shared workload (``workload.py``: 2,000 rows per client,
5 rounds), for each seed fp32 then bf16-mixed back to back (the order alternates by seed),
so each ratio comes from one process at one load. ``--study``: the README's quickstart
scenario (6 clients, Weibull failures, 10 % dropout, 10 rounds) through the same builder
as ``fedsim``, seeds 0..n-1, both precisions; a tidy table and mean(std) per precision.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.workload import ROUNDS, SPEC, common_args, fedsim_run, make_clients, make_model, setup  # noqa: E402
from fedsim.fl.batched_executor import BatchedExecutor, choose_executor  # noqa: E402
from fedsim.fl.executor import SequentialExecutor  # noqa: E402
from fedsim.train.flat import FlatLayout  # noqa: E402
from fedsim.train.precision import PRECISIONS, native_bf16  # noqa: E402

EXECUTORS = {"sequential": SequentialExecutor, "batched": BatchedExecutor}


def executor_for(kind: str):
    """The executor factory: a fixed class, or ``choose_executor``'s pick on the CPU (``auto``)."""
    if kind != "auto":
        return EXECUTORS[kind]
    return lambda model, layout, data, spec: choose_executor(model, layout, data, spec, device="cpu")[0]


def timed(fn):
    """(wall seconds, process CPU seconds, result) of ``fn()``.

    CPU seconds add the threads' time; with one torch thread they are the arithmetic's
    own cost, barely touched by other jobs on a shared machine (wall time is not).
    """
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def final(result) -> tuple[float, float]:
    """Final test accuracy and AUC of a run."""
    last = result.rounds.iloc[-1]
    return float(last["accuracy"]), float(last["auc"])


def mean_std(values, digits: int = 4) -> str:
    """``mean(std)`` over seeds, std with ddof=1."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f}({v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f})"


def spread_table(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group and precision: wall seconds and final accuracy/AUC as mean(std) over seeds."""
    out = rows.groupby([*by, "precision"], sort=False).agg(
        seeds=("seed", "size"), wall_s=("wall_s", lambda v: mean_std(v, 2)), cpu_s=("cpu_s", lambda v: mean_std(v, 2)), accuracy=("accuracy", mean_std), auc=("auc", mean_std)
    )
    return out.reset_index()


def workload(args) -> pd.DataFrame:
    """fp32 and bf16-mixed whole runs on the workload, per client count and seed."""
    rows_per_client = 200 if args.quick else 2000
    rounds = 1 if args.quick else ROUNDS
    make = executor_for(args.executor)
    model = make_model("dnn")
    for p in PRECISIONS:
        print(f"# executor ({p}): {choose_executor(model, FlatLayout.of(model), [], dataclasses.replace(SPEC, precision=p), device='cpu')[1]}" if args.executor == "auto" else f"# executor: {args.executor}")
    records = []
    print(f"{'N':>3} {'seed':>4} {'fp32 s':>7} {'bf16 s':>7} {'speed-up':>8} {'cpu ×':>6} {'acc fp32':>8} {'acc bf16':>8} {'auc fp32':>8} {'auc bf16':>8}")
    for n in [2] if args.quick else map(int, args.clients.split(",")):
        clients, test = make_clients(n, rows_per_client)
        for p in PRECISIONS:  # warm-up: first calls allocate and pick kernels
            fedsim_run("dnn", clients[:1], test, rounds=1, executor=make, spec=dataclasses.replace(SPEC, precision=p))
        for seed in range(args.seeds):
            got = {}
            for p in PRECISIONS if seed % 2 == 0 else PRECISIONS[::-1]:
                wall, cpu, res = timed(lambda: fedsim_run("dnn", clients, test, rounds=rounds, executor=make, spec=dataclasses.replace(SPEC, precision=p), seed=seed))
                got[p] = (wall, cpu, *final(res))
                records.append({"n": n, "seed": seed, "precision": p, "wall_s": wall, "cpu_s": cpu, "accuracy": got[p][2], "auc": got[p][3]})
            (w32, c32, a32, u32), (w16, c16, a16, u16) = got["32"], got["bf16-mixed"]
            print(f"{n:>3} {seed:>4} {w32:7.2f} {w16:7.2f} {w32 / w16:7.2f}x {c32 / c16:5.2f}x {a32:8.4f} {a16:8.4f} {u32:8.4f} {u16:8.4f}", flush=True)
    return pd.DataFrame(records)


def study(args) -> pd.DataFrame:
    """The quickstart scenario (paper DNN) for seeds 0..n-1 in both precisions, through fedsim's own builder."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
    from fedsim.config import register_configs
    from fedsim.experiments.run import run_experiment
    from fedsim.results import write_text

    register_configs()
    records = []
    print(f"{'seed':>4} {'precision':>10} {'wall s':>7} {'accuracy':>8} {'auc':>8}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def config(seed: int, p: str, *extra: str):
            small = ["run.max_rounds=1", "data.source.n_samples=400"] if args.quick else []
            overrides = ["scenarios=quickstart", f"run.seed={seed}", f"compute.precision={p}", "compute.device=cpu", "run.figure=false", *small, *extra]
            return compose("config", overrides=[*overrides, SEARCHPATH])

        if args.out:  # the resolved config of the first job; the table's seed and precision columns vary it
            write_text(OmegaConf.to_yaml(config(0, PRECISIONS[0]), resolve=True), Path(args.out) / "config.yaml")
        for p in PRECISIONS:  # warm-up: data, kernels, first calls
            run_experiment(to_config(config(0, p, "run.max_rounds=1")))
        for seed in range(args.study):
            for p in PRECISIONS if seed % 2 == 0 else PRECISIONS[::-1]:
                cfg = to_config(config(seed, p))
                wall, cpu, res = timed(lambda: run_experiment(cfg))
                acc, auc = final(res)
                records.append({"scenario": "quickstart", "seed": seed, "precision": p, "wall_s": wall, "cpu_s": cpu, "accuracy": acc, "auc": auc, "rounds": len(res.rounds)})
                print(f"{seed:>4} {p:>10} {wall:7.2f} {acc:8.4f} {auc:8.4f}", flush=True)
    return pd.DataFrame(records)


def profile(args) -> None:
    """torch.profiler of one client-round (8 steps of the paper's DNN) per precision: top ops by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from fedsim.train.local import TrainState, local_train, steps_per_epoch

    (x, y), = make_clients(1, 200 if args.quick else 2000)[0]
    model = make_model("dnn")
    layout = FlatLayout.of(model)
    start = TrainState(layout.flatten(model))
    for p in PRECISIONS:
        spec = dataclasses.replace(SPEC, precision=p)
        run = lambda: local_train(model, layout, start, x, y, spec=spec, seed=0, stop_step=steps_per_epoch(len(x), spec.batch_size))  # noqa: E731
        run()  # warm-up
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
        print(f"\n## {p}: one client-round, {steps_per_epoch(len(x), spec.batch_size)} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


def main(argv: list[str] | None = None) -> pd.DataFrame | None:
    p = common_args(__doc__)
    p.add_argument("--clients", default="6,24")
    p.add_argument("--seeds", type=int, default=1, help="seeds per client count (spread of accuracy/AUC)")
    p.add_argument("--executor", default="auto", choices=["auto", *EXECUTORS])
    p.add_argument("--study", type=int, default=0, help="run the quickstart study with this many seeds instead")
    p.add_argument("--out", default=None, help="write the study's tidy table (study.csv) and summary here")
    p.add_argument("--profile", action="store_true", help="profile one client-round per precision instead")
    p.add_argument("--top", type=int, default=12, help="ops listed per profile")
    args = p.parse_args(argv)
    setup(args)
    print(f"# native bf16: {native_bf16('cpu')[1]}")
    if args.profile:
        profile(args)
        return None
    rows = study(args) if args.study else workload(args)
    summary = spread_table(rows, ["scenario"] if args.study else ["n"])
    print(summary.to_string(index=False))
    if args.out:
        from fedsim.results import write_table

        write_table(rows, Path(args.out) / "study.csv")
        write_table(summary, Path(args.out) / "summary.csv")
    return rows


if __name__ == "__main__":
    main()
