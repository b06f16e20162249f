"""Round progress: a bar on a terminal, one log line per round anywhere else; one line per job."""

from __future__ import annotations

import io
import logging

from fedsim.progress import RoundProgress, allow_bars, job_line, round_progress

ROW = {"round": 1, "accuracy": 0.75, "time_s": 2.5}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_logs_one_line_per_round(caplog):
    with caplog.at_level(logging.INFO, logger="fedsim"):
        progress = round_progress(3, stream=io.StringIO())
        progress(ROW)
        progress({**ROW, "round": 2})
    assert progress.bar is None
    assert [r.getMessage() for r in caplog.records] == ["round 1/3: accuracy 0.7500 at 2.5 virtual s", "round 2/3: accuracy 0.7500 at 2.5 virtual s"]


def test_a_terminal_gets_a_bar_that_closes_after_the_last_round(caplog):
    stream = Terminal()
    with caplog.at_level(logging.INFO, logger="fedsim"):
        progress = RoundProgress(2, stream=stream)
        progress(ROW)
        assert progress.bar is not None and progress.bar.n == 1
        progress({**ROW, "round": 2})
    assert progress.bar is None and not caplog.records
    assert "accuracy 0.7500" in stream.getvalue()


def test_parallel_workers_never_draw_bars():
    allow_bars(False)
    try:
        assert RoundProgress(2, stream=Terminal()).bar is None
    finally:
        allow_bars(True)


def test_job_line_is_one_line_with_position_metrics_and_clocks():
    summary = {"rounds": 8, "final_accuracy": 0.9, "final_auc": 0.95, "virtual_s": 12.0, "wall_total_s": 3.0}
    line = job_line(2, 12, summary, "multirun/x/2_a=1")
    assert line == "job 3/12: done: 8 rounds, accuracy 0.9000, AUC 0.9500, virtual 12.0 s, wall 3.0 s -> multirun/x/2_a=1"
    assert job_line(None, None, summary, "out").startswith("done:")
