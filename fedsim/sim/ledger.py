"""Where each client's virtual time went.

Every instant of a client's timeline is in exactly one bucket, so for each client
``end time = useful + checkpoint + lost + recovery + waiting`` holds exactly.
Work (compute and transfers) is provisional until its attempt ends: it becomes
*useful* when the update reaches the server in time, *lost* when a failure, a
cancel or a late arrival throws it away. Work protected by a checkpoint survives a
failure under ``restore_checkpoint`` and stays provisional for the resumed attempt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BUCKETS = ("useful", "checkpoint", "lost", "recovery", "waiting")
USEFUL, LOST = BUCKETS.index("useful"), BUCKETS.index("lost")
_INDEX = {b: i for i, b in enumerate(BUCKETS)}
_WAITING, _RECOVERY = _INDEX["waiting"], _INDEX["recovery"]


class Ledger:
    """A client's time accounts; call :meth:`enter` at every change of activity."""

    __slots__ = ("now", "state", "totals", "pending", "banked", "checkpoints", "failures")

    def __init__(self) -> None:
        self.now = 0.0
        self.state = "waiting"  # waiting | work | checkpoint | recovery
        self.totals = [0.0] * len(BUCKETS)  # seconds per bucket, in BUCKETS order
        self.pending = 0.0  # work since the last checkpoint of the current attempt
        self.banked = 0.0  # work protected by the last checkpoint
        self.checkpoints = 0
        self.failures = 0

    def enter(self, state: str, t: float) -> None:
        """Close the current activity at virtual time ``t`` and start ``state``."""
        elapsed = t - self.now
        if self.state == "work":
            self.pending += elapsed
        else:
            self.totals[_INDEX[self.state]] += elapsed
        self.state, self.now = state, t

    def lapse(self, times: list[float], failing: bool) -> None:
        """Failures (into ``recovery``) and repairs (into ``waiting``) at ``times``, alternating from a failure iff
        ``failing``, while no work is open: the :meth:`enter` calls one by one would make, summed in the same order."""
        if self.state != ("waiting" if failing else "recovery"):  # not the idle state: step by step
            for t in times:
                self.enter("recovery" if failing else "waiting", t)
                failing = not failing
            return
        if not times:
            return
        totals = self.totals
        this, other = (_WAITING, _RECOVERY) if failing else (_RECOVERY, _WAITING)  # up until a failure, down until a repair
        total, other_total, before = totals[this], totals[other], self.now
        for t in times:  # each span added to its bucket's total in turn: the sums enter() makes
            total += t - before
            total, other_total, this, other, before = other_total, total, other, this, t
        totals[this], totals[other] = total, other_total
        self.now, self.state = before, ("waiting" if len(times) % 2 != failing else "recovery")

    def checkpointed(self) -> None:
        """A checkpoint now protects all work so far in this attempt."""
        self.banked += self.pending
        self.pending = 0.0
        self.checkpoints += 1

    def discard(self, seconds: float) -> None:
        """Part of the current work (a message cut off by a link outage) was wasted."""
        self.pending -= seconds
        self.totals[LOST] += seconds

    def succeed(self) -> None:
        """The attempt's update was accepted: all its work was useful."""
        self.totals[USEFUL] += self.banked + self.pending
        self.banked = self.pending = 0.0

    def lose(self, keep_banked: bool) -> None:
        """The attempt was cut short; work since the last checkpoint (or all of it) is lost."""
        self.totals[LOST] += self.pending + (0.0 if keep_banked else self.banked)
        self.pending = 0.0
        if not keep_banked:
            self.banked = 0.0


def lapse_all(ledgers: Sequence[Ledger], times: np.ndarray, failed: np.ndarray, starts: np.ndarray) -> None:
    """:meth:`Ledger.lapse` for many ledgers at once: ledger ``j`` takes the transitions ``times[starts[j]:starts[j+1]]``
    (a failure where ``failed``, else a repair; each ledger's alternate).

    Ledgers in their idle state (waiting before a failure, in recovery before a repair)
    make their sums as columns, a step at a time across ledgers: each total adds its
    spans in the order the one-by-one lapse adds them, so the sums are its own, bit for
    bit. Any other ledger takes its own lapse."""
    ends = np.append(starts[1:], len(times))
    first = failed[starts].tolist()
    idle = [ledger.state == ("waiting" if failing else "recovery") for ledger, failing in zip(ledgers, first)]
    if not all(idle):
        for ledger, failing, start, end, ok in zip(ledgers, first, starts.tolist(), ends.tolist(), idle):
            if not ok:
                ledger.lapse(times[start:end].tolist(), failing)
        keep = np.flatnonzero(idle)
        ledgers, starts, ends = [ledgers[j] for j in keep.tolist()], starts[keep], ends[keep]
    n = len(ledgers)
    before = np.fromiter((ledger.now for ledger in ledgers), dtype=np.float64, count=n)
    waiting = np.fromiter((ledger.totals[_WAITING] for ledger in ledgers), dtype=np.float64, count=n)
    recovery = np.fromiter((ledger.totals[_RECOVERY] for ledger in ledgers), dtype=np.float64, count=n)
    live, k = np.arange(n), 0
    while len(live):
        rows = starts[live] + k
        at, fails = times[rows], failed[rows]
        span = at - before[live]
        waiting[live[fails]] += span[fails]  # up until a failure
        recovery[live[~fails]] += span[~fails]  # down until a repair
        before[live] = at
        k += 1
        live = live[starts[live] + k < ends[live]]
    for ledger, up_s, down_s, now, down in zip(ledgers, waiting.tolist(), recovery.tolist(), before.tolist(), failed[ends - 1].tolist()):
        totals = ledger.totals
        totals[_WAITING], totals[_RECOVERY] = up_s, down_s
        ledger.now, ledger.state = now, ("recovery" if down else "waiting")


def succeed_all(ledgers: Sequence[Ledger], start: float, marks: Sequence[np.ndarray]) -> None:
    """Many waiting ledgers' attempts that succeed, as columns: ledger ``j`` enters ``work`` at ``start``, changes
    activity within it at ``marks[0][j]``, ``marks[1][j]``…, enters ``waiting`` at ``marks[-1][j]`` and succeeds.

    The sums are those the :meth:`Ledger.enter` and :meth:`Ledger.succeed` calls one by one
    make, in the same order, element by element: the same floats, bit for bit."""
    n = len(ledgers)
    before = np.fromiter((ledger.now for ledger in ledgers), dtype=np.float64, count=n)
    waiting = np.fromiter((ledger.totals[_WAITING] for ledger in ledgers), dtype=np.float64, count=n)
    useful = np.fromiter((ledger.totals[USEFUL] for ledger in ledgers), dtype=np.float64, count=n)
    pending = np.fromiter((ledger.pending for ledger in ledgers), dtype=np.float64, count=n)
    banked = np.fromiter((ledger.banked for ledger in ledgers), dtype=np.float64, count=n)
    waiting += start - before  # up and idle until the attempt began
    before = start
    for t in marks:
        pending += t - before
        before = t
    useful += banked + pending
    for ledger, waiting_s, useful_s, now in zip(ledgers, waiting.tolist(), useful.tolist(), before.tolist()):
        totals = ledger.totals
        totals[_WAITING], totals[USEFUL] = waiting_s, useful_s
        ledger.now, ledger.pending, ledger.banked = now, 0.0, 0.0


def close_all(ledgers: Sequence[Ledger], t: float) -> dict[str, np.ndarray]:
    """Every ledger closed at ``t``, as columns (``useful_s`` … ``waiting_s``, ``total_s``, ``checkpoints``, ``failures``)."""
    for ledger in ledgers:
        ledger.enter("waiting", t)
        ledger.lose(keep_banked=False)
    n = len(ledgers)
    totals = np.array([ledger.totals for ledger in ledgers], dtype=np.float64).reshape(n, len(BUCKETS))  # the ledgers' own lists
    columns = {f"{b}_s": totals[:, j] for j, b in enumerate(BUCKETS)}
    counts = {name: np.fromiter((getattr(ledger, name) for ledger in ledgers), dtype=np.int64, count=n) for name in ("checkpoints", "failures")}
    return columns | {"total_s": np.full(n, float(t))} | counts
