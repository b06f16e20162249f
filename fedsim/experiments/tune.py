"""The checkpoint-interval tuning study: failure log → Weibull fit → C(τ) curves → τ* → simulated check.

``python -m fedsim.experiments.tune`` (or ``fedsim tune``) runs the whole study in
process and writes tidy tables and one figure to ``out_dir``;
``python -m fedsim.experiments.tune -m tau=0.05,0.1 seed=0,1,2`` runs one grid point
and seed per hydra job and writes that job's ``measured.csv`` in its output folder.
Add ``tuning=checkpoint_tuning`` for the ready study in ``scenarios/tuning/``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from hydra.core.config_store import ConfigStore  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from scipy.stats import t as student_t  # noqa: E402

from fedsim.checkpoint import expected_overhead, optimal_interval, paper_cost  # noqa: E402
from fedsim.checkpoint.fit import WeibullFit, fit_weibull, read_failure_log  # noqa: E402
from fedsim.compose import CONF_DIR, REPO, hydra_argv, is_override, one_line, to_config  # noqa: E402
from fedsim.errors import FedsimError  # noqa: E402
from fedsim.results import atomic_write, discard, only_logs, write_table  # noqa: E402
from fedsim.seeding import rng  # noqa: E402
from fedsim.sweep import first_point  # noqa: E402
from fedsim.sim.checkpointed_job import SIM_MODELS, run_job  # noqa: E402
from fedsim.sim.failures import weibull_time_to_failure  # noqa: E402

SEARCHPATH = f"hydra.searchpath=[file://{REPO / 'scenarios'}]"  # makes scenarios/tuning/ the `tuning` group


@dataclass
class TuneConfig:
    """One tuning study. Times share one unit (e.g. hours); ``delta``, ``restart`` in it too."""

    failure_log: str | None = None  # duration,failed CSV or a fedsim events file; None = synthetic fleet
    true_shape: float = 0.7  # synthetic fleet: Weibull shape k
    true_scale: float = 1.0  # synthetic fleet: Weibull scale λ
    nodes: int = 300  # synthetic fleet size
    observe: float = 3.0  # synthetic fleet: observation window per node; the last lifetime is censored
    delta: float = 0.005  # checkpoint cost δ
    restart: float = 0.02  # restart cost R (node down, no failures)
    total_work: float = 0.2  # minimal-repair job length T (finite jobs from a new node)
    sim_work: float = 300.0  # useful work of one simulated segment/renewal job (long-run rate; O(λ/sim_work) start bias)
    sim_jobs: int = 400  # minimal-repair jobs per seed
    tau: float | None = None  # simulate only this τ (one multirun job); None = the grid
    grid: int = 7  # τ grid points, log-spaced over [min τ*/3, 3 max τ*]
    seed: int = 0  # root seed (multirun: this job's seed)
    seeds: int = 5  # seeds per grid point in the default mode (95% CI across them)
    models: list[str] = field(default_factory=lambda: list(SIM_MODELS))
    table_shapes: list[float] = field(default_factory=lambda: [0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
    out_dir: str = "results/tuning"  # default mode's output folder (relative to the working directory)

    def __post_init__(self) -> None:
        positive = {
            "true_shape": self.true_shape, "true_scale": self.true_scale, "observe": self.observe,
            "delta": self.delta, "total_work": self.total_work, "sim_work": self.sim_work,
        }
        for key, value in positive.items():
            if not value > 0:
                raise FedsimError(f"{key}={value!r} must be > 0; fix the override or conf/tune.yaml")
        if self.restart < 0:
            raise FedsimError(f"restart={self.restart!r} must be >= 0")
        if self.tau is not None and not self.tau > 0:
            raise FedsimError(f"tau={self.tau!r} must be > 0 (or null for the whole grid)")
        for key, value in {"nodes": self.nodes, "sim_jobs": self.sim_jobs, "grid": self.grid, "seeds": self.seeds}.items():
            if value < (2 if key in ("grid", "seeds") else 1):
                raise FedsimError(f"{key}={value!r} is too small; use at least {2 if key in ('grid', 'seeds') else 1}")
        unknown = set(self.models) - set(SIM_MODELS)
        if unknown or not self.models:
            raise FedsimError(f"models={self.models!r}: choose from {list(SIM_MODELS)}")
        if self.failure_log is not None and not Path(self.failure_log).is_file():
            raise FedsimError(f"failure_log={self.failure_log!r} not found; pass a duration,failed CSV or events file")


def synthetic_log(shape: float, scale: float, nodes: int, observe: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fleet's renewal failure trace over ``observe``: each node's lifetimes, the last one censored."""
    durations, censored = [], []
    for node in range(nodes):
        g, left = rng(seed, "failure_log", node), observe
        while (life := weibull_time_to_failure(g, shape, scale)) < left:
            durations.append(life)
            censored.append(False)
            left -= life
        durations.append(left)
        censored.append(True)
    return np.asarray(durations), np.asarray(censored)


def fit_log(cfg: TuneConfig) -> WeibullFit:
    """Fit k, λ to the configured failure log (or the synthetic fleet)."""
    if cfg.failure_log is not None:
        return fit_weibull(*read_failure_log(cfg.failure_log))
    return fit_weibull(*synthetic_log(cfg.true_shape, cfg.true_scale, cfg.nodes, cfg.observe, cfg.seed))


def _overhead(tau: np.ndarray, fit: WeibullFit, cfg: TuneConfig, model: str) -> np.ndarray:
    if model == "paper":
        return np.asarray(paper_cost(tau, cfg.delta, cfg.restart, fit.shape, fit.scale))
    work = cfg.total_work if model == "minimal_repair" else None
    return np.asarray(expected_overhead(tau, cfg.delta, cfg.restart, fit.shape, fit.scale, model, work))


def optima(fit: WeibullFit, cfg: TuneConfig) -> pd.DataFrame:
    """τ* per model (and the paper's first-order form), with the exact overhead at each."""
    rows = []
    for model in ["paper", *cfg.models]:
        best = optimal_interval(cfg.delta, cfg.restart, fit.shape, fit.scale, model, cfg.total_work)
        exact = best.overhead if model != "paper" else float(_overhead(np.array(best.tau), fit, cfg, "renewal"))
        rows.append({"model": model, "tau_star": best.tau, "overhead": exact})
    return pd.DataFrame(rows)  # paper: its τ* judged by the renewal model's exact overhead


def tau_grid(best: pd.DataFrame, points: int) -> np.ndarray:
    """Log-spaced τ from a third of the smallest τ* to three times the largest."""
    return np.geomspace(best["tau_star"].min() / 3, best["tau_star"].max() * 3, points)


def curves(fit: WeibullFit, cfg: TuneConfig, lo: float, hi: float) -> pd.DataFrame:
    """Analytic overhead against τ for every model and the paper's C(τ)/T (tidy)."""
    taus = np.geomspace(lo, hi, 60)
    frames = [pd.DataFrame({"model": m, "tau": taus, "overhead": _overhead(taus, fit, cfg, m)}) for m in ["paper", *cfg.models]]
    return pd.concat(frames, ignore_index=True)


def measure(fit: WeibullFit, cfg: TuneConfig, tau: float, seed: int) -> pd.DataFrame:
    """Simulated overhead at one τ and seed, per model: one long job, or the mean of ``sim_jobs`` finite ones."""
    rows = []
    for model in cfg.models:
        finite = model == "minimal_repair"
        work, jobs = (cfg.total_work, cfg.sim_jobs) if finite else (cfg.sim_work, 1)
        results = [
            run_job(work=work, tau=tau, delta=cfg.delta, restart=cfg.restart, shape=fit.shape, scale=fit.scale,
                    model=model, seed=seed, replicate=j)
            for j in range(jobs)
        ]
        rows.append({
            "model": model, "tau": tau, "seed": seed, "jobs": jobs,
            "overhead": float(np.mean([r.overhead for r in results])),
            "failures": sum(r.failures for r in results), "checkpoints": sum(r.checkpoints for r in results),
        })
    return pd.DataFrame(rows)


def summarise(measured: pd.DataFrame, by: Sequence[str] = ("model", "tau"), value: str = "overhead") -> pd.DataFrame:
    """Mean and 95% Student-t interval of ``value`` across seeds, per ``by`` (default: per model and τ)."""
    g = measured.groupby(list(by))[value]
    out = g.agg(mean="mean", sd="std", seeds="count").reset_index()
    half = student_t.ppf(0.975, out["seeds"] - 1) * out["sd"] / np.sqrt(out["seeds"])
    return out.assign(lo=out["mean"] - half, hi=out["mean"] + half).drop(columns="sd")


def rule_of_thumb(cfg: TuneConfig, scale: float) -> pd.DataFrame:
    """τ*/√(2δλ) against k: how far the exponential rule of thumb is off, per model, at this δ/λ."""
    young = math.sqrt(2 * cfg.delta * scale)
    rows = []
    for k in cfg.table_shapes:
        for model in ["paper", *cfg.models]:
            best = optimal_interval(cfg.delta, cfg.restart, k, scale, model, cfg.total_work)
            rows.append({"shape": k, "model": model, "tau_star": best.tau, "ratio": best.tau / young})
    return pd.DataFrame(rows)


def figure(analytic: pd.DataFrame, summary: pd.DataFrame, best: pd.DataFrame, fit: WeibullFit, path: Path) -> Path:
    """Analytic curves with the measured mean ± 95% CI on top, one colour per model."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    exact = analytic[analytic["model"] != "paper"].replace([np.inf], np.nan)
    palette = dict(zip(sorted(exact["model"].unique()), sns.color_palette("deep")))
    sns.lineplot(data=exact, x="tau", y="overhead", hue="model", palette=palette, ax=ax)
    paper = analytic[analytic["model"] == "paper"]
    ax.plot(paper["tau"], paper["overhead"], "k--", lw=1, label="paper C(τ)/T (first order)")
    for model, rows in summary.groupby("model"):
        ax.errorbar(rows["tau"], rows["mean"], yerr=[rows["mean"] - rows["lo"], rows["hi"] - rows["mean"]],
                    fmt="o", ms=4, capsize=2, color=palette[model], label=f"{model} simulated (95% CI)")
    for _, row in best[best["model"] != "paper"].iterrows():
        ax.axvline(row["tau_star"], color=palette[row["model"]], lw=0.6, ls=":")
    ax.set(xscale="log", xlabel="checkpoint interval τ (useful work)", ylabel="overhead (time / work − 1)",
           title=f"fitted Weibull k = {fit.shape:.2f}, λ = {fit.scale:.2f}; dotted: τ*")
    ax.set_ylim(0, float(np.nanmax(summary["hi"])) * 1.6)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=150))
    plt.close(fig)
    return path


def run_study(cfg: TuneConfig) -> dict[str, Path]:
    """The default mode: fit, curves, τ*, the simulated grid × seeds, the table and the figure."""
    out = Path(cfg.out_dir)
    fit = fit_log(cfg)
    best = optima(fit, cfg)
    taus = tau_grid(best, cfg.grid)
    measured = pd.concat([measure(fit, cfg, float(t), cfg.seed + s) for t in taus for s in range(cfg.seeds)], ignore_index=True)
    summary = summarise(measured)
    analytic = curves(fit, cfg, taus[0], taus[-1])
    paths = {
        "fit": atomic_write(out / "fit.json", lambda p: p.write_text(json.dumps(asdict(fit), indent=2))),
        "optimum": write_table(best, out / "optimum.csv"),
        "curves": write_table(analytic, out / "curves.csv"),
        "measured": write_table(measured, out / "measured.csv"),
        "summary": write_table(summary.merge(analytic_at(fit, cfg, summary), on=["model", "tau"]), out / "summary.csv"),
        "rule_of_thumb": write_table(rule_of_thumb(cfg, fit.scale), out / "rule_of_thumb.csv"),
    }
    paths["figure"] = figure(analytic, summary, best, fit, out / "tuning.png")
    return paths


def analytic_at(fit: WeibullFit, cfg: TuneConfig, summary: pd.DataFrame) -> pd.DataFrame:
    """The analytic overhead at each simulated (model, τ), to put next to the measurement."""
    rows = summary[["model", "tau"]].drop_duplicates()
    return rows.assign(analytic=[float(_overhead(np.array(t), fit, cfg, m)) for m, t in zip(rows["model"], rows["tau"])])


ConfigStore.instance().store(name="tune_schema", node=TuneConfig)


@hydra.main(config_path=str(CONF_DIR), config_name="tune", version_base="1.3")
def _app(raw: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        cfg: TuneConfig = to_config(raw)  # type: ignore[assignment]
        if cfg.tau is None:
            for name, path in run_study(cfg).items():
                print(f"{name}: {path}")
            return
        write_table(measure(fit_log(cfg), cfg, cfg.tau, cfg.seed), out / "measured.csv")
    except FedsimError as exc:
        _fail(str(exc), out)


def _fail(message: str, out: Path) -> None:
    """One line, exit code 2, and no directory left behind by a job that made nothing."""
    print(f"fedsim: error: {message}", file=sys.stderr)
    if only_logs(out):
        discard(out)
    raise SystemExit(2)


def main() -> None:
    """Entry point for ``python -m fedsim.experiments.tune`` and ``fedsim tune`` (argv[0] already replaced)."""
    own = [] if any(a.startswith("hydra.searchpath") for a in sys.argv[1:]) else [SEARCHPATH]
    sys.argv = [sys.argv[0], *hydra_argv(sys.argv[1:], *own)]
    overrides = [a for a in sys.argv[1:] if is_override(a)]
    try:  # an unknown key or a bad value (of a sweep's first point) fails here, in one line, before hydra's own report
        with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            search = [a for a in overrides if a.startswith("hydra.searchpath=")]  # where the `tuning` group lives
            to_config(hydra.compose("tune", overrides=[*first_point(overrides), *search]))
    except Exception as exc:
        print(f"fedsim: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    _app()


if __name__ == "__main__":
    main()
