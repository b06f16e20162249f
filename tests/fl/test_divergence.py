"""NaN/inf in training is caught where it appears, and run.on_divergence decides what follows."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.fl.batched_executor import BatchedExecutor
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import SimSettings
from fedsim.train.local import LocalSpec

HUGE = LocalSpec(batch_size=32, lr=1e9)  # Adam at this rate sends the weights to inf within a step or two


def _settings(policy: str) -> SimSettings:
    return SimSettings(seed=0, stopping=Stopping(max_rounds=2), on_divergence=policy)


def test_stop_names_the_client_round_and_step(run_tiny):
    with pytest.raises(FedsimError, match=r"diverged .* at client \d+, round 1, step \d+; lower strategy.lr"):
        run_tiny(spec=HUGE, settings=_settings("stop"))


def test_skip_client_drops_the_updates_and_logs_them(run_tiny):
    result = run_tiny(spec=HUGE, settings=_settings("skip_client"))
    diverged = result.events[result.events.kind == "diverged"]
    assert len(diverged) == 3 * 2  # every client, both rounds
    assert not (result.events.kind == "aggregate").any()  # nothing finite left to aggregate
    assert bool(torch.isfinite(result.final).all())
    assert (result.accounting["lost_s"] > 0).all()  # the diverged work counts as lost


def test_ignore_lets_the_nan_through(run_tiny):
    result = run_tiny(spec=HUGE, settings=_settings("ignore"))
    assert not bool(torch.isfinite(result.final).all())
    assert not (result.events.kind == "diverged").any()


def test_the_batched_path_finds_the_same_step(run_tiny):
    seq = run_tiny(spec=HUGE, settings=_settings("skip_client"))
    bat = run_tiny(spec=HUGE, settings=_settings("skip_client"), executor=lambda *a: BatchedExecutor(*a))
    pd.testing.assert_frame_equal(seq.events, bat.events)
