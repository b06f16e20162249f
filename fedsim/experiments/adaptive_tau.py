"""Which checkpoint interval on a mixed fleet: none, the paper's, the best single τ, ``auto``, or per-client ``adaptive``.

``python -m fedsim.experiments.adaptive_tau`` (settings: :class:`AdaptiveStudy`, ``key=value``
overrides) runs, in order:

1. the optuna search (``fedsim scenarios=tau_search``, hydra's optuna sweeper, in a
   subprocess) for the best single τ on the fleet, on its own seeds (100–104);
2. every method on the evaluation seeds (0–9). A seed fixes the group of each client
   and each client's failure clock, so the methods meet the same failures (paired
   traces) and are compared by paired differences;
3. the homogeneous check: the same search on a fleet with one law, against the
   analytic τ* and the τ the search could not tell apart from it (see :func:`interval`).

Writes tidy tables, ``table.md`` and ``adaptive_tau.png`` to ``out_dir``. System-only
mode (surrogate learner): the compared quantities are virtual times, which it keeps
exact, and it runs the whole study in minutes.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from scipy.stats import t as student_t

from fedsim.checkpoint.adaptive import Law, tau_star
from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import Config, register_configs
from fedsim.experiments.fleet import client_groups, configured_law
from fedsim.experiments.run import ACCOUNTS, run_experiment, summarize
from fedsim.experiments.tune import summarise
from fedsim.results import CONFIG, SUMMARY, markdown_table, write_json, write_table, write_text

log = logging.getLogger("fedsim.adaptive_tau")
BEST = "{best}"  # stands for the searched τ in a method's overrides


@dataclass
class AdaptiveStudy:
    """The study's settings; the fleet itself is a hydra scenario (``fleet``)."""

    fleet: list[str] = field(default_factory=lambda: ["scenarios=mixed_fleet"])  # overrides of the main config
    seeds: int = 10  # evaluation seeds 0 … seeds − 1
    search: list[str] = field(default_factory=lambda: ["scenarios=tau_search"])  # the optuna sweep (its own seeds)
    methods: dict[str, list[str]] = field(default_factory=lambda: {
        "none": ["checkpoint.enabled=false"],
        "paper": ["checkpoint.tau_s=auto", "checkpoint.model=paper"],
        "best single": [f"checkpoint.tau_s={BEST}"],
        "auto": ["checkpoint.tau_s=auto"],
        "adaptive": ["checkpoint.tau_s=adaptive"],  # refit when back up after each failure
        "adaptive per round": ["checkpoint.tau_s=adaptive", "checkpoint.refit_on=rounds"],
    })
    homogeneous: list[str] = field(default_factory=lambda: [  # one law, one client: the analytic model's setting
        "failure.groups=[]", "failure.shape=0.7", "failure.scale=30.0",
        "data.num_clients=1", "data.source.n_samples=200", "run.max_rounds=100",
    ])
    grid: int = 9  # homogeneous check: τ points, log-spaced over [τ*/4, 4τ*]
    grid_seeds: int = 20
    figure_clients: int = 2  # per group, in the τ-over-time panel
    sweep_dir: str = "multirun/adaptive_tau"  # where the optuna sweeps write (not committed)
    out_dir: str = "results/tuning/adaptive"


def compose_config(overrides: Sequence[str]) -> Config:
    """The main config with ``overrides`` (scenarios included), validated."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*overrides, SEARCHPATH]))


def search(overrides: Sequence[str], sweep_dir: Path) -> tuple[float, pd.DataFrame]:
    """Run the optuna sweep (resuming its finished trials); the best τ and one row per trial."""
    cmd = [sys.executable, "-m", "fedsim", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    log.info("search: %s", " ".join(cmd[2:]))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the optuna search failed:\n{proc.stderr[-2000:]}")
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    trials = []
    for summary in sorted(sweep_dir.glob(f"*/{SUMMARY}")):
        job = OmegaConf.load(summary.parent / CONFIG)
        facts = json.loads(summary.read_text())
        trials.append({"trial": int(summary.parent.name.split("_", 1)[0]), "tau_s": float(job.checkpoint.tau_s),
                       "objective": facts["objective"], "value": facts["objective_value"]})
    table = pd.DataFrame(trials).sort_values("trial", ignore_index=True)
    return float(best.best_params["checkpoint.tau_s"]), table


def run_one(cfg: Config, method: str) -> tuple[dict[str, object], pd.DataFrame]:
    """One run: its totals (overall and per failure group) and its τ table."""
    result = run_experiment(cfg)
    acc = result.accounting.assign(group=client_groups(cfg) if cfg.failure.groups else 0)
    summary = summarize(result, 0.0, cfg.run.target_accuracy)
    row: dict[str, object] = {
        "method": method,
        "seed": cfg.run.seed,
        **{k: summary[k] for k in ("virtual_s", "final_surrogate_accuracy", "failures", "checkpoints", *ACCOUNTS)},  # system-only: a modelled accuracy
    }
    row["overhead"] = (row["checkpoint_s"] + row["lost_s"] + row["recovery_s"]) / row["useful_s"]  # type: ignore[operator]
    last = result.events[result.events["kind"] == "receive"].groupby("round")["client"].last()  # who each round waited for
    for g, part in acc.groupby("group"):
        row |= {f"g{g}_{k}": float(part[k].sum()) for k in ("checkpoint_s", "lost_s", "useful_s")}
        row[f"g{g}_last_rounds"] = int(last.isin(part["client"]).sum())
    return row, result.taus.assign(method=method, seed=cfg.run.seed)


def compare(study: AdaptiveStudy, best: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every method on every evaluation seed: one row per run, and every τ set by auto/adaptive."""
    rows, taus = [], []
    for seed in range(study.seeds):
        for method, overrides in study.methods.items():
            cfg = compose_config([*study.fleet, *(o.replace(BEST, repr(best)) for o in overrides), f"run.seed={seed}"])
            t0 = time.perf_counter()
            row, tau = run_one(cfg, method)
            rows.append(row | {"wall_s": time.perf_counter() - t0})
            taus.append(tau)
            log.info("seed %d %s: %.1f virtual s, overhead %.3f", seed, method, row["virtual_s"], row["overhead"])
    return pd.DataFrame(rows), pd.concat(taus, ignore_index=True)


def paired(runs: pd.DataFrame, reference: str, value: str = "virtual_s") -> pd.DataFrame:
    """Per method: mean and 95% t-interval of ``value`` minus the reference method's, seed by seed."""
    wide = runs.pivot(index="seed", columns="method", values=value)
    diff = wide.sub(wide[reference], axis=0).reset_index().melt(id_vars="seed", var_name="method", value_name="diff")
    return summarise(diff, by=["method"], value="diff").assign(quantity=value, reference=reference)


def table(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """mean(std) over seeds of the headline quantities, one row per method."""
    cols = {"virtual_s": "time to finish (s)", "lost_s": "lost work (s)", "checkpoint_s": "checkpoint time (s)",
            "overhead": "overhead", "final_surrogate_accuracy": "final accuracy (surrogate, modelled)"}
    stats = runs.groupby("method")[list(cols)].agg(["mean", "std"])
    out = pd.DataFrame({"method": list(order)})
    for key, name in cols.items():
        digits = 4 if key == "final_surrogate_accuracy" else (3 if key == "overhead" else 0)
        out[name] = [f"{stats.loc[m, (key, 'mean')]:.{digits}f} ({stats.loc[m, (key, 'std')]:.{digits}f})" for m in order]
    return out


def true_taus(cfg: Config, delta: float, restart: float) -> pd.DataFrame:
    """τ* (renewal and the paper's C(τ)) of each group's law and of the fleet law ``auto`` starts from."""
    laws = {f"group {i}": Law(g.shape, g.scale) for i, g in enumerate(cfg.failure.groups)}
    laws["fleet law"] = configured_law(cfg)  # type: ignore[assignment]
    return pd.DataFrame([
        {"law": name, "shape": law.shape, "scale": law.scale, "delta_s": delta, "restart_s": restart,
         "tau_renewal": tau_star(law, delta, restart, "renewal"), "tau_paper": tau_star(law, delta, restart, "paper")}
        for name, law in laws.items()
    ])


def interval(grid: pd.DataFrame, tau_ref: float, search_seeds: int) -> tuple[float, float, pd.DataFrame]:
    """The τ the search could not tell apart from ``tau_ref`` at 95%: paired mean excess below t·sd/√m.

    ``grid`` holds one row per (τ, seed) with ``virtual_s``; D(τ) = T(τ) − T(τ_ref) per
    seed. A τ whose mean D is below t₀.₉₇₅,ₘ₋₁ · sd(D)/√m, m the search's seeds per
    trial, can beat τ_ref in the search by noise alone; the interval spans those τ.
    """
    wide = grid.pivot(index="seed", columns="tau_s", values="virtual_s")
    d = wide.sub(wide[tau_ref], axis=0)
    q = student_t.ppf(0.975, search_seeds - 1)
    rows = pd.DataFrame({"tau_s": d.columns, "mean_excess_s": d.mean().to_numpy(), "sd_s": d.std().to_numpy()})
    rows["noise_s"] = q * rows["sd_s"] / math.sqrt(search_seeds)
    rows["indistinguishable"] = rows["mean_excess_s"] <= rows["noise_s"]
    inside = rows.loc[rows["indistinguishable"], "tau_s"]
    return float(inside.min()), float(inside.max()), rows


def homogeneous_check(study: AdaptiveStudy, sweep_dir: Path) -> tuple[dict[str, object], pd.DataFrame, pd.DataFrame]:
    """Search τ on the one-law fleet, and ask whether the best τ lies in the analytic τ*'s 95% interval."""
    base = [*study.fleet, *study.homogeneous]
    best, trials = search([*study.search, *study.homogeneous], sweep_dir)
    cfg = compose_config([*base, "checkpoint.tau_s=auto"])
    auto = run_experiment(cfg).taus["tau_s"].iloc[0]  # τ* with the exact δ (fixed part + bytes ÷ bandwidth)
    taus = sorted({float(auto), *map(float, np.geomspace(auto / 4, auto * 4, study.grid))})
    rows = []
    for tau in taus:
        for seed in range(study.seeds, study.seeds + study.grid_seeds):  # held out from search and comparison
            rows.append({"tau_s": tau, "seed": seed, "virtual_s": run_experiment(compose_config([*base, f"checkpoint.tau_s={tau!r}", f"run.seed={seed}"])).virtual_s})
    search_seeds = compose_config(study.search).run.repeats
    lo, hi, grid = interval(pd.DataFrame(rows), float(auto), search_seeds)
    facts = {"tau_star": float(auto), "best_tau": best, "interval": [lo, hi], "within": bool(lo <= best <= hi),
             "search_seeds": search_seeds, "grid_seeds": study.grid_seeds, "trials": len(trials)}
    return facts, grid, trials


def figure(runs: pd.DataFrame, taus: pd.DataFrame, truth: pd.DataFrame, cfg: Config, study: AdaptiveStudy, best: float, path: Path) -> Path:
    """Overhead per method (stacked, time to finish on top), and τ over time for a few clients of each adaptive method."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from fedsim import figures

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    adaptive = [m for m, o in study.methods.items() if "checkpoint.tau_s=adaptive" in o]
    fig, axes = plt.subplots(1, 1 + len(adaptive), figsize=(6 + 4.5 * len(adaptive), 4.6), gridspec_kw={"width_ratios": [1.4] + [1] * len(adaptive)})
    ax_bar = axes[0]
    order = list(study.methods)
    parts = runs.groupby("method")[["checkpoint_s", "lost_s", "recovery_s", "useful_s", "virtual_s"]].mean().loc[order]
    share = parts[["checkpoint_s", "lost_s", "recovery_s"]].div(parts["useful_s"], axis=0)
    share.columns = ["checkpoint writes", "lost work", "down + restart"]
    share.index = [m.replace(" ", "\n") for m in order]
    share.plot.bar(stacked=True, ax=ax_bar, rot=0)
    for i, (total, finish) in enumerate(zip(share.sum(axis=1), parts["virtual_s"])):
        ax_bar.text(i, total + 0.01, f"{finish:.0f} s", ha="center", fontsize=8)
    ax_bar.set(ylabel="client time ÷ useful time", xlabel="", title=f"Overhead per method, mean of {study.seeds} seeds (time to finish on top)")
    groups = client_groups(cfg) if cfg.failure.groups else np.zeros(cfg.data.num_clients, int)
    palette = sns.color_palette("deep")
    for ax, method in zip(axes[1:], adaptive):
        mine = taus[(taus["method"] == method) & (taus["seed"] == 0)]
        end = float(runs.loc[(runs["method"] == method) & (runs["seed"] == 0), "virtual_s"].iloc[0])
        for g in np.unique(groups):
            law = truth[truth["law"] == f"group {g}"].iloc[0]
            for i, cid in enumerate(np.flatnonzero(groups == g)[: study.figure_clients]):
                one = mine[mine["client"] == cid]
                ax.step([*one["time_s"], end], [*one["tau_s"], one["tau_s"].iloc[-1]], where="post", color=palette[g], lw=1.2,
                        label=f"group {g}: k = {law['shape']:g}, λ = {law['scale']:g} s" if i == 0 else None)
            ax.axhline(law["tau_renewal"], color=palette[g], ls="--", lw=1)
        ax.axhline(best, color="k", ls=":", lw=1, label=f"best single τ = {best:.2f} s")
        ax.set(yscale="log", xlabel="virtual time (s)", ylabel="τ (virtual s of compute)", title=f"{method}, seed 0 (dashed: true τ*)")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return figures.save(fig, path)


def run_study(study: AdaptiveStudy) -> dict[str, Path]:
    """The whole study; returns the files written."""
    out, sweeps = Path(study.out_dir), Path(study.sweep_dir)
    started = time.perf_counter()
    best, trials = search(study.search, sweeps / "search")
    searched = time.perf_counter()
    runs, taus = compare(study, best)
    compared = time.perf_counter()
    cfg = compose_config([*study.fleet, "checkpoint.tau_s=adaptive"])
    start = taus[(taus["method"] == "auto") & (taus["time_s"] == 0)].iloc[0]  # τ*, δ (fixed part + bytes ÷ bandwidth), R
    truth = true_taus(cfg, float(start["delta_s"]), float(start["restart_s"]))
    check, grid, homo_trials = homogeneous_check(study, sweeps / "homogeneous")
    order = list(study.methods)
    diffs = pd.concat([paired(runs, "best single", value) for value in ("virtual_s", "overhead")], ignore_index=True)
    wall = {"search": searched - started, "compare": compared - searched, "homogeneous": time.perf_counter() - compared}
    facts = {"best_single_tau": best, "auto_tau": float(start["tau_s"]), "homogeneous": check, "wall_s": wall, "study": asdict(study)}
    paths = {
        "runs": write_table(runs, out / "runs.csv"),
        "taus": write_table(taus, out / "tau.parquet"),
        "search": write_table(trials, out / "search.csv"),
        "true_tau": write_table(truth, out / "true_tau.csv"),
        "paired": write_table(diffs, out / "paired.csv"),
        "homogeneous_grid": write_table(grid, out / "homogeneous_grid.csv"),
        "homogeneous_search": write_table(homo_trials, out / "homogeneous_search.csv"),
        "table": write_text(markdown_table(table(runs, order)) + "\n" + markdown_table(diffs), out / "table.md"),
        "figure": figure(runs, taus, truth, cfg, study, best, out / "adaptive_tau.png"),
    }
    paths["summary"] = write_json(facts, out / "summary.json")
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ``python -m fedsim.experiments.adaptive_tau [key=value ...]`` (fields of :class:`AdaptiveStudy`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    register_configs()
    conf = OmegaConf.merge(OmegaConf.structured(AdaptiveStudy), OmegaConf.from_dotlist(list(sys.argv[1:] if argv is None else argv)))
    study: AdaptiveStudy = OmegaConf.to_object(conf)  # type: ignore[assignment]
    for name, path in run_study(study).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
