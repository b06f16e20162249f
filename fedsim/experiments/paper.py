"""The checkpointing paper's comparison: Table II, Table III, Fig. 2 and Fig. 3 from hydra sweeps.

Each study is a multirun scenario (``scenarios/paper/``). When its sweep ends, the
:class:`Report` callback gathers the sweep into tidy tables in the results folder
(``runs_<tag>.csv``: one row per run; ``rounds_<tag>.csv``: one row per run and round;
``auc_<tag>.csv``: one row per client model) and redraws every table and figure the
tidy tables present allow, so studies can run in any order and ROAD rows join the
tables when a ROAD sweep exists. ``fedsim paper gather|render`` does the same by hand.

Accuracy and AUC are scored per client, on the client's own test rows, with the
model that client would use: the global model (FedAvg, FedProx, FedAdam, FedYogi,
proposed) or its personalisation of it (FedL2P); ``client_accuracy`` is their mean.
The global model's accuracy on the whole test set is reported beside it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fedsim.collect import collect
from fedsim.errors import FedsimError
from fedsim.results import markdown_table, mean_std, write_table, write_text

log = logging.getLogger("fedsim.paper")

METHODS = {"fedavg": "FedAvg", "fedl2p": "FedL2P", "proposed": "Proposed", "fedprox": "FedProx", "fedadam": "FedAdam", "fedyogi": "FedYogi"}
DATASETS = {"synthetic": "synthetic", "unsw_nb15": "UNSW-NB15", "road": "ROAD", "kddcup99": "KDDCUP99", "nsl_kdd": "NSL-KDD"}
# Table II of the paper: accuracy (%; FedAvg's UNSW value is printed as 0.89), AUC-ROC, time (s)
PAPER_TABLE2 = {
    ("UNSW-NB15", "FedAvg"): (89.0, 0.88, 600.0),
    ("UNSW-NB15", "FedL2P"): (92.1, 0.91, 550.0),
    ("UNSW-NB15", "Proposed"): (97.5, 0.96, 300.0),
    ("ROAD", "FedAvg"): (85.3, 0.82, 720.0),
    ("ROAD", "FedL2P"): (88.7, 0.86, 670.0),
    ("ROAD", "Proposed"): (91.4, 0.89, 430.0),
}
# Table III of the paper: Mann-Whitney U, p; KS statistic, p (baseline not stated)
PAPER_TABLE3 = {"UNSW-NB15": (10234.0, 3.45e-15, 0.471, 2.93e-11), "ROAD": (9785.0, 1.02e-08, 0.359, 1.25e-07)}
RUN_COLUMNS = {
    "summary.final_client_accuracy": "client_accuracy",
    "summary.final_client_auc": "client_auc",
    "summary.final_accuracy": "accuracy",
    "summary.final_auc": "auc",
    "summary.virtual_s": "virtual_s",
    "summary.time_to_target_s": "time_to_target_s",
    "summary.wall_total_s": "wall_s",
    "summary.rounds": "rounds",
    "summary.stop_reason": "stop_reason",
    "summary.failures": "failures",
    "summary.dropouts": "dropouts",
    "summary.lost_s": "lost_s",
    "summary.checkpoint_s": "checkpoint_s",
}
KEYS = {"strategy.name": "method", "run.seed": "seed", "data.num_clients": "num_clients", "failure.dropout": "dropout"}


def _dataset(target: object) -> str:
    module = str(target).split(".")[-2] if isinstance(target, str) and "." in target else str(target)
    return DATASETS.get(module, module)


def gather(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A finished sweep as tidy tables: (runs, rounds, client AUCs of each run's last round)."""
    found = collect(sweep_dir)
    done = found.jobs[found.jobs["status"] == "complete"]
    if done.empty:
        raise FedsimError(f"no complete jobs under {sweep_dir}; run the study's scenario first")
    if len(done) < len(found.jobs):
        log.warning("%d of %d jobs under %s are not complete; they are left out", len(found.jobs) - len(done), len(found.jobs), sweep_dir)
    ids = pd.DataFrame(
        {
            "dataset": [_dataset(t) for t in done["data.source._target_"]],
            **{new: done[old].to_numpy() for old, new in KEYS.items()},
            "job": done["job"].to_numpy(),
        }
    )
    ids["method"] = ids["method"].map(lambda m: METHODS.get(m, m))
    runs = pd.concat([ids, done[[c for c in RUN_COLUMNS if c in done]].rename(columns=RUN_COLUMNS).reset_index(drop=True)], axis=1)
    table = found.table[found.table["job"].isin(runs["job"])]
    cols = [c for c in ("round", "time_s", "loss", "accuracy", "auc", "client_loss", "client_accuracy", "client_auc") if c in table]
    rounds = runs[list(ids.columns)].merge(table[["job", *cols]], on="job")
    aucs = []
    for job in runs.itertuples():
        path = Path(sweep_dir) / job.job / "client_eval.csv"
        if path.is_file():
            ev = pd.read_csv(path)
            last = ev[ev["round"] == ev["round"].max()]
            aucs.append(pd.DataFrame({"dataset": job.dataset, "method": job.method, "seed": job.seed, "client": last["client"], "auc": last["auc"]}))
    auc = pd.concat(aucs, ignore_index=True) if aucs else pd.DataFrame(columns=["dataset", "method", "seed", "client", "auc"])
    return runs, rounds.drop(columns="job"), auc


def _read(out: Path, kind: str, tags: Iterable[str] | None = None) -> pd.DataFrame:
    paths = sorted(out.glob(f"{kind}_*.csv")) if tags is None else [out / f"{kind}_{t}.csv" for t in tags if (out / f"{kind}_{t}.csv").is_file()]
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True) if paths else pd.DataFrame()


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method: mean and std over seeds, with the paper's numbers beside them."""
    rows = []
    metrics = ("client_accuracy", "client_auc", "accuracy", "auc", "virtual_s", "time_to_target_s", "wall_s", "rounds")
    for (dataset, method), g in runs.groupby(["dataset", "method"], sort=False):
        row: dict[str, object] = {"dataset": dataset, "method": method, "runs": len(g)}
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_std"] = float(g[m].mean()), float(g[m].std(ddof=1)) if len(g) > 1 else float("nan")
        row["target_reached"] = int(g["time_to_target_s"].notna().sum())
        paper = PAPER_TABLE2.get((dataset, method), (np.nan, np.nan, np.nan))
        row["paper_accuracy_pct"], row["paper_auc"], row["paper_time_s"] = paper
        rows.append(row)
    return pd.DataFrame(rows)


def table2_markdown(runs: pd.DataFrame, table: pd.DataFrame) -> str:
    """Table II as Markdown, mean (std) over seeds."""
    view = []
    for row in table.itertuples():
        g = runs[(runs["dataset"] == row.dataset) & (runs["method"] == row.method)]
        view.append(
            {
                "dataset": row.dataset,
                "method": row.method,
                "runs": row.runs,
                "accuracy (clients)": mean_std(g["client_accuracy"]),
                "AUC (clients)": mean_std(g["client_auc"]),
                "accuracy (global, test set)": mean_std(g["accuracy"]),
                "virtual time to finish (s)": mean_std(g["virtual_s"]),
                "virtual time to target (s)": mean_std(g["time_to_target_s"]) + f" [{row.target_reached}/{row.runs}]",
                "wall (s)": mean_std(g["wall_s"]),
                "paper acc. (%)": _num(row.paper_accuracy_pct),
                "paper AUC": _num(row.paper_auc),
                "paper time (s)": _num(row.paper_time_s),
            }
        )
    return markdown_table(pd.DataFrame(view))


def _num(v: float) -> str:
    return "–" if pd.isna(v) else f"{v:g}"


def compare_auc(proposed: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """One-sided tests that the proposed method's AUCs are larger than a baseline's.

    Mann-Whitney U with ``alternative="greater"``; two-sample KS with
    ``alternative="less"`` (scipy's convention: the proposed sample's CDF lies below
    the baseline's, i.e. its values are larger). Effect sizes: the probability of
    superiority A = U / (n₁n₂) and Cliff's δ = 2A − 1.
    """
    from scipy.stats import ks_2samp, mannwhitneyu

    n1, n2 = len(proposed), len(baseline)
    mw = mannwhitneyu(proposed, baseline, alternative="greater")
    ks = ks_2samp(proposed, baseline, alternative="less")
    a = float(mw.statistic) / (n1 * n2)
    return {"n_proposed": n1, "n_baseline": n2, "U": float(mw.statistic), "p_mw": float(mw.pvalue), "KS": float(ks.statistic), "p_ks": float(ks.pvalue), "A": a, "cliffs_delta": 2 * a - 1}


def table3(auc: pd.DataFrame, reference: str = "Proposed") -> pd.DataFrame:
    """The proposed method against every baseline, per dataset, on per-client AUCs over all seeds."""
    rows = []
    auc = auc.dropna(subset=["auc"])
    for dataset, g in auc.groupby("dataset", sort=False):
        mine = g.loc[g["method"] == reference, "auc"].to_numpy()
        for method in g["method"].unique():
            theirs = g.loc[g["method"] == method, "auc"].to_numpy()
            if method == reference or len(mine) < 2 or len(theirs) < 2:
                continue
            paper = PAPER_TABLE3.get(dataset, (np.nan,) * 4)
            rows.append({"dataset": dataset, "baseline": method, **compare_auc(mine, theirs), "paper_U": paper[0], "paper_p_mw": paper[1], "paper_KS": paper[2], "paper_p_ks": paper[3]})
    return pd.DataFrame(rows)


def render(out: Path) -> list[Path]:
    """Draw every table and figure the tidy tables in ``out`` allow; returns the files written."""
    from fedsim.figures import paper as paper_figures

    out = Path(out)
    written: list[Path] = []
    runs, rounds, auc = (_read(out, k, None) for k in ("runs", "rounds", "auc"))
    base = runs[runs["study"] == "table2"] if len(runs) else runs
    if len(base):
        t2 = table2(base)
        written += [write_table(t2, out / "table2.csv"), write_text(_table2_note(base) + table2_markdown(base, t2), out / "table2.md")]
        samples = auc[auc["study"] == "table2"].drop(columns="study")
        written.append(write_table(samples, out / "auc_samples.csv"))
        t3 = table3(samples)
        written += [write_table(t3, out / "table3.csv"), write_text(_table3_note() + markdown_table(t3, digits=4), out / "table3.md")]
        written += paper_figures.fig2(rounds[rounds["study"] == "table2"], out / "fig2")
    sweeps = runs[runs["study"].isin(["clients", "dropout"])] if len(runs) else runs
    if len(sweeps):
        written += paper_figures.fig3(sweeps, out / "fig3")
    return written


def _table2_note(runs: pd.DataFrame) -> str:
    present = sorted(runs["dataset"].unique())
    road = "" if "ROAD" in present else "ROAD: not run (no ROAD captures in ../shared/datasets; `fedsim scenarios=paper/table2_road data.source.path=<ROAD dir>` adds its rows).\n\n"
    return (
        f"# Table II: accuracy, AUC-ROC and training time, mean (std) over seeds\n\nDatasets: {', '.join(present)}. {road}"
        "Accuracy and AUC are each client's model on its own test rows, averaged over clients; time is virtual seconds "
        "(to finish, and to first reach the target accuracy with the global model; [reached/runs]); wall is real seconds. "
        "The paper's columns are its Table II.\n\n"
    )


def _table3_note() -> str:
    return (
        "# Table III: is the proposed method's AUC larger than each baseline's?\n\n"
        "One-sided Mann-Whitney U and two-sample Kolmogorov-Smirnov on per-client AUCs pooled over seeds "
        "(auc_samples.csv); A = U/(n₁n₂) is the probability that a proposed client's AUC beats a baseline client's, "
        "Cliff's δ = 2A − 1. The paper's columns are its Table III (it does not say which baseline).\n\n"
    )


def gather_into(study: str, sweep_dir: Path, out: Path, tag: str | None = None) -> list[Path]:
    """Gather ``sweep_dir`` (a study: table2, clients or dropout) into ``out`` as tidy tables tagged ``tag``."""
    if study not in ("table2", "clients", "dropout"):
        raise FedsimError(f"unknown paper study {study!r}; use table2, clients or dropout")
    runs, rounds, auc = gather(Path(sweep_dir))
    tag = tag or study
    return [write_table(t.assign(study=study), Path(out) / f"{kind}_{tag}.csv") for kind, t in (("runs", runs), ("rounds", rounds), ("auc", auc))]


class Report(Callback):
    """Hydra callback: when a paper study's sweep ends, gather it into ``out`` and redraw the tables and figures."""

    def __init__(self, study: str, out: str, tag: str | None = None) -> None:
        self.study, self.out, self.tag = study, Path(out), tag

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:  # noqa: D102
        try:
            gather_into(self.study, Path(config.hydra.sweep.dir), self.out, self.tag)
            for path in render(self.out):
                log.info("wrote %s", path)
        except FedsimError as exc:
            log.error("paper report: %s", exc)


def main(argv: Sequence[str] | None = None) -> int:
    """``fedsim paper gather <study> <sweep dir> [--tag T] [--out DIR]`` and ``fedsim paper render [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="fedsim paper", description="Tables and figures of the checkpointing paper's comparison.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gather", help="turn a finished study sweep into tidy tables")
    g.add_argument("study", choices=["table2", "clients", "dropout"])
    g.add_argument("sweep_dir", type=Path)
    g.add_argument("--tag", default=None, help="file tag (default: the study name), e.g. table2_road")
    for p in (g, sub.add_parser("render", help="draw every table and figure the tidy tables allow")):
        p.add_argument("--out", type=Path, default=Path("results/paper"))
    args = parser.parse_args(argv)
    try:
        if args.command == "gather":
            gather_into(args.study, args.sweep_dir, args.out, args.tag)
        for path in render(args.out):
            print(path)
    except (FedsimError, OSError) as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        return 2
    return 0
