"""The engine reproduces committed tables exactly: rounds (minus wall time), events, accounting.

The fixtures in ``tests/fixtures/golden/`` were written by the engine before it was
made lean for many clients (issue #14); every case here must still give them bit for
bit: the same events in the same order (ties at one virtual instant included), the
same virtual times, the same per-client ledgers. The cases are small and varied so
that every feature of the engine runs at least once: failure clocks on clients, links
and the server; checkpoints (fixed, ``auto`` and ``adaptive`` τ, mixed fleets);
recovery policies, heartbeat detection, redistribution, dropout, deadlines; strategies
with a client half; the shared server link, spread links and a bandwidth trace;
aggregation cost models; the batched executor; the system-only surrogate; and a
replayed failure trace.

Exactness has a scope. What the event loop computes is compared exactly: event kinds,
clients, rounds and virtual times, the per-client ledgers, selections, counts, the
surrogate's state. Those are sums and products of configured numbers and of draws from
numpy's PCG64 streams through scalar code, the same on every x86-64 CPU. What comes out
of torch kernels or numpy's vectorised ``log``/``exp`` is not: torch and numpy pick
kernels by CPU (vector width, FMA, summation order), so losses and scores differ in the
last bits between an AVX-512 and an AVX2 machine, and five rounds of Adam on a
BatchNorm model amplify that in the evaluated metrics. Those columns are compared with
the tolerances in :data:`TOLERANCES`, each set from the largest difference measured
between three kernel sets (the fixtures' AVX-512 machine, an AVX2 AMD EPYC, and the
same EPYC under ``ATEN_CPU_CAPABILITY=default`` with numpy's dispatched targets
disabled) and wide enough for that, and no wider than a real change (see
:func:`test_the_tolerances_still_catch_a_one_line_change`).

Regenerate (only when a change of the tables is intended, and say why and on which
CPU in the commit; the fixtures were written on an AVX-512 machine):

    python tests/fl/test_engine_golden.py
"""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
TABLES = ("rounds", "events", "accounting", "clients", "taus")

TINY = [
    "model.hidden=[16,8]", "data.num_clients=4", "data.max_rows=600", "run.max_rounds=5", "strategy.lr=0.01",
    "strategy.batch_size=32", "compute.cost_per_sample_s=0.01", "compute.threads=1", "run.client_metrics=true",
]  # fmt: skip
FAILING = ["failure=weibull", "failure.shape=0.8", "failure.scale=3.0", "failure.repair_mean_s=1.0", "failure.dropout=0.2"]
SYSTEM = ["compute.system_only=true", "data.num_clients=40", "data.max_rows=null", "data.source.n_samples=8000", "strategy.batch_size=16"]
CASES: dict[str, list[str]] = {
    # real training
    "fedavg_failures": [*FAILING],
    "proposed_server_detection": [
        *FAILING, "strategy=proposed", "run.patience=0", "recovery.detection=true", "failure.server=true",
        "failure.server_scale=20.0", "failure.server_repair_mean_s=1.0",
    ],
    "fedadam_checkpoints": [*FAILING, "strategy=fedadam", "checkpoint=every_tau", "recovery=restore_checkpoint", "checkpoint.tau_s=0.3"],
    "fedprox_links_deadline": [
        *FAILING, "strategy=fedprox", "failure.links=true", "failure.link_scale=4.0", "failure.link_repair_mean_s=0.5",
        "run.round_policy=deadline", "run.deadline_s=6.0", "recovery.detection=true", "recovery.wait_deadline_s=1.5",
    ],
    "fedl2p_client_eval": [*FAILING, "strategy=fedl2p", "strategy.finetune_steps=2", "strategy.meta_hidden=8", "run.client_eval=true"],
    "adaptive_groups": [
        *FAILING, "checkpoint=every_tau", "recovery=restore_checkpoint", "checkpoint.tau_s=adaptive", "checkpoint.min_failures=2",
        "failure.groups=[{share:0.5,shape:0.7,scale:2.0},{share:0.5,shape:1.5,scale:30.0}]",
    ],
    "network_shared_linear": [
        *FAILING, "network.server_up_mbps=2.0", "network.server_down_mbps=5.0", "network.spread=0.5", "run.aggregation=linear",
    ],
    "trace_steps_checkpoints": [
        *FAILING, "network.trace=TRACE", "network.server_up_mbps=1.5", "checkpoint=every_tau", "checkpoint.tau_steps=2",
        "recovery=restore_checkpoint",
    ],
    "batched_drop": [
        *FAILING, "data.num_clients=6", "compute.batched=true", "recovery.detection=true", "recovery.aggregation=drop",
        "checkpoint=every_tau", "checkpoint.tau_s=0.5", "recovery=restore_checkpoint",
    ],
    # fixed speeds, equal shards, zero-cost checkpoints and aggregation: many events at one instant
    "ties": [
        "failure=weibull", "failure.scale=40.0", "failure.repair=fixed", "failure.repair_mean_s=1.0", "failure.dropout=0.25",
        "compute.speed_dist=fixed", "data.max_rows=640", "run.aggregation_s=0.0", "checkpoint=every_tau", "checkpoint.tau_s=0.32",
        "checkpoint.delta_s=0.0", "checkpoint.storage_mbps=inf", "checkpoint.restart_s=0.0", "recovery=restore_checkpoint",
        "recovery.detection=true", "recovery.heartbeat_s=0.5", "recovery.timeout_s=1.0", "recovery.aggregation=redistribute",
    ],
    # system-only (surrogate learner)
    "system_only": [
        *SYSTEM, *FAILING, "failure.scale=20.0", "checkpoint=every_tau", "recovery=restore_checkpoint", "checkpoint.tau_s=2.0",
        "recovery.detection=true", "recovery.aggregation=redistribute", "failure.links=true", "failure.link_scale=30.0",
        "failure.server=true", "failure.server_scale=60.0", "failure.server_repair_mean_s=2.0", "strategy.fraction=0.5",
    ],
    "system_only_shared_auto": [
        *SYSTEM, *FAILING, "failure.scale=20.0", "strategy=proposed", "run.patience=0", "network.server_down_mbps=20.0",
        "network.server_up_mbps=8.0", "network.spread=0.3", "run.aggregation=linear", "recovery.detection=true",
        "data.num_clients=16", "run.max_rounds=4",
    ],
}
TRACE_CSV = "client,time,down_mbps,up_mbps\n0,0,1.0,0.5\n0,2.5,0.2,0.1\n0,6,2.0,1.0\n1,0,0.8,0.3\n2,0,1.2,0.6\n2,4,0.5,0.2\n"
FAILURE_TRACE = {0: [(0.7, 0.4), (5.0, 1.0)], 2: [(1.3, 0.2)], 3: [(2.2, 2.0), (2.9, 0.1)]}  # client -> (fail_at, repair_after)


def _cfg(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
    from fedsim.config import register_configs

    trace = GOLDEN / "trace.csv"
    overrides = [o.replace("TRACE", str(trace)) for o in overrides]
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*TINY, *overrides, SEARCHPATH]))


def _run_failure_trace():
    """A recorded failure trace replayed on the clients (the recovery study's mechanism), checkpoints and detection on."""
    from fedsim.experiments import run

    cfg = _cfg(["checkpoint=every_tau", "checkpoint.tau_s=0.4", "recovery=restore_checkpoint", "recovery.detection=true", "failure.dropout=0.1"])
    build = run.build_settings
    settings = lambda *a, **k: dataclasses.replace(build(*a, **k), failure_trace=FAILURE_TRACE)  # noqa: E731
    run.build_settings = settings
    try:
        return run.run_experiment(cfg)
    finally:
        run.build_settings = build


def run_case(name: str) -> dict[str, pd.DataFrame]:
    """The tables of case ``name`` as the engine makes them now."""
    from conftest import reproducible_tables
    from fedsim.experiments.run import run_experiment

    result = _run_failure_trace() if name == "failure_trace" else run_experiment(_cfg(CASES[name]))
    return reproducible_tables(result, "events", "accounting", "clients", "taus")


def _roundtrip(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as it reads back from CSV (so fixture and fresh tables compare with the same dtypes)."""
    return pd.read_csv(io.StringIO(table.to_csv(index=False)))


NAMES = sorted([*CASES, "failure_trace"])


@dataclasses.dataclass(frozen=True)
class Close:
    """Compared within ``rtol`` (relative) or ``atol`` (absolute), NaN equal to NaN; ``why`` says where the spread comes from."""

    rtol: float = 0.0
    atol: float = 0.0
    why: str = ""


# Measured spread over the three kernel sets (largest over every case and round):
# train_loss 1.6e-7 relative; val_loss/loss 3.7e-3 relative; AUC 2.7e-3, accuracy 5.0e-3,
# precision 0.058, recall 0.014, F1 0.018 absolute; a fitted τ, k or λ 4.3e-8 relative.
SURROGATE = Close(rtol=1e-12, why="the system-only learning curve through Python's math.exp (libm): at most the last bit")
TRAIN_LOSS = Close(rtol=1e-5, why="mean of float32 step losses: kernel rounding only (1.6e-7 measured), 60× margin")
FIT = Close(rtol=1e-6, why="τ* from a Weibull fit through numpy's vectorised log/exp (4.3e-8 measured)")
EVAL_LOSS = Close(rtol=2e-2, why="eval-mode loss: Adam turns last-bit noise in BatchNorm-shadowed biases into lr-sized steps (3.7e-3 measured)")
SCORE = Close(atol=2e-2, why="AUC and accuracy on ~1,000 test rows, same amplification (5.0e-3 measured)")
FLAGS = Close(atol=0.15, why="precision/recall/F1 at a 0.5 threshold that flags few rows after 5 rounds: one flipped row moves precision by 1/flagged (0.058 measured)")
TOLERANCES: dict[str, dict[str, Close]] = {
    "rounds": {
        "train_loss": TRAIN_LOSS, "val_loss": EVAL_LOSS, "loss": EVAL_LOSS, "client_loss": EVAL_LOSS, "auc": SCORE, "accuracy": SCORE,
        "client_auc": SCORE, "client_accuracy": SCORE, "precision": FLAGS, "recall": FLAGS, "f1": FLAGS,
        "surrogate_accuracy": SURROGATE, "surrogate_loss": SURROGATE,
    },
    "clients": {"train_loss": TRAIN_LOSS},
    "taus": {"shape": FIT, "scale": FIT, "tau_s": FIT},
}  # fmt: skip
FITTED_EVENTS = {"tau_refit"}  # event kinds whose ``value`` is a fitted τ (FIT); every other value is exact


def tolerance(table: str, column: str) -> Close | None:
    """How column ``column`` of ``table`` is compared: ``None`` is exactly."""
    return TOLERANCES.get(table, {}).get(column)


def assert_close(got: pd.Series, want: pd.Series, close: Close, what: str) -> None:
    """``got`` equals ``want`` within ``close`` (NaN where ``want`` is NaN)."""
    g, w = got.to_numpy(dtype=float), want.to_numpy(dtype=float)
    np.testing.assert_allclose(g, w, rtol=close.rtol, atol=close.atol, equal_nan=True, err_msg=f"{what}: {close.why}")


def assert_matches(name: str, table: str, got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Table ``table`` of case ``name`` matches its fixture: exactly, or within the column's tolerance."""
    assert list(want.columns) == [c for c in got.columns if c in want.columns], f"{name} {table}: columns"
    assert len(got) == len(want), f"{name} {table}: {len(got)} rows, fixture has {len(want)}"
    got = got[list(want.columns)]
    exact = [c for c in want.columns if tolerance(table, c) is None]
    if table == "events":
        fitted = want["kind"].isin(FITTED_EVENTS).to_numpy()
        assert_close(got["value"][fitted], want["value"][fitted], FIT, f"{name} events value of {sorted(FITTED_EVENTS)}")
        got, want = got.assign(value=got["value"].where(~fitted)), want.assign(value=want["value"].where(~fitted))
    pd.testing.assert_frame_equal(got[exact], want[exact], check_exact=True, obj=f"{name} {table}")
    misses = []
    for column in want.columns.difference(exact):
        try:
            assert_close(got[column], want[column], tolerance(table, column), f"{name} {table}.{column}")  # type: ignore[arg-type]
        except AssertionError as exc:
            misses.append(str(exc))
    assert not misses, "\n".join(misses)


def assert_case(name: str, tables: dict[str, pd.DataFrame]) -> None:
    """Every table of case ``name`` matches its fixture."""
    for table in TABLES:
        path = GOLDEN / name / f"{table}.csv"
        if not path.exists():
            assert tables[table].empty, f"{name}: {table} has rows but no fixture"
            continue
        assert_matches(name, table, _roundtrip(tables[table]), pd.read_csv(path))


@pytest.mark.parametrize("name", NAMES)
def test_the_engine_reproduces_the_golden_tables(name):
    tables = run_case(name)
    assert {"failure", "repair"} <= set(tables["events"]["kind"]) or name == "failure_trace"
    assert_case(name, tables)


def test_the_tolerances_still_catch_a_one_line_change(monkeypatch):
    """A one-line slip in the engine fails the tolerant comparison: clients seeding their
    training from the wrong round (``rnd.number + 1``) change only batch order and dropout
    masks, and still the training losses move far outside ``TRAIN_LOSS``."""
    from fedsim.fl.client import Client
    from fedsim.seeding import torch_seed

    monkeypatch.setattr(Client, "train_seed", lambda self, rnd, origin: torch_seed(self.seed, "train", rnd.number + 1, self.cid))
    with pytest.raises(AssertionError, match="train_loss"):
        assert_case("fedavg_failures", run_case("fedavg_failures"))


def regenerate() -> None:
    """Write every case's tables into the fixtures folder."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / "trace.csv").write_text(TRACE_CSV)
    for name in NAMES:
        tables = run_case(name)
        out = GOLDEN / name
        out.mkdir(exist_ok=True)
        for table, frame in tables.items():
            path = out / f"{table}.csv"
            if frame.empty:
                path.unlink(missing_ok=True)
                continue
            frame.to_csv(path, index=False)
        kinds = tables["events"]["kind"].value_counts()
        print(f"{name}: {len(tables['rounds'])} rounds, {len(tables['events'])} events; {dict(kinds)}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for conftest (as pytest arranges)
    regenerate()
