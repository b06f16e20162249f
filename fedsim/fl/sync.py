"""Synchronous rounds: select → broadcast → wait (for everyone, or until a deadline) → aggregate → evaluate.

With heartbeat detection the server learns of client failures only through missing
heartbeats and then applies its aggregation policy (wait, redistribute, drop). Early
stopping follows Algorithm 1 of the checkpointing paper. Stragglers, FedProx's way
(Li et al., MLSys 2020): a share of each round's clients can do only some of the
local epochs; ``drop`` leaves them out, ``partial`` takes what they did. Under a
deadline, ``partial`` clients send the steps that fit before it instead of being late.
Rounds that nothing but the clients' own failures can cut (no deadline, detection,
redistribution, server failure or time budget) are *uncut*: a client plays its work as
soon as it starts, up to its next failure (:class:`~fedsim.fl.round.Round`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fedsim.fl.messages import Job
from fedsim.fl.protocol import ServerProtocol
from fedsim.fl.round import Round, Task
from fedsim.seeding import rng
from fedsim.sim.events import Burst

if TYPE_CHECKING:
    from fedsim.fl.server import Server


class SyncRounds(ServerProtocol):
    """The synchronous protocol of a :class:`~fedsim.fl.server.Server`."""

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.current: Round | None = None
        rules = server.rules  # nothing cancels a client's work before it delivers: the rounds are uncut (Round)
        self.uncut = (rules.policy.kind != "deadline" and rules.detection is None and not rules.on_failure.redistribute
                      and not rules.server_fails and math.isinf(rules.stopping.max_time_s))  # fmt: skip

    def play(self):
        """Rounds until ``max_rounds`` or early stopping."""
        while not (yield from self.round()):
            pass

    def round(self):
        """One round; returns whether the run ends."""
        s = self.server
        rules, recorder, state = s.rules, s.recorder, s.state
        number, start = state.number, s.env.now
        failures_before = recorder.count("failure")
        suspected = s.suspected  # a property: read once for the round's start, not twice per client
        alive = [c.cid for c in s.clients if c.cid not in suspected] or [c.cid for c in s.clients]
        selected = s.strategy.configure_round(number, alive, rng(rules.seed, "selection", number))
        drops = self.dropouts(number, selected)
        epochs = self.straggler_epochs(number, selected)
        partial = rules.policy.stragglers == "partial"
        deadline = start + rules.policy.deadline_s if rules.policy.kind == "deadline" else math.inf
        rnd = self.current = Round(s.env, number, s.strategy.configure_fit(number, state.global_flat), selected, recorder, deadline=deadline,
                                   partial=partial, uncut=self.uncut)  # fmt: skip
        rnd.on_dropout = lambda cid: self.dropout_reported(rnd, cid)
        recorder.event("round_start", round=number, value=len(selected))
        plain = (Task(rnd), Task(rnd, dropout=True))  # frozen: one for every client of the round given the same
        starts = Burst(s.env, s.cohort)  # the clients' starts, from one event rather than one each; the cohort finishes the clean ones together
        for cid, drop, k in zip(selected, drops, epochs):
            if k is None:
                s.clients[cid].give(plain[bool(drop)], starts)
            else:
                s.clients[cid].give(Task(rnd, dropout=bool(drop), job=Job(data=cid, origin=cid, epochs=k), straggler=not partial), starts)
        for cid in selected:
            if cid in suspected:
                self.handle_failure(rnd, cid)
        if rules.policy.kind == "deadline":
            yield rnd.all_in | s.env.timeout(rules.policy.deadline_s)
        else:
            yield rnd.all_in
        self.close(rnd)
        updates = sorted(rnd.updates, key=lambda u: (u.origin, u.client))
        if updates:
            state.global_flat = yield from s.aggregator.run(lambda: s.strategy.aggregate(number, state.global_flat, updates), len(updates), number)
            recorder.event("aggregate", round=number, value=len(updates))
        counts = {
            "selected": len(selected),
            "participants": len({u.origin for u in updates}),
            "dropouts": int(drops.sum()),
            "failures": recorder.count("failure") - failures_before,
        }
        s.monitor.score(number, state.global_flat, start, counts, updates, [0] * len(updates))
        return (yield from s.finish_round(number))

    # --- who does what ------------------------------------------------------------------
    def dropouts(self, number: int, selected: list[int]) -> np.ndarray:
        """Which selected clients drop out of round ``number``.

        One uniform draw per client of the fleet, from a stream of the round alone, so a
        client's dropout depends only on (seed, round, client): every strategy and
        recovery policy sees the same dropouts, whoever it selects.
        """
        rules = self.server.rules
        if not rules.dropout:
            return np.zeros(len(selected), dtype=bool)
        u = rng(rules.seed, "dropout", number).random(len(self.server.clients))
        return u[np.asarray(selected, dtype=np.int64)] < rules.dropout

    def straggler_epochs(self, number: int, selected: list[int]) -> list[int | None]:
        """Each selected client's local epochs if it straggles in round ``number`` (FedProx's setting), else None.

        A share ``straggler_share`` of the fleet straggles each round and draws its epochs
        uniformly from 1..E; the draws are per (seed, round, client), like dropouts, so every
        method meets the same stragglers. One that draws all E epochs is no straggler.
        """
        s = self.server
        if not s.rules.straggler_share:
            return [None] * len(selected)
        n, full = len(s.clients), s.clients[0].executor.spec.epochs
        straggles = rng(s.rules.seed, "straggler", number).random(n) < s.rules.straggler_share
        epochs = rng(s.rules.seed, "straggler-epochs", number).integers(1, full + 1, n)
        return [int(epochs[c]) if straggles[c] and epochs[c] < full else None for c in selected]

    def dropout_reported(self, rnd: Round, cid: int) -> None:
        """A client said it will not report: under redistribution its data goes to the others."""
        if self.server.rules.on_failure.redistribute:
            self.redistribute(rnd, cid)

    def redistribute(self, rnd: Round, origin: int) -> None:
        """Split ``origin``'s data among the round's active clients; each trains its share."""
        s = self.server
        helpers = [c for c in rnd.selected if c != origin and c not in s.suspected and c not in rnd.dropouts]
        if not helpers or s.hooks.split_data is None:
            return
        starts = Burst(s.env)
        for i, helper in enumerate(helpers):
            data, nbytes = s.hooks.split_data(origin, len(helpers), i)
            rnd.expect((helper, origin))
            s.clients[helper].give(Task(rnd, job=Job(data=data, origin=origin, extra_bytes=nbytes)), starts)
        s.recorder.event("redistribute", client=origin, round=rnd.number, value=len(helpers))

    def open_rounds(self) -> list[Round]:
        """This round, while it is open."""
        return [self.current] if self.current is not None and not self.current.closed else []
