"""Recovery-policy study: one failure trace, every recovery policy, one comparison table.

Client failure clocks draw from their own seeded streams, independent of what the
clients do, so runs that share ``run.seed`` see the same failures whatever the
policy. Run with ``python -m fedsim.experiments.recovery scenarios=recovery_policies``;
writes ``comparison.csv``/``.md``, ``rounds.csv`` and ``recovery_policies.png`` to the run directory.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pandas as pd

from fedsim import figures
from fedsim.config import Config
from fedsim.experiments.run import ACCOUNTS, run_experiment, time_to_target
from fedsim.results import markdown_table, write_json, write_table, write_text

log = logging.getLogger("fedsim.recovery")

# (name, client recovery, aggregation policy, checkpointing on, heartbeat detection on)
POLICIES = [
    ("reinit_global+wait", "reinit_global", "wait", False, False),
    ("reinit_global+drop", "reinit_global", "drop", False, True),
    ("reinit_global+redistribute", "reinit_global", "redistribute", False, True),
    ("restore_checkpoint+wait", "restore_checkpoint", "wait", True, True),
    ("restore_checkpoint+drop", "restore_checkpoint", "drop", True, True),
    ("restore_checkpoint+redistribute", "restore_checkpoint", "redistribute", True, True),
]


def with_policy(cfg: Config, client: str, aggregation: str, checkpoint: bool, detection: bool) -> Config:
    """A copy of ``cfg`` under one recovery policy (everything else, the seed included, unchanged)."""
    return dataclasses.replace(
        cfg,
        recovery=dataclasses.replace(cfg.recovery, client=client, aggregation=aggregation, detection=detection),
        checkpoint=dataclasses.replace(cfg.checkpoint, enabled=checkpoint),
    )


def compare(cfg: Config, target_accuracy: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every policy on the same failure trace; returns (comparison table, all rounds)."""
    rows, curves = [], []
    for name, *policy in POLICIES:
        result = run_experiment(with_policy(cfg, *policy))
        last = result.rounds.iloc[-1]
        totals = result.accounting[list(ACCOUNTS)].sum()
        rows.append(
            {
                "policy": name,
                "time_to_target_s": time_to_target(result.rounds, result.task.target_metric, target_accuracy),
                "virtual_s": result.virtual_s,
                "final_accuracy": float(last["accuracy"]),
                "final_auc": float(last["auc"]),
                "rounds": int(last["round"]),
                "failures": int((result.events["kind"] == "failure").sum()),
                "lost_s": float(totals["lost_s"]),
                "checkpoint_s": float(totals["checkpoint_s"]),
                "recovery_s": float(totals["recovery_s"]),
                "overhead_s": float(totals["checkpoint_s"] + totals["recovery_s"] + totals["lost_s"]),
                "wall_s": result.wall_train_s + result.wall_eval_s,
            }
        )
        curves.append(result.rounds.assign(policy=name))
        log.info("%s: target at %.1f s, final accuracy %.4f", name, rows[-1]["time_to_target_s"], rows[-1]["final_accuracy"])
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def plot(table: pd.DataFrame, rounds: pd.DataFrame, path: Path) -> Path:
    """Accuracy against virtual time per policy, and where each policy's time went."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    fig, (ax_curve, ax_bar) = plt.subplots(1, 2, figsize=(12, 4.2))
    sns.lineplot(data=rounds, x="time_s", y="accuracy", hue="policy", marker="o", ax=ax_curve)
    ax_curve.set(xlabel="virtual time (s)", ylabel="test accuracy", title="Same failure trace, every recovery policy")
    ax_curve.legend(fontsize=8)
    parts = table.set_index("policy")[["lost_s", "checkpoint_s", "recovery_s"]]
    parts.columns = ["lost work", "checkpoint writes", "down + restart"]
    parts.plot.barh(stacked=True, ax=ax_bar)
    ax_bar.set(xlabel="client-seconds of virtual time (sum over clients)", ylabel="", title="Cost of failures")
    fig.tight_layout()
    return figures.save(fig, path)


def _study(cfg: Config, out: Path) -> None:
    target = cfg.run.target_accuracy
    table, rounds = compare(cfg, target)
    write_table(rounds, out / "rounds.csv")
    write_table(table, out / "comparison.csv")
    write_text(markdown_table(table), out / "comparison.md")
    plot(table, rounds, out / "recovery_policies.png")
    write_json({"target_accuracy": target, "policies": len(table)}, out / "summary.json")
    log.info("wrote %s", out)


def main() -> None:
    """Entry point: hydra overrides as for ``fedsim``."""
    from fedsim.compose import study_entry

    study_entry(_study)


if __name__ == "__main__":
    main()
