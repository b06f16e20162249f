"""Sweep bookkeeping: skip jobs that already finished, size torch threads per job, count jobs.

A re-run sweep (same ``hydra.sweep.dir``) finds each job's output directory again,
because hydra names it from the job number and its overrides. A job whose directory
holds a complete run of the *same* config (:func:`fedsim.results.is_done`) is skipped; a
killed or failed job (no summary) or one whose config changed is run again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override


def cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_job(launcher: Mapping[str, object], ncores: int) -> int:
    """Torch threads for one job so that threads × parallel jobs ≤ cores; 0 = leave torch's default.

    joblib runs ``n_jobs`` jobs at once on this machine (−1 = all cores, −2 = all but
    one, as in joblib), so each gets ``cores // n_jobs`` threads. submitit gives each
    job ``cpus_per_task`` cores of its own; ray gives ``ray.remote.num_cpus``. The
    basic launcher runs one job at a time and keeps torch's default.
    """
    if launcher.get("n_jobs") is not None:
        n = int(launcher["n_jobs"])  # type: ignore[arg-type]
        parallel = ncores + 1 + n if n < 0 else n
        return max(1, ncores // max(1, min(parallel, ncores)))
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])  # type: ignore[arg-type]
    remote = (launcher.get("ray") or {}).get("remote") or {}  # type: ignore[union-attr]
    if remote.get("num_cpus"):
        return int(remote["num_cpus"])
    return 0


def expand(task_overrides: Sequence[str], sweeper_params: Mapping[str, str] | None = None) -> list[list[str]]:
    """Every job's overrides, in hydra's order (``hydra.sweeper.params`` first, then the command line)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(task_overrides)
    parsed = OverridesParser.create().parse_overrides(args)
    return BasicSweeper.split_arguments(parsed, None)[0]


def first_point(overrides: Sequence[str]) -> list[str]:
    """The first grid point of a sweep, as plain overrides (what a pre-flight check composes)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        if o.is_hydra_override():
            continue
        value = sweep_values(o)[0] if o.is_sweep_override() else o.get_value_element_as_str()
        out.append(f"{o.get_key_element()}={value}")
    return out


def sweep_values(o: Override) -> list[str]:
    """The values of a sweep to validate: every choice or range value; both ends of an interval (optuna)."""
    from hydra.core.override_parser.types import IntervalSweep

    if isinstance(o.value(), IntervalSweep):
        return [str(o.value().start), str(o.value().end)]
    return list(o.sweep_string_iterator())


def objective_value(summary: Mapping[str, object], name: str | None) -> float:
    """What a job returns to a sweeper: the summary field ``name`` (``run.objective``; None: the final value of the
    task's target metric); NaN (a target never reached) is +∞."""
    value = float(summary[name or f"final_{summary['target_metric']}"])  # type: ignore[arg-type]
    return math.inf if math.isnan(value) else value


_failed: list[str] = []  # jobs of the last sweep in this process that did not finish (set by fedsim.collect.SweepReport)


def sweep_failures() -> list[str]:
    """The jobs :class:`fedsim.collect.SweepReport` found unfinished at the end of this process's sweep."""
    return list(_failed)


def set_sweep_failures(jobs: Sequence[str]) -> None:
    """Record the unfinished jobs of the sweep that just ended (the CLI exits with 2 when there are any)."""
    _failed[:] = list(jobs)
