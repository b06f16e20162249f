"""Asynchronous versions: keep clients busy, fold each update in as it arrives, a row per model version.

Up to ``concurrency`` clients train at once; when one finishes (or the server gives up
on it), the slot goes to an idle client, who downloads the current model. A busy client
is never dispatched again. Each arriving update goes to the strategy
(:class:`~fedsim.fl.strategies.base.AsyncStrategy`), which takes a server step when it
chooses: FedAsync at every update, FedBuff after K. Each step is a new model version,
scored and checkpointed like a synchronous round; an update's staleness is the number
of versions made since the one it trained from, and one staler than ``max_staleness`` is
dropped (a ``stale`` event).

Same-instant arrivals (equal speeds) are all folded in before any slot is refilled, so
the refill downloads the model they made: with K = concurrency = every client, equal
speeds and no staleness weighting, FedBuff is FedAvg round for round.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import simpy
import torch

from fedsim.errors import FedsimError
from fedsim.fl.messages import Update
from fedsim.fl.protocol import ServerProtocol
from fedsim.fl.round import Round, Task
from fedsim.seeding import rng

if TYPE_CHECKING:
    from fedsim.fl.server import Server

LATE = 2  # a SimPy event priority after NORMAL (1): processed once everything else at its instant is


class EndOfInstant(simpy.Event):
    """Triggers at the current instant after every other event scheduled for it, including those scheduled later."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self._ok, self._value = True, None
        env.schedule(self, LATE)


class AsyncVersions(ServerProtocol):
    """The asynchronous protocol of a :class:`~fedsim.fl.server.Server`."""

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        rules, strategy = server.rules, server.strategy
        if rules.policy.kind != "wait_all" or rules.policy.stragglers != "drop" or rules.straggler_share:
            raise FedsimError("run.round_policy=deadline, strategy.stragglers and compute.straggler_share are synchronous; an asynchronous strategy takes none of them")
        if rules.on_failure.redistribute:
            raise FedsimError("recovery.aggregation=redistribute splits a synchronous round's data; under an asynchronous strategy use wait or drop")
        n = len(server.clients)
        self.concurrency = min(n, strategy.concurrency or max(strategy.min_clients, math.ceil(strategy.fraction * n)))
        self.busy: dict[int, Round] = {}  # client -> its open task
        self.arrivals = simpy.Store(server.env)  # tasks the server stopped waiting on (an update in, or given up)
        self.repeats: dict[tuple[int, int], int] = {}  # (client, version) -> dispatches so far
        self.draws: dict[tuple[int, int], np.ndarray] = {}  # (version, repeat) -> the fleet's dropout draws
        self.refills = 0
        self.begin_version()

    def begin_version(self) -> None:
        """Start counting what the next model version's row reports."""
        self.start, self.selected, self.dropped = self.server.env.now, 0, 0
        self.failures_before = self.server.recorder.count("failure")
        self.pending: list[tuple[Update, int]] = []  # (update, staleness) folded in since the last version

    def play(self):
        """Versions until ``max_rounds`` of them or early stopping."""
        self.refill()
        while True:
            rnd: Round = yield self.arrivals.get()
            if self.busy.get(rnd.selected[0]) is not rnd:  # a task of a server that has since restarted
                continue
            del self.busy[rnd.selected[0]]
            for update in rnd.updates:
                if (yield from self.fold(update, rnd)):
                    return
            if not self.arrivals.items:
                yield EndOfInstant(self.server.env)  # let this instant's other arrivals land first
            if not self.arrivals.items:
                self.refill()

    def fold(self, update: Update, rnd: Round):
        """Hand ``update`` to the strategy; on a server step, make, score and checkpoint the new version. Returns whether the run ends."""
        s = self.server
        state, strategy = s.state, s.strategy
        staleness = state.number - 1 - update.version
        if strategy.max_staleness is not None and staleness > strategy.max_staleness:
            s.recorder.event("stale", client=update.client, round=state.number, value=staleness)
            return False
        self.pending.append((update, staleness))
        if not strategy.receive(state.global_flat, rnd.fit.flat, update, staleness):
            return False
        number = state.number
        state.global_flat = yield from s.aggregator.run(lambda: strategy.step(state.global_flat), len(self.pending), number)
        s.recorder.event("aggregate", round=number, value=len(self.pending))
        updates = [u for u, _ in self.pending]
        counts = {
            "selected": self.selected,
            "participants": len({u.origin for u in updates}),
            "dropouts": self.dropped,
            "failures": s.recorder.count("failure") - self.failures_before,
        }
        s.monitor.score(number, state.global_flat, self.start, counts, updates, [t for _, t in self.pending])
        self.begin_version()
        return (yield from s.finish_round(number))

    def refill(self) -> None:
        """Dispatch idle clients, drawn by the strategy, until ``concurrency`` are busy."""
        s = self.server
        free = self.concurrency - len(self.busy)
        if free <= 0:
            return
        idle = [c.cid for c in s.clients if c.cid not in self.busy]
        healthy = [c for c in idle if c not in s.suspected] or (idle if not self.busy else [])
        self.refills += 1
        for cid in s.strategy.select(free, healthy, rng(s.rules.seed, "selection", s.state.number, self.refills)):
            self.dispatch(cid)

    def dispatch(self, cid: int) -> None:
        """Send ``cid`` a task on the current model."""
        s = self.server
        assert cid not in self.busy, f"client {cid} is busy"
        number = s.state.number
        repeat = self.repeats.get((cid, number), 0)
        self.repeats[(cid, number)] = repeat + 1
        flat = s.state.global_flat if s.replay is None else s.replay.model(number - 1, s.state.global_flat)
        rnd = Round(s.env, number, s.strategy.configure_fit(number, flat), [cid], s.recorder, repeat=repeat)
        rnd.all_in.callbacks.append(lambda _: self.arrivals.put(rnd))
        self.busy[cid] = rnd
        self.selected += 1
        drop = self.drops_out(cid, number, repeat)
        self.dropped += drop
        s.clients[cid].give(Task(rnd, dropout=drop))

    def drops_out(self, cid: int, number: int, repeat: int) -> bool:
        """Whether ``cid``'s task from version ``number − 1`` (its ``repeat``-th) drops out: the synchronous
        round's draw for a first dispatch, a draw of its own for a repeat."""
        rate = self.server.rules.dropout
        if not rate:
            return False
        key = (number, repeat)
        if key not in self.draws:
            self.draws = {k: v for k, v in self.draws.items() if k[0] >= number}  # older versions are done with
            self.draws[key] = rng(self.server.rules.seed, "dropout", *key[: 2 if repeat else 1]).random(len(self.server.clients))
        return bool(self.draws[key][cid] < rate)

    def open_rounds(self) -> list[Round]:
        """Every busy client's task."""
        return list(self.busy.values())

    def abandon(self) -> None:
        """The server failed: every open task is lost; a restart dispatches afresh."""
        super().abandon()
        self.busy.clear()
        self.begin_version()

    def inflight(self) -> dict[int, torch.Tensor]:
        """The models the busy clients train from, by version (a snapshot keeps them: the replay of a
        resumed run trains these tasks for real)."""
        return {rnd.version: rnd.fit.flat for rnd in self.busy.values()}
