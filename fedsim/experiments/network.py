"""Network scaling study: round time and time-to-target against the number of clients, per server link.

    python -m fedsim.experiments.network scenarios=network_scaling

Weak scaling: every client holds the same number of rows (:attr:`Grid.rows_per_client`),
so compute per client stays fixed and only the network and the aggregation change with
the number of clients. For each server link (unlimited, 1 Gbit/s, 100 Mbit/s, shared by
all downloads and, separately, all uploads) and each client count, a system-only run
gives the round time and the surrogate's time-to-target with the real model's message
size; up to :attr:`Grid.real_max_clients` clients a torch run gives the real
time-to-target too. Each point is set beside the network model's prediction (the
closed form for identical links, the fluid model for the ``spread`` links;
:mod:`fedsim.fl.round_time`). Writes ``points.csv``, ``curves.csv``, ``knees.csv``,
``network_scaling.{png,svg}``, ``config.yaml`` and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate

from fedsim.config import Config
from fedsim.errors import FedsimError
from fedsim.experiments.plugins import build_model, build_task
from fedsim.experiments.run import build_network, run_experiment, time_to_target
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.round_time import fluid_round_s, identical_round_s, knee
from fedsim.fl.surrogate import LearningCurve
from fedsim.results import write_json, write_table
from fedsim.seeding import rng
from fedsim.sim.compute import draw_speeds
from fedsim.train.flat import FlatLayout

log = logging.getLogger("fedsim.network")


@dataclass(frozen=True)
class Grid:
    """The study's grid: client counts × server links × link spreads, and where real training stops."""

    clients: tuple[int, ...] = (2, 5, 10, 20, 50, 100, 200, 500, 1000)
    servers_mbps: tuple[float | None, ...] = (None, 1000.0, 100.0)  # None = unlimited
    spreads: tuple[float, ...] = (0.0, 0.5)  # network.spread of the system-only runs
    real_max_clients: int = 20  # torch training (identical links) up to here; ~3 min per run at 50 on 2 cores
    rows_per_client: int = 500
    curve_points: int = 80  # closed-form curve resolution


@dataclass(frozen=True)
class Model:
    """What the predictions need to know about the model."""

    bits: float  # one message (the whole state), bits
    parameters: int  # entries aggregated per update


def server_label(mbps: float | None) -> str:
    """``unlimited``, ``1 Gbit/s``, ``100 Mbit/s``."""
    if mbps is None:
        return "unlimited"
    return f"{mbps / 1000:g} Gbit/s" if mbps >= 1000 else f"{mbps:g} Mbit/s"


def n_samples_for(cfg: Config, clients: int, rows_per_client: int) -> int:
    """Synthetic rows to generate so that, after the test and validation hold-outs, each client gets about ``rows_per_client``."""
    test_fraction = getattr(cfg.data.source, "test_fraction", None)
    if test_fraction is None or not hasattr(cfg.data.source, "n_samples"):
        raise FedsimError("the network study sizes the data per client count; use data=synthetic (a source with n_samples)")
    return math.ceil(clients * rows_per_client / ((1 - test_fraction) * (1 - cfg.data.val_fraction)))


def configure(cfg: Config, *, clients: int, server_mbps: float | None, spread: float, system_only: bool, rows_per_client: int) -> Config:
    """``cfg`` at one grid point; everything else, the seed included, unchanged."""
    source = dataclasses.replace(cfg.data.source, n_samples=n_samples_for(cfg, clients, rows_per_client))
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, num_clients=clients, source=source),
        network=dataclasses.replace(cfg.network, server_down_mbps=server_mbps, server_up_mbps=server_mbps, spread=spread),
        compute=dataclasses.replace(cfg.compute, system_only=system_only),
    )


def aggregation_s(cfg: Config, updates: float, model: Model) -> float:
    """The modelled aggregation time (NaN for ``measured``, which has no prediction)."""
    if cfg.run.aggregation == "measured":
        return math.nan
    cost = AggregationCost(cfg.run.aggregation, cfg.run.aggregation_per_param_s, cfg.run.aggregation_scale, parameters=model.parameters)
    return cfg.run.aggregation_s + cost.extra_s(updates, 0.0)  # type: ignore[arg-type]


def predicted_round_s(cfg: Config, rows: np.ndarray, model: Model) -> float:
    """The fluid model's round time for ``cfg``'s links and clients with ``rows`` training rows each."""
    n, net = cfg.data.num_clients, build_network(cfg)
    speeds = draw_speeds(rng(cfg.run.seed, "speed"), n, cfg.compute.speed_dist, cfg.compute.speed_spread)
    links = net.clients
    latency = links.latency_s if links is not None else np.full(n, net.latency_s)
    down = links.down_bps if links is not None else np.full(n, net.down_bps)
    up = links.up_bps if links is not None else np.full(n, net.up_bps)
    return fluid_round_s(
        bits=model.bits,
        latency_s=latency,
        down_bps=down,
        up_bps=up,
        compute_s=rows * cfg.strategy.local_epochs * cfg.compute.cost_per_sample_s / speeds,
        server_down_bps=net.server_down_bps or math.inf,
        server_up_bps=net.server_up_bps or math.inf,
        aggregation_s=aggregation_s(cfg, n, model),
    )


def closed_form_round_s(cfg: Config, clients: float, rows: float, model: Model, server_mbps: float | None) -> float:
    """The closed form for identical clients with ``rows`` rows each (``clients`` may be fractional, for curves)."""
    server = server_mbps * 1e6 if server_mbps is not None else math.inf
    net = cfg.network
    return identical_round_s(
        clients,
        bits=model.bits,
        latency_s=net.latency_s,
        down_bps=net.down_mbps * 1e6,
        up_bps=net.up_mbps * 1e6,
        compute_s=rows * cfg.strategy.local_epochs * cfg.compute.cost_per_sample_s,
        server_down_bps=server,
        server_up_bps=server,
        aggregation_s=aggregation_s(cfg, clients, model),
    )


def surrogate_rounds(cfg: Config) -> int:
    """Rounds the system-only surrogate needs to reach ``run.target_accuracy``."""
    curve = LearningCurve(final=cfg.compute.surrogate_final_accuracy, scale_epochs=cfg.compute.surrogate_scale_epochs)
    return curve.rounds_to(cfg.run.target_accuracy, cfg.strategy.local_epochs)


def run_point(cfg: Config, model: Model, *, mode: str, server_mbps: float | None, spread: float) -> dict[str, object]:
    """One simulation and its prediction, as a row of ``points.csv``."""
    t0 = time.perf_counter()
    result = run_experiment(cfg)
    wall = time.perf_counter() - t0
    rounds = result.rounds
    rows = result.clients[result.clients["round"] == 1].sort_values("client")["num_samples"].to_numpy()
    predicted = predicted_round_s(cfg, rows, model)
    accuracy = result.task.target_metric  # the surrogate's modelled accuracy
    reached = rounds.loc[rounds[accuracy] >= cfg.run.target_accuracy, "round"]
    n_target = int(reached.iloc[0]) if len(reached) else math.nan
    measured = float(rounds["round_time_s"].mean())
    return {
        "mode": mode,
        "clients": cfg.data.num_clients,
        "server": server_label(server_mbps),
        "server_mbps": server_mbps if server_mbps is not None else math.nan,
        "spread": spread,
        "rows_mean": float(rows.mean()),
        "round_time_s": measured,
        "round_time_range_s": float(rounds["round_time_s"].max() - rounds["round_time_s"].min()),
        "predicted_round_s": predicted,
        "rel_error": measured / predicted - 1,
        "closed_form_round_s": closed_form_round_s(cfg, cfg.data.num_clients, float(rows.mean()), model, server_mbps) if spread == 0 else math.nan,
        "rounds_to_target": n_target,
        "time_to_target_s": time_to_target(rounds, accuracy, cfg.run.target_accuracy),
        "predicted_time_to_target_s": n_target * predicted,
        f"final_{accuracy}": float(rounds[accuracy].iloc[-1]),
        "wall_s": wall,
    }


def model_facts(cfg: Config) -> Model:
    """Message bits and aggregated entries of the configured model (built once on CPU)."""
    data = instantiate(dataclasses.replace(cfg.data.source, n_samples=100), seed=cfg.run.seed)
    layout = FlatLayout.of(build_model(cfg, build_task(cfg, data), data.input_shape, torch.device("cpu")))
    return Model(bits=8.0 * layout.nbytes(), parameters=layout.size)


def study(cfg: Config, grid: Grid = Grid()) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run the grid; returns (points, closed-form curves, knees)."""
    if cfg.network.trace is not None:
        raise FedsimError("the network study predicts constant-rate links; drop network.trace")
    model = model_facts(cfg)
    rows = []
    for server in grid.servers_mbps:
        for spread in grid.spreads:
            for n in grid.clients:
                modes = ["system_only"] + (["real"] if spread == 0 and n <= grid.real_max_clients else [])
                for mode in modes:
                    point = configure(cfg, clients=n, server_mbps=server, spread=spread, system_only=mode == "system_only", rows_per_client=grid.rows_per_client)
                    rows.append(run_point(point, model, mode=mode, server_mbps=server, spread=spread))
                    r = rows[-1]
                    log.info("%s %s spread %g, %d clients: round %.3f s (predicted %.3f), target at %.1f s", mode, r["server"], spread, n, r["round_time_s"], r["predicted_round_s"], r["time_to_target_s"])
    points = pd.DataFrame(rows)
    rounds = surrogate_rounds(cfg)
    dense = np.geomspace(min(grid.clients), max(grid.clients), grid.curve_points)
    curves = pd.DataFrame(
        [
            {"clients": n, "server": server_label(s), "round_s": (r := closed_form_round_s(cfg, n, grid.rows_per_client, model, s)), "time_to_target_s": rounds * r}
            for s in grid.servers_mbps
            for n in dense
        ]
    )
    return points, curves, knees(cfg, grid, model, points)


def knees(cfg: Config, grid: Grid, model: Model, points: pd.DataFrame) -> pd.DataFrame:
    """Per capped server: the client counts beyond which it, not the client links, sets the download and upload times."""
    out = []
    base = points[(points["mode"] == "system_only") & (points["spread"] == 0) & (points["server"] == "unlimited")].set_index("clients")
    for s in (s for s in grid.servers_mbps if s is not None):
        mine = points[(points["mode"] == "system_only") & (points["spread"] == 0) & (points["server"] == server_label(s))].set_index("clients")
        ratio = mine["round_time_s"] / base["round_time_s"]
        out.append(
            {
                "server": server_label(s),
                "knee_download_clients": knee(s * 1e6, cfg.network.down_mbps * 1e6),
                "knee_upload_clients": knee(s * 1e6, cfg.network.up_mbps * 1e6),
                "seconds_per_client_above": 2 * model.bits / (s * 1e6),
                "first_simulated_slower_than_unlimited": int(ratio[ratio > 1 + 1e-9].index.min()) if (ratio > 1 + 1e-9).any() else math.nan,
                "slowdown_at_max_clients": float(ratio.iloc[-1]),
            }
        )
    return pd.DataFrame(out)


def plot(points: pd.DataFrame, curves: pd.DataFrame, knee_table: pd.DataFrame, path: Path) -> list[Path]:
    """Round time and time-to-target against clients: closed-form lines, fluid-model dashes, simulated markers, knees."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from fedsim import figures

    figures.theme()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharex=True)
    colors = {s: f"C{i}" for i, s in enumerate(curves["server"].unique())}
    markers = {("system_only", False): dict(marker="o", ms=5), ("system_only", True): dict(marker="s", ms=6, mfc="none"), ("real", False): dict(marker="^", mfc="none", ms=9)}
    for ax, y, title in ((axes[0], "round_time_s", "Round time"), (axes[1], "time_to_target_s", "Time to target accuracy")):
        for server, c in curves.groupby("server", sort=False):
            ax.plot(c["clients"], c["round_s" if y == "round_time_s" else y], color=colors[server], lw=1.5)
        for (server, spread, mode), p in points.groupby(["server", "spread", "mode"], sort=False):
            p = p.sort_values("clients")
            ax.plot(p["clients"], p[y], ls="none", color=colors[server], **markers[mode, bool(spread)])
            if spread and mode == "system_only":
                ax.plot(p["clients"], p["predicted_round_s" if y == "round_time_s" else "predicted_time_to_target_s"], ls="--", lw=1, color=colors[server])
        lo, hi = points["clients"].min(), points["clients"].max()
        for k in knee_table.itertuples():
            for at, ls, lw in ((k.knee_upload_clients, ":", 1.0), (k.knee_download_clients, "-.", 0.7)):
                if lo <= at <= hi:
                    ax.axvline(at, color=colors[k.server], ls=ls, lw=lw)
        ax.set(xscale="log", yscale="log", xlabel="clients", ylabel="virtual seconds", title=title)
    spreads = sorted(points["spread"].unique())
    handles = [Line2D([], [], color=c, lw=2, label=s) for s, c in colors.items()] + [
        Line2D([], [], color="k", lw=1.5, label="closed form, identical links"),
        Line2D([], [], color="k", lw=1, ls="--", label=f"fluid model, spread {spreads[-1]:g}"),
        Line2D([], [], color="k", ls="none", label="system-only, identical", **markers["system_only", False]),
        Line2D([], [], color="k", ls="none", label=f"system-only, spread {spreads[-1]:g}", **markers["system_only", True]),
        Line2D([], [], color="k", ls="none", label="torch training, identical", **markers["real", False]),
        Line2D([], [], color="k", ls=":", lw=1, label="knee: uploads (C / up rate)"),
        Line2D([], [], color="k", ls="-.", lw=0.7, label="knee: downloads (C / down rate)"),
    ]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    fig.tight_layout()
    return figures.save_all(fig, path)


def _study(cfg: Config, out: Path) -> None:
    points, curves, knee_table = study(cfg)
    write_table(points, out / "points.csv")
    write_table(curves, out / "curves.csv")
    write_table(knee_table, out / "knees.csv")
    plot(points, curves, knee_table, out / "network_scaling")
    sim = points[points["mode"] == "system_only"]
    write_json(
        {
            "points": len(points),
            "max_abs_rel_error": float(points["rel_error"].abs().max()),
            "max_rel_gap_to_closed_form": float((sim["round_time_s"] / sim["closed_form_round_s"] - 1).abs().max()),
            "surrogate_rounds_to_target": surrogate_rounds(cfg),
            "system_only_rounds_to_target": sorted(set(sim["rounds_to_target"].dropna().astype(int))),
        },
        out / "summary.json",
    )
    log.info("wrote %s", out)


def main() -> None:
    """Entry point: hydra overrides as for ``fedsim``."""
    from fedsim.compose import study_entry

    study_entry(_study)


if __name__ == "__main__":
    main()
