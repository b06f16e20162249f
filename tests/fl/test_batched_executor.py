"""The batched executor gives the sequential engine's results, failures and checkpoints included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_model
from fedsim.fl.batched_executor import BatchedExecutor, choose_executor, measured_step_flops
from fedsim.fl.executor import SequentialExecutor
from fedsim.fl.recovery import Checkpointing
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import FaultTolerance, SimSettings
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.tasks import Classification
from fedsim.train.flat import FlatLayout
from fedsim.train.functional import FunctionalStack
from fedsim.train.local import LocalSpec, TrainState

WALL = ["wall_s"]


def _settings(**fault) -> SimSettings:
    failure = FailureModel(shape=1.5, scale=3.0, repair=repair_sampler("exponential", 0.5))
    return SimSettings(seed=3, failure=failure, dropout=0.2, stopping=Stopping(max_rounds=4), fault=FaultTolerance(**fault))


def _both(run_tiny, settings):
    made = []

    def batched(*args):
        made.append(BatchedExecutor(*args))
        return made[-1]

    return run_tiny(settings=settings), run_tiny(settings=settings, executor=batched), made[0]


def test_batched_equals_sequential_with_failures(run_tiny):
    seq, bat, ex = _both(run_tiny, _settings())
    assert (seq.events.kind == "work_lost").sum() > 0
    assert float((seq.final - bat.final).abs().max()) <= 1e-5
    pd.testing.assert_frame_equal(seq.events, bat.events)
    pd.testing.assert_frame_equal(seq.rounds.drop(columns=WALL), bat.rounds.drop(columns=WALL))
    assert ex.stats["stacked"] > 0 and ex.stats["fallback"] == 0 and ex.stats["skipped"] > 0


def test_batched_equals_sequential_with_checkpoints_and_restores(run_tiny):
    fault = dict(checkpointing=Checkpointing(tau_steps=1, delta_s=0.01, restart_s=0.25), recovery="restore_checkpoint")
    seq, bat, ex = _both(run_tiny, _settings(**fault))
    kinds = set(seq.events.kind)
    assert {"checkpoint", "restore", "work_lost"} <= kinds
    assert float((seq.final - bat.final).abs().max()) <= 1e-5
    pd.testing.assert_frame_equal(seq.events, bat.events)
    pd.testing.assert_frame_equal(seq.rounds.drop(columns=WALL), bat.rounds.drop(columns=WALL))
    assert ex.stats["stacked"] > 0


def test_unplanned_or_changed_jobs_fall_back_to_sequential(tiny_data):
    x, y = tiny_data["clients"][0]
    model = tiny_model(x.shape[1])
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    spec = LocalSpec(batch_size=32)
    ex = BatchedExecutor(model, layout, tiny_data["clients"], spec)
    ref = SequentialExecutor(tiny_model(x.shape[1]), layout, tiny_data["clients"], spec)
    ex.plan(0, TrainState(flat), seed=1, stop_step=3)
    other = TrainState(flat + 1)
    assert torch.equal(ex.train(0, other, seed=1, stop_step=3).state.flat, ref.train(0, other, seed=1, stop_step=3).state.flat)
    assert ex.stats["fallback"] == 1
    assert torch.equal(ex.train(0, TrainState(flat), seed=1, stop_step=3).state.flat, ref.train(0, TrainState(flat), seed=1, stop_step=3).state.flat)
    assert ex.stats["stacked"] == 1


def test_choice_is_reported(tiny_data):
    x, _ = tiny_data["clients"][0]
    model = tiny_model(x.shape[1])
    layout = FlatLayout.of(model)
    spec = LocalSpec(batch_size=32)
    ex, why = choose_executor(model, layout, tiny_data["clients"], spec, device="cpu")
    assert isinstance(ex, BatchedExecutor) and why.startswith("batched (auto")
    ex, why = choose_executor(model, layout, tiny_data["clients"], spec, batched=False)
    assert type(ex) is SequentialExecutor and "batched=false" in why
    big = tiny_model(x.shape[1])
    ex, why = choose_executor(big, layout, tiny_data["clients"], LocalSpec(batch_size=10**6))
    assert type(ex) is SequentialExecutor and math.isfinite(float(why.split("auto: ")[1].split(" ")[0]))


def test_bf16_mixed_runs_are_deterministic_and_batched_equals_sequential(run_tiny):
    fault = dict(checkpointing=Checkpointing(tau_steps=1, delta_s=0.01, restart_s=0.25), recovery="restore_checkpoint")
    bf16 = LocalSpec(batch_size=32, lr=1e-3, epochs=1, precision="bf16-mixed")
    seq = run_tiny(settings=_settings(**fault), spec=bf16)
    again = run_tiny(settings=_settings(**fault), spec=bf16)
    bat = run_tiny(settings=_settings(**fault), spec=bf16, executor=BatchedExecutor)
    fp32 = run_tiny(settings=_settings(**fault))
    for other in (again, bat):
        assert torch.equal(seq.final, other.final)  # bitwise on CPU (see fedsim.train.batched)
        pd.testing.assert_frame_equal(seq.events, other.events)
        pd.testing.assert_frame_equal(seq.rounds.drop(columns=WALL), other.rounds.drop(columns=WALL))
    assert not torch.equal(seq.final, fp32.final)


def _linear(features: int, outputs: int = 1) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Linear(features, outputs)


def test_vmap_path_equals_sequential_engine_with_checkpoints_and_restores(run_tiny, tiny_data):
    """A model the exact path does not take (a plain linear classifier, SGD with momentum) is trained by vmap."""
    fault = dict(checkpointing=Checkpointing(tau_steps=1, delta_s=0.01, restart_s=0.25), recovery="restore_checkpoint")
    spec = LocalSpec(batch_size=32, lr=0.05, epochs=1, optimizer="sgd", momentum=0.9, task=Classification(num_classes=2))
    features = tiny_data["clients"][0][0].shape[1]
    made = []

    def batched(*args):
        made.append(BatchedExecutor(*args))
        return made[-1]

    initial = FlatLayout.of(_linear(features, 2)).flatten(_linear(features, 2))
    seq = run_tiny(settings=_settings(**fault), spec=spec, model=_linear(features, 2), initial=initial)
    bat = run_tiny(settings=_settings(**fault), spec=spec, model=_linear(features, 2), initial=initial, executor=batched)
    assert isinstance(made[0].net, FunctionalStack)
    assert {"checkpoint", "restore", "work_lost"} <= set(seq.events.kind)
    torch.testing.assert_close(bat.final, seq.final, rtol=1e-5, atol=1e-6)  # see tests/train/test_functional.py
    pd.testing.assert_frame_equal(seq.events, bat.events)
    assert made[0].stats["stacked"] > 0 and made[0].stats["fallback"] == 0


def test_choice_names_the_vmap_path_or_why_not(tiny_data):
    clients = tiny_data["clients"]
    features = clients[0][0].shape[1]
    spec = LocalSpec(batch_size=32, optimizer="sgd", task=Classification(num_classes=2))
    model = _linear(features, 2)
    layout = FlatLayout.of(model)
    ex, why = choose_executor(model, layout, clients, spec, device="cpu")
    assert isinstance(ex, BatchedExecutor) and isinstance(ex.net, FunctionalStack) and why.startswith("batched (vmap: auto: ") and "MFLOP per client-step on cpu ≤ 10" in why
    assert choose_executor(model, layout, clients, spec, device="cuda")[1] == "batched (vmap: auto: cuda device)"
    assert choose_executor(model, layout, clients, spec, batched=True)[1] == "batched (vmap: compute.batched=true)"
    wide = torch.nn.Sequential(torch.nn.Linear(features, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 2))
    ex, why = choose_executor(wide, FlatLayout.of(wide), clients, spec, device="cpu")
    assert type(ex) is SequentialExecutor and why.endswith("on cpu > 10; vmap does not pay)")
    dropout = torch.nn.Sequential(torch.nn.Linear(features, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2))
    ex, why = choose_executor(dropout, FlatLayout.of(dropout), clients, spec, device="cuda")
    assert type(ex) is SequentialExecutor and why.startswith("sequential (vmap cannot: model has dropout (1: Dropout(p=0.1))")
    with pytest.raises(ValueError, match="vmap cannot: model has dropout"):
        choose_executor(dropout, FlatLayout.of(dropout), clients, spec, batched=True)
    dnn = tiny_model(features)  # the exact path's model and rule are unchanged
    assert choose_executor(dnn, FlatLayout.of(dnn), clients, LocalSpec(batch_size=32))[1].endswith("; exact stacked MLP)")


def test_measured_step_flops_counts_convolutions_at_every_position():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(256, 10))
    x = torch.zeros(5, 1, 8, 8)
    assert measured_step_flops(conv, x) == 3 * 2 * 5 * (36 * 64 + 2560)
    assert conv.training


def test_auto_vmap_trains_a_round_of_very_unequal_clients_one_at_a_time(run_tiny, tiny_data):
    """One long client and two short ones step together ~1.1 times on average: below VMAP_MIN_PARALLEL the round
    runs one client at a time (a vmapped step costs several sequential ones); equal clients are stacked."""
    from fedsim.fl.batched_executor import VMAP_MIN_PARALLEL

    (x, y) = tiny_data["clients"][0]
    spec = LocalSpec(batch_size=8, lr=0.05, epochs=1, optimizer="sgd", task=Classification(num_classes=2))
    features = x.shape[1]
    made = []

    def auto(*args):
        made.append(choose_executor(*args, device="cpu")[0])
        return made[-1]

    model = _linear(features, 2)
    for sizes, stacked in (([160, 8, 8], False), ([64, 64, 64, 64, 64], True)):
        clients = [(x[:n], y[:n]) for n in sizes]
        run_tiny(settings=_settings(), spec=spec, model=model, initial=FlatLayout.of(model).flatten(model), clients=clients, speeds=np.ones(len(sizes)), executor=auto)
        steps = [n // 8 for n in sizes]
        assert (sum(steps) / max(steps) >= VMAP_MIN_PARALLEL) == stacked
        assert (made[-1].stats["stacked"] > 0) == stacked


def test_an_asynchronous_strategy_trains_vmap_models_one_at_a_time(tiny_data):
    clients = tiny_data["clients"]
    model = _linear(clients[0][0].shape[1], 2)
    spec = LocalSpec(batch_size=32, optimizer="sgd", task=Classification(num_classes=2))
    ex, why = choose_executor(model, FlatLayout.of(model), clients, spec, device="cpu", asynchronous=True)
    assert not isinstance(ex, BatchedExecutor) and why.startswith("sequential (vmap: an asynchronous strategy")
