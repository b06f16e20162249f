"""FedProx's Figure 1 setting (stragglers dropped, or their partial work kept, with and without the proximal term),
and the direction of its heterogeneity result (:func:`heterogeneity_report`).

``fedsim scenarios=stragglers/fedprox_figure1`` runs the sweep (three methods × three
straggler shares × seeds); when it ends, its report (:func:`report`) gathers it into
``results/stragglers/``: ``runs.csv`` (one row per job), ``rounds.csv`` (one row per job and
round), ``summary.md`` (mean (std) over seeds) and ``figure1.png``/``.svg`` (training loss and
test accuracy per round, one panel per straggler share, a band of ± one standard deviation
over seeds). Training loss is FedProx's: the global model's loss on every device's
training rows (``run.train_eval``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedsim.collect import collect, copy_configs
from fedsim.errors import FedsimError
from fedsim.results import markdown_table, mean_std, write_table, write_text

METHODS = {"fedavg": "FedAvg (drops stragglers)", "fedprox_mu0": "FedProx μ = 0 (partial work)", "fedprox_mu1": "FedProx μ = 1 (partial work)"}
KEYS = {"strategy.name": "method", "compute.straggler_share": "stragglers", "run.seed": "seed"}
LAST = 10  # rounds over which a curve's wobble is measured


def gather(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished sweep as (runs, rounds): one row per job, one per job and round."""
    found = collect(sweep_dir)
    done = found.table[found.table["status"] == "complete"]
    if done.empty:
        raise FedsimError(f"no complete jobs under {sweep_dir}; run fedsim scenarios=stragglers/fedprox_figure1 first")
    rounds = done.rename(columns=KEYS)[["job", *KEYS.values(), "round", "time_s", "participants", "global_train_loss", "accuracy", "macro_f1"]]
    methods = rounds["method"].map(METHODS).fillna(rounds["method"])
    order = [*(m for m in METHODS.values() if m in set(methods)), *sorted(set(methods) - set(METHODS.values()))]
    rounds = rounds.assign(method=pd.Categorical(methods, categories=order, ordered=True)).sort_values(["stragglers", "method", "seed", "round"], kind="stable")

    def per_run(g: pd.DataFrame) -> pd.Series:
        tail = g["global_train_loss"].tail(LAST)
        return pd.Series({
            "final_train_loss": g["global_train_loss"].iloc[-1],
            "final_accuracy": g["accuracy"].iloc[-1],
            "wobble": tail.diff().abs().mean(),  # mean round-to-round change of the training loss over the last rounds
            "participants": g["participants"].mean(),
            "virtual_s": g["time_s"].iloc[-1],
        })  # fmt: skip

    runs = rounds.groupby(["job", *KEYS.values()], sort=False, observed=True).apply(per_run, include_groups=False).reset_index()
    return runs, rounds.drop(columns="job")


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (std) over seeds of each method at each straggler share."""
    rows = []
    for (share, method), g in runs.groupby(["stragglers", "method"], sort=False, observed=True):
        rows.append({
            "stragglers": f"{share:.0%}", "method": method, "seeds": len(g), "final training loss": mean_std(g["final_train_loss"]),
            "final test accuracy": mean_std(g["final_accuracy"]), f"|Δ training loss| per round, last {LAST}": mean_std(g["wobble"], 4),
            "clients aggregated per round": f"{g['participants'].mean():.1f}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def figure(rounds: pd.DataFrame, path: Path) -> list[Path]:
    """Training loss (top) and test accuracy (bottom) per round, one column per straggler share."""
    from fedsim.figures import metric_grid, save_all

    order = [m for m in METHODS.values() if m in set(rounds["method"])]
    ys = [("global_train_loss", "training loss"), ("accuracy", "test accuracy")]
    return save_all(metric_grid(rounds, x="round", xlabel="round", ys=ys, column="stragglers", title=lambda v: f"{v:.0%} stragglers", order=order), path)


def report(sweep_dir: Path, out: Path) -> list[Path]:
    """Gather ``sweep_dir`` into ``out``: the tables, the summary, the figure and the configs (a job's, and the sweep's grid)."""
    runs, rounds = gather(sweep_dir)
    table = summary(runs)
    written = [write_table(runs, out / "runs.csv"), write_table(rounds, out / "rounds.csv"), write_table(table, out / "summary.csv")]
    written.append(write_text(markdown_table(table) + "\n", out / "summary.md"))
    return written + figure(rounds, out / "figure1") + copy_configs(sweep_dir, out)


DATASETS = {"iid": "Synthetic IID", "synthetic_0_0": "Synthetic(0,0)", "synthetic_1_1": "Synthetic(1,1)"}


def heterogeneity_report(sweep_dir: Path, out: Path) -> list[Path]:
    """FedAvg on IID, Synthetic(0,0) and Synthetic(1,1) (``scenarios=stragglers/heterogeneity``): rounds, a mean (std)
    summary of the first and last rounds, and the training loss and test accuracy per round."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from fedsim.figures import save_all, theme

    found = collect(sweep_dir).table
    done = found[found["status"] == "complete"]
    if done.empty:
        raise FedsimError(f"no complete jobs under {sweep_dir}; run fedsim scenarios=stragglers/heterogeneity first")
    names = done["scenarios/stragglers/data"].map(DATASETS)
    rounds = done.assign(data=pd.Categorical(names, categories=list(DATASETS.values()), ordered=True)).rename(columns={"run.seed": "seed"})
    rounds = rounds[["data", "seed", "round", "time_s", "global_train_loss", "accuracy", "macro_f1"]].sort_values(["data", "seed", "round"])
    rows = []
    for data, g in rounds.groupby("data", observed=True):
        first, last = g[g["round"] == g["round"].min()], g[g["round"] == g["round"].max()]
        rows.append({"data": data, "seeds": len(last), "training loss, round 1": mean_std(first["global_train_loss"]),
                     f"training loss, round {int(last['round'].iloc[0])}": mean_std(last["global_train_loss"]), "final test accuracy": mean_std(last["accuracy"])})  # fmt: skip
    table = pd.DataFrame(rows)
    theme()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for ax, (y, label) in zip(axes, (("global_train_loss", "training loss"), ("accuracy", "test accuracy"))):
        sns.lineplot(data=rounds, x="round", y=y, hue="data", errorbar="sd", err_style="band", ax=ax, legend=ax is axes[-1])
        ax.set(xlabel="round", ylabel=label)
    sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.0, 1.0), title="")
    fig.tight_layout()
    written = [write_table(rounds, out / "rounds.csv"), write_table(table, out / "summary.csv"), write_text(markdown_table(table) + "\n", out / "summary.md")]
    return written + save_all(fig, out / "heterogeneity") + copy_configs(sweep_dir, out)
