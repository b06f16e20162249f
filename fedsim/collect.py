"""``fedsim collect <sweep dir>``: every job of a hydra sweep in one tidy table.

The table has one row per job × round: the job's id and ``status``, one column per
override key of the job (every swept parameter, named as on the command line, e.g.
``failure.dropout``), a few study keys read from the job's resolved ``config.yaml``
(:data:`STUDY_KEYS`, so a figure can group by strategy or seed even when they were not
swept), the job's ``summary.json`` as ``summary.*`` columns, then the columns of its
``rounds.csv``.

Jobs are never dropped silently. The sweep's ``multirun.yaml`` gives the grid hydra
was asked for, so each grid point is ``complete`` (has ``summary.json``),
``incomplete`` (its directory exists but the run failed or was killed) or ``missing``
(never started); a job directory from an older grid in the same sweep dir is
``stale``. Jobs that are not complete get one row with empty round columns, are
listed on stderr, and make the command exit with status 1 (the table is still
written). A one-row-per-job table is written next to it as ``jobs.csv``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fedsim.errors import FedsimError
from fedsim.results import CONFIG, SUMMARY, write_table, write_text
from fedsim.sweep import expand, set_sweep_failures

log = logging.getLogger("fedsim")
TABLE = "collected.parquet"
JOBS = "jobs.csv"
STATUSES = ("complete", "incomplete", "missing", "stale")
STUDY_KEYS = (
    "strategy.name",
    "data.source._target_",
    "run.seed",
    "data.num_clients",
    "failure.dropout",
    "failure.clients",
    "failure.shape",
    "failure.scale",
    "failure.repair_mean_s",
    "checkpoint.enabled",
    "checkpoint.tau_s",
    "checkpoint.delta_s",
    "checkpoint.restart_s",
    "recovery.client",
    "compute.straggler_share",
    "compute.speed_spread",
)


@dataclass(frozen=True)
class Collected:
    """The merged sweep: ``table`` (job × round) and ``jobs`` (one row per job)."""

    table: pd.DataFrame
    jobs: pd.DataFrame

    def not_complete(self) -> pd.DataFrame:
        """Jobs of the grid that did not finish (incomplete or missing)."""
        return self.jobs[self.jobs["status"].isin(["incomplete", "missing"])]


def _scalar(value: object) -> object:
    """Parquet-friendly cell: scalars as they are, anything else as its string form."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def parse_params(overrides: Sequence[str]) -> dict[str, object]:
    """``key=value`` overrides as a typed dict (``0.2`` → float, ``[16,8]`` → ``"[16, 8]"``)."""
    params: dict[str, object] = {}
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.get_key_element().lstrip("+~")
        params[key] = _scalar(o.value()) if not o.is_sweep_override() else o.get_value_element_as_str()
    return params


def expected_grid(sweep_dir: Path) -> list[tuple[str, ...]] | None:
    """Every job's overrides, as hydra expanded them, from the sweep's ``multirun.yaml`` (None if absent or not a grid)."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return None
    hydra_cfg = OmegaConf.load(path).hydra
    params = {str(k): str(v) for k, v in (hydra_cfg.sweeper.get("params") or {}).items()}
    try:
        return [tuple(job) for job in expand(list(hydra_cfg.overrides.task), params)]
    except HydraException:  # not a grid (an optuna search picks its trials as it goes)
        return None


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Sub-directories that hydra made for a job (they hold ``.hydra/overrides.yaml``); nested ones too, as
    an override of a nested config group (``+scenarios/x/method=a``) puts slashes in the job's name."""
    return sorted(p.parent.parent for p in Path(sweep_dir).glob("**/.hydra/overrides.yaml"))


def job_num(job_dir: Path) -> int | None:
    hydra_yaml = job_dir / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        num = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.job.num", default=None)
        if num is not None:
            return int(num)
    head = job_dir.name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def copy_configs(sweep_dir: Path, out: Path) -> list[Path]:
    """Copy the resolved config of a sweep's first job (``config.yaml``) and the sweep's own (``multirun.yaml``: its
    grid) into ``out``, beside the tables a study writes from the sweep."""
    first = min((d for d in job_dirs(sweep_dir) if (d / CONFIG).is_file()), key=lambda d: job_num(d) or 0)
    return [write_text((first / CONFIG).read_text(), Path(out) / CONFIG), write_text((Path(sweep_dir) / "multirun.yaml").read_text(), Path(out) / "multirun.yaml")]


def _study_values(job_dir: Path, skip: set[str]) -> dict[str, object]:
    path = job_dir / CONFIG
    if not path.is_file():
        return {}
    cfg = OmegaConf.load(path)
    out = {}
    for key in STUDY_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if key not in skip and value is not None:
            out[key] = _scalar(value)
    return out


def _job_rows(sweep_dir: Path) -> list[tuple[dict[str, object], Path | None]]:
    """One row per grid point (or stray job), with its directory (None: the job never started)."""
    grid = expected_grid(sweep_dir)
    found = {}
    for d in job_dirs(sweep_dir):
        overrides = tuple(str(o) for o in OmegaConf.load(d / ".hydra" / "overrides.yaml"))
        found[overrides] = d
    keys = list(grid or []) + [o for o in found if grid is None or o not in grid]
    rows = []
    for i, overrides in enumerate(keys):
        d = found.get(overrides)
        params = parse_params(overrides)
        if d is None:
            status, num, name = "missing", i, None
        else:
            status = "complete" if (d / SUMMARY).is_file() else "incomplete"
            if grid is not None and overrides not in grid:
                status = "stale"
            num, name = job_num(d), d.name
        row: dict[str, object] = {"job": name, "job_num": num, "status": status, **params}
        if d is not None:
            row.update(_study_values(d, set(params)))
            if (d / SUMMARY).is_file():
                row.update({f"summary.{k}": _scalar(v) for k, v in json.loads((d / SUMMARY).read_text()).items()})
        rows.append((row, d))
    return rows


def _jobs_frame(rows: list[tuple[dict[str, object], Path | None]]) -> pd.DataFrame:
    jobs = [row for row, _ in rows]
    frame = pd.DataFrame(jobs, columns=_ordered({k for r in jobs for k in r}, jobs))
    return frame.sort_values("job_num", kind="stable", ignore_index=True) if jobs else frame


def _read_rounds(path: Path) -> pd.DataFrame:
    """A job's ``rounds.csv``; a run that a time budget ended before its first round has none (an empty file)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def collect(sweep_dir: Path) -> Collected:
    """Merge every job of ``sweep_dir`` (see the module docstring for the columns)."""
    rows = _job_rows(Path(sweep_dir))
    frames = []
    for row, d in rows:
        rounds_csv = d / "rounds.csv" if d is not None else None
        rounds = _read_rounds(rounds_csv) if row["status"] in ("complete", "stale") and rounds_csv is not None and rounds_csv.is_file() else None
        if rounds is not None and len(rounds):
            frames.append(pd.concat([pd.DataFrame([row] * len(rounds)), rounds], axis=1))
        else:
            frames.append(pd.DataFrame([row]))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["job", "job_num", "status"])
    if len(table):
        table = table.sort_values(["job_num", "round"] if "round" in table else ["job_num"], kind="stable", ignore_index=True)
    return Collected(table=table, jobs=_jobs_frame(rows))


def jobs(sweep_dir: Path) -> Collected:
    """The jobs of ``sweep_dir`` and their status, without reading their rounds (``table`` is empty)."""
    return Collected(table=pd.DataFrame(), jobs=_jobs_frame(_job_rows(Path(sweep_dir))))


def _ordered(columns: set[str], rows: list[dict[str, object]]) -> list[str]:
    """Job columns in first-seen order (id, status, parameters, study keys, summary)."""
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r))
    return [c for c in seen if c in columns]


def report(result: Collected, out: Path) -> str:
    """A few lines for stderr: counts per status, then each job that needs attention."""
    counts = result.jobs["status"].value_counts()
    head = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES if counts.get(s, 0) or s == "complete")
    lines = [f"fedsim collect: {len(result.jobs)} jobs: {head} -> {out}"]
    for _, job in result.jobs[result.jobs["status"] != "complete"].iterrows():
        what = job["job"] if isinstance(job["job"], str) else f"job {job['job_num']}"
        lines.append(f"fedsim collect: {job['status']}: {what}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``fedsim collect <sweep dir> [--out table.parquet]``; exit status 1 when grid points did not finish."""
    parser = argparse.ArgumentParser(prog="fedsim collect", description="Merge a sweep's jobs into one tidy parquet table.")
    parser.add_argument("sweep_dir", type=Path, help="the sweep's hydra.sweep.dir (holds multirun.yaml and one dir per job)")
    parser.add_argument("--out", type=Path, default=None, help=f"output table (default: <sweep dir>/{TABLE}); jobs.csv goes next to it")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"fedsim: error: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    result = collect(args.sweep_dir)
    if result.jobs.empty:
        print(f"fedsim: error: no hydra jobs under {args.sweep_dir} (expected */.hydra/overrides.yaml)", file=sys.stderr)
        return 2
    out = args.out or args.sweep_dir / TABLE
    write_table(result.table, out)
    write_table(result.jobs, out.with_name(JOBS))
    print(report(result, out), file=sys.stderr)
    return 1 if len(result.not_complete()) else 0


class SweepReport(Callback):
    """Hydra callback: at the end of a sweep, one line naming the jobs that failed (the others ran on)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:  # noqa: D102
        found = jobs(Path(config.hydra.sweep.dir))
        bad = found.not_complete()
        failed = [str(j if isinstance(j, str) else n) for j, n in zip(bad["job"], bad["job_num"])]
        set_sweep_failures(failed)
        if failed:
            more = ", …" if len(failed) > 3 else ""
            print(
                f"fedsim: error: {len(failed)} of {len(found.jobs)} jobs did not finish ({', '.join(failed[:3])}{more}); "
                "fix the cause and run the same command again: finished jobs are skipped",
                file=sys.stderr,
            )


class StudyReport(Callback):
    """Hydra callback: when a study's sweep ends, its ``report(sweep_dir, out)`` (a dotted name) writes tables and figures into ``out``."""

    def __init__(self, report: str, out: str) -> None:
        self.report, self.out = report, Path(out)

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:  # noqa: D102
        from hydra.utils import get_method

        try:
            for path in get_method(self.report)(Path(config.hydra.sweep.dir), self.out):
                log.info("wrote %s", path)
        except FedsimError as exc:
            log.error("%s: %s", self.report, exc)
