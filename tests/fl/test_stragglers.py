"""Stragglers, FedProx's way: partial work under a deadline, and a share of clients doing fewer local epochs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import CLASSIFIER_SPEC, reproducible_tables, run_classifier

from fedsim.fl.monitor import Stopping
from fedsim.fl.server import RoundPolicy
from fedsim.fl.simulation import SimSettings
from fedsim.fl.strategies import FedAvg, FedProx

SPEC = CLASSIFIER_SPEC.__class__(**{**CLASSIFIER_SPEC.__dict__, "epochs": 4})  # 4 local epochs of 3 steps each


def settings(kind: str = "wait_all", deadline_s: float = np.inf, stragglers: str = "drop", share: float = 0.0) -> SimSettings:
    return SimSettings(seed=1, stopping=Stopping(max_rounds=4), policy=RoundPolicy(kind, deadline_s, stragglers), straggler_share=share)


def tables(result):
    return reproducible_tables(result, "events", "accounting", "clients")


def test_partial_with_a_deadline_everyone_meets_is_drop():
    speeds = np.array([1.0, 0.7, 1.3, 0.9])
    drop, _ = run_classifier(FedAvg(), n_clients=4, speeds=speeds, spec=SPEC, settings=settings("deadline", 100.0, "drop"))
    partial, _ = run_classifier(FedAvg(), n_clients=4, speeds=speeds, spec=SPEC, settings=settings("deadline", 100.0, "partial"))
    for name, table in tables(partial).items():
        pd.testing.assert_frame_equal(table, tables(drop)[name], obj=name)


def test_under_a_tight_deadline_partial_clients_send_what_fits_and_drop_clients_are_late():
    speeds = np.array([1.0, 0.25, 1.0, 0.5])  # 4 epochs × 90 rows × 0.01 s = 3.6 s at speed 1; client 1 needs 14.4 s
    drop, _ = run_classifier(FedAvg(), n_clients=4, speeds=speeds, spec=SPEC, settings=settings("deadline", 5.0, "drop"))
    partial, _ = run_classifier(FedAvg(), n_clients=4, speeds=speeds, spec=SPEC, settings=settings("deadline", 5.0, "partial"))
    assert "cancelled" in set(drop.events["kind"]) and not {"cancelled", "late"} & set(partial.events["kind"])  # the deadline cut drop's
    assert (partial.rounds["participants"] == 4).all() and (drop.rounds["participants"] < 4).all()
    uploads = partial.events.query("kind == 'upload'")
    assert (uploads.groupby("round")["time_s"].max().to_numpy() <= partial.rounds["time_s"].to_numpy()).all()
    slow = partial.events.query("kind == 'train_start' and client == 1")["value"].groupby(partial.events["round"]).sum()
    fast = partial.events.query("kind == 'train_start' and client == 0")["value"].groupby(partial.events["round"]).sum()
    assert (slow < 5.0).all() and (slow * 0.25 < fast).all()  # client 1 did less work than client 0, within the deadline
    assert (partial.clients["num_samples"] == 90).all()  # weighted by the client's rows, as FedProx aggregates


def test_stragglers_are_the_same_for_every_method_and_partial_keeps_their_work():
    drop, _ = run_classifier(FedAvg(), n_clients=6, spec=SPEC, settings=settings(share=0.5, stragglers="drop"))
    prox, _ = run_classifier(FedProx(mu=0.0), n_clients=6, spec=SPEC, settings=settings(share=0.5, stragglers="partial"))
    stragglers = drop.events.query("kind == 'straggler'")[["client", "round", "value"]].reset_index(drop=True)
    assert len(stragglers) and stragglers["value"].between(1, 3).all()
    assert set(zip(stragglers["client"], stragglers["round"])).isdisjoint(zip(drop.clients["client"], drop.clients["round"]))
    kept = prox.clients.merge(stragglers, on=["client", "round"])
    assert len(kept) == len(stragglers)  # every straggler reported under partial
    steps = prox.events.query("kind == 'train_start'").groupby(["client", "round"])["value"].sum().rename("busy").reset_index()
    busy = steps.merge(stragglers, on=["client", "round"])
    assert np.allclose(busy["busy"], busy["value"] * 3 * 30 * 0.01)  # epochs × steps per epoch × rows × s per row
