"""The batched executor gives the sequential engine's results, failures and checkpoints included."""

from __future__ import annotations

import math

import pandas as pd
import torch

from conftest import tiny_model
from fedsim.fl.batched_executor import BatchedExecutor, choose_executor
from fedsim.fl.executor import SequentialExecutor
from fedsim.fl.recovery import Checkpointing
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import FaultTolerance, SimSettings
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.train.flat import FlatLayout
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
