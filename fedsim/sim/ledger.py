"""Where each client's virtual time went.

Every instant of a client's timeline is in exactly one bucket, so for each client
``end time = useful + checkpoint + lost + recovery + waiting`` holds exactly.
Work (compute and transfers) is provisional until its attempt ends: it becomes
*useful* when the update reaches the server in time, *lost* when a failure, a
cancel or a late arrival throws it away. Work protected by a checkpoint survives a
failure under ``restore_checkpoint`` and stays provisional for the resumed attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUCKETS = ("useful", "checkpoint", "lost", "recovery", "waiting")


@dataclass
class Ledger:
    """A client's time accounts; call :meth:`enter` at every change of activity."""

    now: float = 0.0
    state: str = "waiting"  # waiting | work | checkpoint | recovery
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0.0))
    pending: float = 0.0  # work since the last checkpoint of the current attempt
    banked: float = 0.0  # work protected by the last checkpoint
    checkpoints: int = 0
    failures: int = 0

    def enter(self, state: str, t: float) -> None:
        """Close the current activity at virtual time ``t`` and start ``state``."""
        elapsed = t - self.now
        if self.state == "work":
            self.pending += elapsed
        else:
            self.totals[self.state] += elapsed
        self.state, self.now = state, t

    def checkpointed(self) -> None:
        """A checkpoint now protects all work so far in this attempt."""
        self.banked += self.pending
        self.pending = 0.0
        self.checkpoints += 1

    def discard(self, seconds: float) -> None:
        """Part of the current work (a message cut off by a link outage) was wasted."""
        self.pending -= seconds
        self.totals["lost"] += seconds

    def succeed(self) -> None:
        """The attempt's update was accepted: all its work was useful."""
        self.totals["useful"] += self.banked + self.pending
        self.banked = self.pending = 0.0

    def lose(self, keep_banked: bool) -> None:
        """The attempt was cut short; work since the last checkpoint (or all of it) is lost."""
        self.totals["lost"] += self.pending + (0.0 if keep_banked else self.banked)
        self.pending = 0.0
        if not keep_banked:
            self.banked = 0.0

    def close(self, t: float) -> dict[str, float]:
        """Totals at the end of the run; unfinished work counts as lost."""
        self.enter("waiting", t)
        self.lose(keep_banked=False)
        return {f"{b}_s": v for b, v in self.totals.items()} | {"total_s": t, "checkpoints": self.checkpoints, "failures": self.failures}
