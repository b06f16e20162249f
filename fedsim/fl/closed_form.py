"""Training and upload that nothing but a cancel can cut, played as one event at their end.

Once a client has the model, its remaining attempt (training segments, checkpoint
writes, the upload) is a chain of waits whose lengths are known: step costs over its
speed, the checkpoint cost, the uplink's transfer time. When its next failure falls
after the chain's end and its links can neither fail nor change rate, only a cancel
from the server can cut the chain. Then the client waits for one SimPy event at the
chain's end instead of one per wait, and runs the attempt's own code there on a
:class:`Cursor`: every wait ends at the sum a timeout would have made, so the rows,
accounts, checkpoints and training calls are those of the phase-by-phase path, each at
its own instant. A cancel that comes first plays the chain only up to the wait it cut,
and so does the end of the run (:class:`RunOver`). Where no cancel can come (an uncut
round: :class:`~fedsim.fl.round.Round`), nothing can cut the chain at all, and it is
played as soon as it starts, with no event: its rows carry their own instants, and the
round receives the update ahead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy


_sum = np.add.reduce  # what ndarray.sum calls, without its Python wrapper: the same pairwise sum, bit for bit


def segment_seconds(step_seconds: np.ndarray, stops: Sequence[int], start: int) -> tuple[float, ...]:
    """Compute seconds of each training segment: steps ``start``→``stops[0]``, then to each next stop (a tuple: a
    million attempts in flight hold one each)."""
    return tuple([float(_sum(step_seconds[a:b])) for a, b in zip([start, *stops[:-1]], stops)])


def segment_ends(t: float, busy_s: Sequence[float], checkpoint_s: float) -> list[float]:
    """The instant each training segment of ``busy_s`` seconds ends, beginning at ``t``, with a checkpoint write of
    ``checkpoint_s`` after each but the last: the sums the client's timeouts make."""
    ends = []
    for i, busy in enumerate(busy_s):
        if i:
            t += checkpoint_s
        t += busy
        ends.append(t)
    return ends


class RunOver(Exception):
    """Thrown into a client's work still waiting for its one event when the run ends: the waits that ended by then
    are played, as the phase-by-phase path played them, and the rest never happen."""


class Cursor:
    """The clock of work played after the fact: each wait ends where its timeout would have.

    The first wait waits for ``pending``, the one event at the work's end (None: the work
    is played ahead, when it starts); the waits after it take no time on SimPy's clock. A
    wait that ends at or after ``horizon`` was cut by the interrupt ``stop`` (a cancel at
    ``horizon``, or the client's own failure there, met by work played ahead): it raises
    it, as the interrupt would have inside that wait.
    """

    __slots__ = ("now", "pending", "horizon", "stop")

    def __init__(self, now: float, pending: simpy.Event | None) -> None:
        self.now = now
        self.pending: simpy.Event | None = pending
        self.horizon = float("inf")
        self.stop: simpy.Interrupt | RunOver | None = None

    def take(self) -> simpy.Event:
        """The one event to wait for (once)."""
        event, self.pending = self.pending, None
        return event  # type: ignore[return-value]

    def cut(self, at: float, stop: simpy.Interrupt | RunOver) -> None:
        """The interrupt ``stop`` came at ``at``: waits still running then end with it."""
        self.horizon, self.stop = at, stop

    def _stopped(self) -> simpy.Interrupt | RunOver:
        """The interrupt that cut the work, let go of: its traceback will hold this frame's cursor, and a cursor
        holding it back would make a cycle that lives until the round's collection (one per failure met ahead)."""
        stop, self.stop = self.stop, None
        return stop  # type: ignore[return-value]

    def advance(self, seconds: float) -> float:
        """Wait ``seconds`` from the cursor; the instant the wait ends."""
        end = self.now + seconds
        if end >= self.horizon:
            raise self._stopped()
        self.now = end
        return end
