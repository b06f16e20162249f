"""Progress over rounds and jobs: a tqdm bar on a terminal, plain log lines anywhere else.

A bar is drawn only when the stream is a TTY, so batch logs (SLURM, CI, a job's
``.log`` file under hydra) get one readable line per round and per job instead of
carriage-return noise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import IO

from tqdm import tqdm

log = logging.getLogger("fedsim")
_BARS = True  # switched off where several jobs share one terminal (parallel launchers)
HEADLINE = ("accuracy", "r2", "surrogate_accuracy", "auc", "macro_f1", "mse")  # metrics progress lines show, where a row or summary has them
LABELS = {"auc": "AUC", "macro_f1": "macro-F1", "r2": "R²", "mse": "MSE"}


def allow_bars(on: bool) -> None:
    """Allow or forbid bars in this process (a parallel sweep's workers log lines instead)."""
    global _BARS
    _BARS = on


def is_tty(stream: IO[str] | None = None) -> bool:
    """Whether to draw bars on ``stream`` (default stderr): bars allowed and it is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return _BARS and bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class RoundProgress:
    """An ``on_round`` callback: advances a bar, or logs one line per round."""

    def __init__(self, total: int, desc: str = "rounds", stream: IO[str] | None = None, logger: logging.Logger = log, bar: bool | None = None) -> None:
        self.total = total
        self.logger = logger
        self.bar: tqdm | None = None
        stream = sys.stderr if stream is None else stream
        if is_tty(stream) if bar is None else bar:
            self.bar = tqdm(total=total, desc=desc, unit="round", file=stream, leave=False, dynamic_ncols=True, mininterval=0)

    def __call__(self, row: Mapping[str, object]) -> None:
        """Report one finished round (a row of ``rounds.csv``)."""
        metric = next((k for k in HEADLINE if k in row), "train_loss")  # the task's first headline metric
        value, t = float(row[metric]), float(row["time_s"])  # type: ignore[arg-type]
        if self.bar is not None:
            self.bar.set_postfix_str(f"{metric} {value:.4f}, virtual {t:.1f} s", refresh=False)
            self.bar.update(1)
            if int(row["round"]) >= self.total:  # type: ignore[call-overload]
                self.close()
        else:
            self.logger.info("round %s/%d: %s %.4f at %.1f virtual s", row["round"], self.total, metric, value, t)

    def close(self) -> None:
        """Remove the bar (it is also closed when garbage-collected, e.g. after early stopping)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def round_progress(total: int, desc: str = "rounds", stream: IO[str] | None = None) -> RoundProgress:
    """The ``on_round`` callback for a run of at most ``total`` rounds."""
    return RoundProgress(total, desc, stream)


def job_line(num: int | None, total: int | None, summary: Mapping[str, object], where: str) -> str:
    """One line per finished job: position in the sweep, the task's headline metrics, virtual and wall time."""
    head = f"job {num + 1}/{total}: " if num is not None and total else ("job %d: " % (num + 1) if num is not None else "")
    shown = [f"{LABELS.get(m, m)} {float(summary[f'final_{m}']):.4f}" for m in HEADLINE if f"final_{m}" in summary]  # type: ignore[arg-type]
    return (
        f"{head}done: {summary['rounds']} rounds, {', '.join(shown)}{', ' if shown else ''}"
        f"virtual {float(summary['virtual_s']):.1f} s, wall {float(summary['wall_total_s']):.1f} s -> {where}"  # type: ignore[arg-type]
    )
