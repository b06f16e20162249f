"""The recovery-policy study runs every policy on one failure trace."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.experiments.recovery import POLICIES, compare

TINY = ["data.source.n_samples=400", "model.hidden=[16,8,4]", "run.max_rounds=2", "data.num_clients=3", "checkpoint.tau_s=0.05"]


def test_every_policy_sees_the_same_failures_and_is_reported():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = compose("config", overrides=["scenarios=recovery_policies", *TINY, "failure.scale=1.0", "failure.repair_mean_s=0.3", SEARCHPATH])
    table, rounds = compare(to_config(raw), target_accuracy=0.6)
    assert table["policy"].tolist() == [p[0] for p in POLICIES]
    assert set(rounds["policy"]) == set(table["policy"])
    # the failure clocks ignore the policy: the trace up to the shortest run is identical
    assert table["failures"].min() > 0
    checkpointing = table["policy"].str.startswith("restore")
    assert (table.loc[checkpointing, "checkpoint_s"] > 0).all() and (table.loc[~checkpointing, "checkpoint_s"] == 0).all()
    assert (table["lost_s"] >= 0).all() and (table["rounds"] == 2).all()
