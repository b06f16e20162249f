"""A job that averages over a fixed set of seeds, and the number a job returns to a sweeper.

``run.repeats=n`` runs seeds ``run.seed`` … ``run.seed + n − 1`` of one config, each
into ``seed_<s>/`` of the job's directory (a complete run each), then writes
``seeds.csv`` (one summary row per seed) and a ``summary.json`` of their means.
``run.objective`` names the summary field the hydra task function returns, so
``hydra/sweeper=optuna`` can minimise, say, the mean virtual time to finish over the
same seeds in every trial (common random numbers: trials differ only in what is swept).
A plain run (``repeats=1``) is unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from fedsim.config import Config
from fedsim.experiments.run import run_and_write
from fedsim.results import CONFIG, SUMMARY, write_json, write_table, write_text
from fedsim.sweep import objective_value

if TYPE_CHECKING:
    import pandas as pd

SEEDS = "seeds.csv"


def mean_summary(table: pd.DataFrame) -> dict[str, object]:
    """Means of the numeric summary fields over seeds (NaN if any seed has NaN), the fields every seed shares
    (the task, its target metric), the seeds and stop reasons."""
    numeric = table.drop(columns="seed").select_dtypes("number")
    out: dict[str, object] = {k: float(numeric[k].mean(skipna=False)) for k in numeric.columns}
    out |= {k: table[k].iloc[0] for k in ("task", "target_metric") if k in table and table[k].nunique() == 1}
    out["stop_reason"] = ",".join(sorted(set(map(str, table.get("stop_reason", [])))))
    out["seeds"] = [int(s) for s in table["seed"]]
    return out


def run_seeds(cfg: Config, out_dir: Path, resolved_yaml: str, *, resume: bool = False) -> dict[str, object]:
    """Run ``cfg`` once, or over ``run.repeats`` seeds, into ``out_dir``; returns the (mean) summary."""
    if cfg.run.repeats == 1:
        return run_and_write(cfg, out_dir, resolved_yaml, resume=resume)
    out_dir = Path(out_dir)
    write_text(resolved_yaml, out_dir / CONFIG)
    rows = []
    for seed in range(cfg.run.seed, cfg.run.seed + cfg.run.repeats):
        one = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, seed=seed, repeats=1))
        yaml = OmegaConf.to_yaml(OmegaConf.merge(OmegaConf.create(resolved_yaml), {"run": {"seed": seed, "repeats": 1}}))
        rows.append({"seed": seed, **run_and_write(one, out_dir / f"seed_{seed}", yaml, resume=resume)})
    import pandas as pd

    table = pd.DataFrame(rows)
    write_table(table, out_dir / SEEDS)
    summary = mean_summary(table)
    summary |= {"objective": cfg.run.objective, "objective_value": objective_value(summary, cfg.run.objective)}
    write_json(summary, out_dir / SUMMARY)
    return summary
