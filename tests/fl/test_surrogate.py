"""System-only mode: same timeline as the torch run, no training, accuracy from the curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsim.fl.recovery import Checkpointing
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import FaultTolerance, SimSettings
from fedsim.fl.surrogate import LearningCurve, system_only
from fedsim.train.local import LocalSpec
from fedsim.sim.failures import FailureModel, repair_sampler


def _settings(**fault) -> SimSettings:
    failure = FailureModel(shape=1.5, scale=3.0, repair=repair_sampler("exponential", 0.5))
    return SimSettings(seed=2, failure=failure, dropout=0.2, stopping=Stopping(max_rounds=4), fault=FaultTolerance(**fault))


@pytest.mark.parametrize("fault", [{}, dict(checkpointing=Checkpointing(tau_steps=1, delta_s=0.01, restart_s=0.2), recovery="restore_checkpoint")])
def test_system_only_run_has_the_torch_runs_timeline(run_tiny, tiny_data, fault):
    curve = LearningCurve()
    torch_run = run_tiny(settings=_settings(**fault))
    sizes = [len(x) for x, _ in tiny_data["clients"]]
    sys_run = run_tiny(settings=_settings(**fault), clients=sizes, **system_only(curve, LocalSpec(batch_size=32)))
    assert (torch_run.events.kind == "work_lost").sum() > 0
    pd.testing.assert_frame_equal(torch_run.events, sys_run.events)
    cols = ["round", "time_s", "round_time_s", "selected", "participants", "dropouts", "failures"]
    pd.testing.assert_frame_equal(torch_run.rounds[cols], sys_run.rounds[cols])
    acc = sys_run.rounds["surrogate_accuracy"].to_numpy()
    assert np.all(np.diff(acc) >= 0) and acc[-1] > curve.initial
    assert sys_run.rounds["train_loss"].isna().all()  # no training loss is modelled


def test_curve_shape_and_bad_values():
    c = LearningCurve(initial=0.5, final=0.9, scale_epochs=2.0)
    assert c.accuracy(0) == 0.5 and c.accuracy(2.0) == pytest.approx(0.5 + 0.4 * (1 - np.exp(-1)))
    assert c.accuracy(1e9) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        LearningCurve(initial=0.9, final=0.5)


@pytest.mark.parametrize("target, per_round", [(0.6, 1.0), (0.8, 1.0), (0.85, 0.5), (0.89, 2.0)])
def test_rounds_to_a_target_is_the_first_round_that_reaches_it(target, per_round):
    c = LearningCurve(initial=0.5, final=0.9, scale_epochs=2.0)
    r = c.rounds_to(target, per_round)
    assert c.accuracy(r * per_round) >= target - 1e-12 > c.accuracy((r - 1) * per_round)


def test_rounds_to_a_target_the_curve_never_reaches_is_refused():
    with pytest.raises(ValueError, match="between"):
        LearningCurve(initial=0.5, final=0.9).rounds_to(0.95, 1.0)
