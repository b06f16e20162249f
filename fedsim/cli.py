"""``fedsim``: the hydra entry point for runs and sweeps, and the ``collect``/``plot``/``tune`` commands.

``fedsim [overrides]`` runs one simulation; ``fedsim -m key=a,b`` sweeps (re-running a
sweep into the same ``hydra.sweep.dir`` skips its finished jobs). Bad overrides and
out-of-range values stop with one line, before any job starts.

``fedsim collect <sweep dir>`` merges a sweep into one table, ``fedsim plot <kind>
<table>`` draws a figure from it, ``fedsim tune ...`` runs the checkpoint-interval
tuner (:mod:`fedsim.experiments.tune`).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from fedsim.compose import CONF_DIR, REPO, SEARCHPATH, hydra_argv, is_override, one_line, search_path, to_config
from fedsim.config import register_configs
from fedsim.errors import FedsimError
from fedsim.progress import allow_bars, is_tty, job_line
from fedsim.results import SUMMARY, discard, is_done, only_logs
from fedsim.sweep import cores, expand, first_point, objective_value, sweep_failures, sweep_values, threads_per_job

log = logging.getLogger("fedsim")
JOBS_ENV = "FEDSIM_SWEEP_JOBS"  # number of jobs in the current sweep, for "job i/N" (read by workers too)
SUBCOMMANDS = ("collect", "plot", "tune", "paper")
USAGE = """usage: fedsim [-m] [overrides ...]       run one job, or sweep with -m
       fedsim collect <sweep dir> [--out table.parquet]
       fedsim plot <kind> <table> [--out path] [--format png,svg]
       fedsim tune [overrides ...]
       fedsim paper gather <table2|clients|dropout> <sweep dir> [--out dir] | fedsim paper render [--out dir]"""


def scenario_dirs(args: list[str]) -> list[str]:
    """``hydra.run.dir``/``hydra.sweep.dir`` of a selected scenario, as command-line overrides.

    conf/config.yaml lists ``_self_`` after ``scenarios``, so its timestamped dirs would
    beat a scenario's fixed dir (and a re-run could not resume); passing the scenario's
    dirs on the command line restores them unless the user gave their own.
    """
    names = [a.split("=", 1)[1] for a in args if a.startswith("scenarios=")]
    out = []
    for name in names[-1:]:
        path = REPO / "scenarios" / f"{name}.yaml"
        if not path.is_file():
            continue
        scenario = OmegaConf.load(path)
        for key in ("hydra.run.dir", "hydra.sweep.dir"):
            value = OmegaConf.select(scenario, key, default=None, throw_on_missing=False)
            if value is not None and not any(a.startswith(f"{key}=") for a in args):
                out.append(f"{key}={value}")
    return out


def sweep_points(overrides: list[str]) -> list[list[str]]:
    """Grid points that together try every swept value once: the first point, then one value changed at a time."""
    base = first_point(overrides)
    points = [base]
    for o in OverridesParser.create().parse_overrides(overrides):
        if o.is_hydra_override() or not o.is_sweep_override():
            continue
        key = o.get_key_element()
        for value in sweep_values(o)[1:]:
            points.append([f"{key}={value}" if p.split("=", 1)[0] == key else p for p in base])
    return points


def preflight(overrides: list[str], searchpath: str = SEARCHPATH) -> Mapping[str, str]:
    """Compose and validate the config (every swept value once) so mistakes fail fast, in one line.

    ``searchpath`` is the ``hydra.searchpath`` override the job runs with (it names the user's
    config dirs). Returns ``hydra.sweeper.params`` (a scenario's own sweep), whose values are checked too.
    """
    from hydra import compose, initialize_config_dir

    first = first_point(overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*first, searchpath], return_hydra_config=True)
        params = {str(k): str(v) for k, v in (cfg.hydra.sweeper.get("params") or {}).items()}
        multirun = cfg.hydra.mode == RunMode.MULTIRUN
        task = [o for o in overrides if not o.startswith("hydra")]
        merged = {o.split("=", 1)[0]: o for o in [f"{k}={v}" for k, v in params.items()] + task}  # command line wins, as in hydra
        points = sweep_points(list(merged.values()))
        trials = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweeper.n_trials=")), cfg.hydra.sweeper.get("n_trials"))
        if points == [first]:  # one job: the config composed above is the one to check
            with open_dict(cfg):
                del cfg["hydra"]
            configs = [to_config(cfg)]
        else:
            configs = [to_config(compose("config", overrides=[*point, searchpath])) for point in points]
    from fedsim.experiments.run import check_inputs  # data loaders: only once the config is known good

    checked: set[str] = set()
    for config in configs:
        # what check_inputs reads: the dataset (its source and seed), and a trace with the links built from it
        trace = (config.network, config.data.num_clients) if config.network.trace is not None else None
        inputs = repr((config.data.source, config.data.declared_rows is None, config.run.seed, trace))
        if inputs not in checked:
            check_inputs(config)
            checked.add(inputs)
    return {**params, "__multirun__": str(multirun), "__trials__": str(trials or 0)}


_jobs_bar = None  # a bar over the jobs of an in-process (basic launcher) sweep on a terminal


def _advance_jobs_bar(total: int | None) -> None:
    global _jobs_bar
    if not total or total < 2 or not is_tty():
        return
    if _jobs_bar is None:
        from tqdm import tqdm

        _jobs_bar = tqdm(total=total, desc="jobs", unit="job", position=0, dynamic_ncols=True)
    _jobs_bar.update(1)
    if _jobs_bar.n >= total:
        _jobs_bar.close()
        _jobs_bar = None


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _job(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    pin_auto_precision(cfg)
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    multirun = hc.mode == RunMode.MULTIRUN
    num = int(hc.job.num) if multirun else None
    total = int(os.environ.get(JOBS_ENV, "0")) or None if multirun else None
    head = f"job {num + 1}/{total}: " if num is not None and total else ""
    if multirun and is_done(out, resolved):  # a re-run sweep: this job already finished with this config
        log.info("%sskipped: complete -> %s", head, out)
        _advance_jobs_bar(total)
        return objective_value(json.loads((out / SUMMARY).read_text()), cfg.run.objective)
    parallel = "n_jobs" in hc.launcher or "cpus_per_task" in hc.launcher or "ray" in hc.launcher
    if parallel:
        allow_bars(False)  # several jobs share the terminal: one log line per round instead
    if not cfg.compute.threads and multirun:
        threads = threads_per_job(hc.launcher, cores())
        if threads:
            import torch

            torch.set_num_threads(threads)  # threads × parallel jobs ≤ cores; compute.threads > 0 wins
    from fedsim.experiments.repeats import run_seeds  # torch and the engine load only when a job runs

    fresh = only_logs(out)  # nothing of an earlier attempt (snapshots, tables) in the job's directory

    try:
        config = to_config(cfg)
        summary = run_seeds(config, out, resolved, resume=config.run.resume or multirun)
    except FedsimError as exc:
        print(f"fedsim: error: {head}{exc}", file=sys.stderr)
        if fresh:
            discard(out)
        if multirun:  # the other jobs go on; the sweep's end reports this one (fedsim.collect.SweepReport)
            return float("nan")
        raise SystemExit(2) from None
    log.info(job_line(num, total, summary, str(out)))
    _advance_jobs_bar(total)
    return objective_value(summary, cfg.run.objective)


def pin_auto_precision(cfg: DictConfig) -> None:
    """Replace ``compute.precision=auto`` by what it picks here, so the resolved config names the precision that runs.

    A resumed sweep compares resolved configs, so a job is never counted done across
    precisions (``auto`` may pick differently on another machine). torch loads only then.
    """
    if str(cfg.compute.precision).lower() != "auto":
        return
    from fedsim.experiments.run import resolve_device
    from fedsim.train.precision import resolve_precision

    try:
        device = resolve_device(cfg.compute.device)
    except FedsimError:
        return  # the run reports it, in one line
    cfg.compute.precision, why = resolve_precision("auto", device)
    log.info("precision: %s", why)


def _subcommand(name: str, args: list[str]) -> None:
    """``fedsim collect|plot|tune ...``: each is its own small program."""
    if name == "collect":
        from fedsim.collect import main as collect_main

        raise SystemExit(collect_main(args))
    if name == "plot":
        from fedsim.figures.cli import main as plot_main

        raise SystemExit(plot_main(args))
    if name == "paper":
        from fedsim.experiments.paper import main as paper_main

        raise SystemExit(paper_main(args))
    try:  # tune is a hydra app of its own; imported only when asked for
        from fedsim.experiments.tune import main as tune_main
    except ImportError as exc:
        print(f"fedsim: error: `fedsim tune` is unavailable: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.argv = [f"{sys.argv[0]} tune", *args]
    tune_main()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        _subcommand(args[0], args[1:])
        return
    if args and args[0] in ("help", "-help"):
        print(USAGE)
        return
    register_configs()
    overrides = [a for a in args if is_override(a)]
    try:
        searchpath = search_path(args)
        sweep = dict(preflight(overrides, searchpath))
    except Exception as exc:  # composition and validation errors alike
        print(f"fedsim: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    trials = int(sweep.pop("__trials__"))  # an optuna sweep: n_trials jobs
    if sweep.pop("__multirun__") == "True" or "-m" in args or "--multirun" in args:
        task = [o for o in overrides if not o.startswith("hydra")]
        os.environ[JOBS_ENV] = str(trials or len(expand(task, sweep)))
    sys.argv = [sys.argv[0], *hydra_argv(args, *scenario_dirs(args), searchpath)]
    _job()
    if sweep_failures():
        raise SystemExit(2)


def command() -> None:
    """The ``fedsim`` command: :func:`main`, then exit without collecting the last run's garbage.

    The process ends here, and the OS takes its memory back at once; a last full
    collection would first traverse the finished run's fleet (reference cycles between
    clients, links, processes and events): 13 s of a 51 s process at 300,000 clients.
    In-process callers (tests, notebooks) use :func:`main`, which leaves the collector alone.
    """
    try:
        main()
    finally:
        gc.freeze()  # nothing after this but interpreter shutdown, which then skips the frozen objects
