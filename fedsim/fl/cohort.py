"""Clean first attempts of a burst of task starts, finished together as columns.

In a round that nothing cancels (:class:`~fedsim.fl.round.Round`, ``uncut``), a client
whose next failure falls after its whole attempt (download, one training segment of a
whole round, upload) plays that attempt as soon as it starts, on a cursor
(:mod:`fedsim.fl.closed_form`): four rows, five changes in its ledger, one training call,
one update received ahead, and no SimPy event. Most of a large fleet's clients are such
clients in most rounds, and what each does differs only in its numbers. So when the
server hands out a round's tasks as a :class:`~fedsim.sim.events.Burst`, such a start
logs its first two rows (:meth:`Cohort.takes`), the only ones that share an instant with
other clients' rows (the round's start, the download's end), and leaves the rest of its
attempt to be finished with the others' when the burst's stretch of calls ends
(:meth:`Cohort.finish`). Its last two rows fall at instants of its own (no other client
has its speed: ``alone``), so the event table, which sorts the log by time, has them in
the same place; its ledger takes the same sums, element by element
(:func:`~fedsim.sim.ledger.succeed_all`); and the round receives its update ahead, as it
would have. The tables are those of the attempts played one by one, bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fedsim.fl.messages import NO_EXTRAS, Update
from fedsim.fl.round import Round
from fedsim.sim.ledger import succeed_all
from fedsim.train.local import TrainResult, TrainState

if TYPE_CHECKING:
    from fedsim.fl.client import Client

LAST_ROWS = ("upload", "receive")  # the kinds of an attempt's last two rows, in the order it logs them


class Cohort:
    """The clean first attempts of the burst of starts running now, to be finished together (a context: open while
    the burst's calls run; the attempts are finished when they end)."""

    __slots__ = ("clients", "results", "trained", "ends", "rnd", "open")

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.results: list[TrainResult] = []
        self.trained: list[float] = []  # when each one's download ends and its training begins
        self.ends: list[float] = []  # when each one's upload ends
        self.rnd: Round | None = None  # the round of the attempts taken
        self.open = False  # within a burst's stretch of calls

    def __enter__(self) -> Cohort:
        self.open = True
        return self

    def __exit__(self, error: type | None, *_: object) -> None:
        self.open = False
        if error is None:
            self.finish()

    def takes(self, client: Client) -> bool:
        """Whether ``client``'s start is a clean first attempt, played ahead to its end before its next failure: if so,
        it logs the attempt's first two rows, as the attempt would, and the rest waits for :meth:`finish`."""
        items = client.inbox.items
        task = items[0] if len(items) == 1 else None
        if task is None or task.dropout or task.straggler or task.job is not None:  # type: ignore[attr-defined]
            return False
        rnd, cid, shared = task.round, client.cid, client.shared  # type: ignore[attr-defined]
        if (not rnd.uncut or rnd.partial or rnd.fit.personalize is not None or not client.up or client.parked is not None or client.working_on is not None
                or client.unsaved is not None or client.ledger.state != "waiting" or not shared.alone[cid] or not client.downlink.constant
                or not client.uplink.constant or not rnd.wants((cid, cid))):  # fmt: skip
            return False
        busy = shared.round_s[cid]  # type: ignore[index]
        trained = client.env._now + client.downlink.transfer_time(shared.model_bytes + rnd.fit.extra_bytes)  # the sums its waits make
        end = trained + busy + client.uplink.transfer_time(shared.model_bytes)
        if not busy > 0.0 or not client.unfailing_until(end):
            return False  # its training ends where it begins; or its failure cuts the attempt (or comes at its end)
        result = client.executor.train(cid, TrainState(flat=rnd.fit.flat), seed=client.train_seed(rnd, cid), stop_step=len(shared.costs(cid)), fit=rnd.fit)
        if result.diverged_step is not None:  # the attempt's own code decides what a divergence does
            return False
        if rnd is not self.rnd:
            self.finish()
            self.rnd = rnd
        items.clear()
        client.recorder.event("broadcast", client=cid, round=rnd.number)
        client.recorder.event("train_start", client=cid, round=rnd.number, value=busy, at=trained)
        self.clients.append(client)
        self.results.append(result)
        self.trained.append(trained)
        self.ends.append(end)
        return True

    def finish(self) -> None:
        """Finish the attempts taken: their training's end and upload, as rows, accounts and updates received ahead."""
        clients, results, rnd = self.clients, self.results, self.rnd
        if not clients:
            return
        trained, sent = np.array(self.trained), np.array(self.ends)
        self.clients, self.results, self.trained, self.ends, self.rnd = [], [], [], [], None
        assert rnd is not None
        shared, n = clients[0].shared, len(clients)
        t0 = clients[0].env._now  # the instant of the burst: every attempt began there
        cids = np.fromiter((c.cid for c in clients), dtype=np.int64, count=n)
        uploads = trained + np.frombuffer(shared.round_s, dtype=np.float64)[cids]  # type: ignore[arg-type]  # the training's end
        succeed_all([c.ledger for c in clients], t0, (trained, uploads, sent))
        clients[0].recorder.columns(LAST_ROWS, np.tile(np.arange(2), n), np.column_stack([uploads, sent]).ravel(), np.repeat(cids, 2), rnd.number,
                                    np.full(2 * n, np.nan))  # fmt: skip
        version, updates = rnd.version, []
        for client, result in zip(clients, results):
            loss = (0 + result.loss * result.samples) / max(0 + result.samples, 1)  # the attempt's sums over its one segment
            updates.append(Update(client.cid, rnd.number, result.state.flat, client.executor.num_samples(client.cid), loss, client.cid, NO_EXTRAS, version))
        rnd.received_ahead(updates, float(sent.max()))
