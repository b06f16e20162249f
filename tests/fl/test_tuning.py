"""checkpoint.tau_s=auto and adaptive in the engine, and mixed fleets: τ per client, refits, paired traces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from fedsim.checkpoint.adaptive import Law, tau_star
from fedsim.checkpoint.cost import optimal_interval
from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.experiments.fleet import client_laws
from fedsim.experiments.plugins import build_model, build_task
from fedsim.experiments.run import run_experiment
from fedsim.fl.recovery import TauRule
from fedsim.fl.recovery import Checkpointing
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import FaultTolerance, NetworkSpec, SimSettings, checkpoint_nbytes, simulate
from fedsim.fl.strategies import FedAvg
from fedsim.fl.surrogate import LearningCurve, system_only
from fedsim.models.dnn import AnomalyDNN
from fedsim.sim.compute import ComputeModel
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec

register_configs()
SYSTEM = ["compute.system_only=true", "data.source.n_samples=400", "model.hidden=[16,8,4]", "run.figure=false"]
FAILING = ["failure=weibull", "failure.shape=1.5", "failure.scale=6.0", "failure.repair_mean_s=0.5", "compute.cost_per_sample_s=0.05"]
CKPT = ["checkpoint=every_tau", "recovery=restore_checkpoint", "recovery.detection=false", "strategy.batch_size=4"]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*SYSTEM, *overrides, SEARCHPATH]))


def test_auto_is_optimal_interval_of_the_configured_law_and_runs_exactly_as_that_fixed_tau():
    cfg = config(*FAILING, *CKPT, "checkpoint.tau_s=auto", "checkpoint.model=segment", "run.max_rounds=4")
    auto = run_experiment(cfg)
    data = instantiate(cfg.data.source, seed=0)
    model = build_model(cfg, build_task(cfg, data), data.input_shape, torch.device("cpu"))
    delta = cfg.checkpoint.delta_s + 8 * checkpoint_nbytes(model, FlatLayout.of(model), LocalSpec()) / (cfg.checkpoint.storage_mbps * 1e6)
    expected = optimal_interval(delta, cfg.checkpoint.restart_s + cfg.failure.repair_mean_s, 1.5, 6.0, "segment").tau
    assert auto.taus["tau_s"].tolist() == pytest.approx([expected] * cfg.data.num_clients, rel=1e-12)
    assert set(auto.taus["source"]) == {"auto"} and (auto.taus["time_s"] == 0).all()
    fixed = run_experiment(config(*FAILING, *CKPT, f"checkpoint.tau_s={float(auto.taus['tau_s'].iloc[0])!r}", "checkpoint.model=segment", "run.max_rounds=4"))
    events = auto.events[auto.events["kind"] != "tau_refit"].reset_index(drop=True)
    assert (events["kind"] == "checkpoint").sum() > 0
    pd.testing.assert_frame_equal(events, fixed.events)


def test_a_fixed_tau_sets_no_rule_and_records_no_refits():
    result = run_experiment(config(*FAILING, *CKPT, "run.max_rounds=2"))
    assert result.taus.empty and "tau_refit" not in set(result.events["kind"])


def test_auto_without_client_failures_never_checkpoints_clients():
    result = run_experiment(config("strategy=proposed", "run.max_rounds=2"))  # proposed: tau_s=auto
    assert result.taus["tau_s"].tolist() == [np.inf] * 6
    assert (result.events["kind"] == "checkpoint").sum() == 0 and (result.events["kind"] == "server_checkpoint").sum() == 2


def one_client(rule: TauRule, rounds: int, true: Law):
    """One system-only client whose failures follow ``true``; every round is 45 one-second steps."""
    curve = LearningCurve()
    failure = FailureModel(true.shape, true.scale, repair_sampler("exponential", 1.0))
    checkpointing = Checkpointing(delta_s=0.5, restart_s=1.0, rule=rule)
    settings = SimSettings(seed=0, failure=failure, stopping=Stopping(max_rounds=rounds), fault=FaultTolerance(checkpointing=checkpointing, recovery="restore_checkpoint"))
    model = AnomalyDNN(4, hidden=(8,))
    return simulate(model=model, clients=[180], speeds=[1.0], strategy=FedAvg(), compute=ComputeModel(0.25), network=NetworkSpec(),
                    val=(None, None), test=(None, None), settings=settings, **system_only(curve, LocalSpec(batch_size=4)))


def test_adaptive_tau_converges_to_the_true_optimum_within_10_percent_after_100_failures():
    # True law k = 1.5, λ = 30 s; the prior (k = 0.6, λ = 100 s) is far off. Over seeds 0-199 the
    # τ from 100 failures of this law was within 10% of τ* for 99.5% of seeds (95th percentile of
    # the error 7.2%); this is seed 0 through the engine.
    true = Law(1.5, 30.0)
    rule = TauRule(mode="adaptive", prior=Law(0.6, 100.0), repair_mean_s=1.0)
    result = one_client(rule, rounds=50, true=true)
    taus = result.taus
    assert taus["tau_s"].iloc[0] == pytest.approx(tau_star(rule.prior, 0.5, 2.0), rel=1e-12)
    after = taus[taus["failures"] >= 100]
    assert len(after) > 0 and set(after["source"]) == {"fit"}
    target = tau_star(true, 0.5, 2.0)  # δ: storage bandwidth is infinite here
    assert abs(after["tau_s"].iloc[0] / target - 1) < 0.10
    assert abs(taus["tau_s"].iloc[0] / target - 1) > 0.5  # the prior alone was far off


def test_one_refit_per_failure_or_per_round_each_recorded_as_an_event():
    true = Law(1.5, 30.0)
    per_failure = one_client(TauRule(mode="adaptive", prior=true, repair_mean_s=1.0), rounds=10, true=true)
    failures = int((per_failure.events["kind"] == "failure").sum())
    repaired = int((per_failure.events["kind"] == "repair").sum())
    assert failures > 3 and len(per_failure.taus) == 1 + repaired
    assert (per_failure.events["kind"] == "tau_refit").sum() == len(per_failure.taus)
    every_third = one_client(TauRule(mode="adaptive", prior=true, repair_mean_s=1.0, refit_every=3), rounds=10, true=true)
    assert len(every_third.taus) == 1 + repaired // 3
    per_round = one_client(TauRule(mode="adaptive", prior=true, repair_mean_s=1.0, refit_on="rounds", refit_every=2), rounds=10, true=true)
    assert per_round.taus["time_s"].tolist()[1:] == pytest.approx(per_round.rounds["time_s"].iloc[1::2].tolist())
    assert (per_round.taus["exposure_s"].diff().iloc[1:] > 0).all()  # the current up-time enters censored


def test_groups_give_each_client_its_groups_law_and_every_method_meets_the_same_failures():
    groups = "failure.groups=[{share: 0.5, shape: 0.7, scale: 3.0}, {share: 0.5, shape: 1.5, scale: 1e9}]"
    cfg = config(*FAILING, *CKPT, groups, "run.max_rounds=5")
    laws = client_laws(cfg)
    fragile = {cid for cid, law in enumerate(laws) if law.scale == 3.0}
    assert len(fragile) == 3
    runs = [run_experiment(dataclasses.replace(cfg, checkpoint=dataclasses.replace(cfg.checkpoint, tau_s=tau))) for tau in (0.5, "adaptive")]
    end = min(r.virtual_s for r in runs)
    traces = [r.events[(r.events["kind"] == "failure") & (r.events["time_s"] <= end)][["time_s", "client"]].reset_index(drop=True) for r in runs]
    assert set(traces[0]["client"]) == fragile  # λ = 1e9 s: the sturdy half never fails
    pd.testing.assert_frame_equal(traces[0], traces[1])
