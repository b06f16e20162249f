"""What the synchronous and asynchronous protocols share: the aggregation policy for the work a failed client owes.

Once the server declares a client failed (heartbeat detection), ``recovery.aggregation``
says what becomes of the work it owes: wait for it (for ever, or up to a deadline), or
drop it; the synchronous protocol can also redistribute the client's data.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from fedsim.fl.round import Key, Round

if TYPE_CHECKING:
    from fedsim.fl.server import Server


class ServerProtocol:
    """Base of a server's protocol: the open tasks it is waiting on, and what a detected failure does to them."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def open_rounds(self) -> list[Round]:
        """The rounds (or dispatched tasks) the server still waits on."""
        raise NotImplementedError

    def redistribute(self, rnd: Round, origin: int) -> None:
        """Hand ``origin``'s data to others (only a synchronous round can)."""

    def on_detected(self, cid: int) -> None:
        """The detector declared ``cid`` failed: apply the aggregation policy to what it owes."""
        for rnd in self.open_rounds():
            self.handle_failure(rnd, cid)

    def handle_failure(self, rnd: Round, cid: int) -> None:
        """Apply the aggregation policy to the work ``cid`` owes in ``rnd``."""
        s = self.server
        on_failure = s.rules.on_failure
        for key in sorted(k for k in rnd.waiting if k[0] == cid):
            if on_failure.redistribute and key[0] == key[1]:
                self.redistribute(rnd, key[1])
            if on_failure.wait_s == 0:
                rnd.give_up(key)
            elif math.isfinite(on_failure.wait_s):
                s.env.process(self.give_up_later(rnd, key, on_failure.wait_s))
        if not any(k[0] == cid for k in rnd.wanted):
            s.clients[cid].cancel(rnd)

    def give_up_later(self, rnd: Round, key: Key, after_s: float):
        """SimPy process: stop waiting for ``key`` after ``after_s`` unless it arrived."""
        yield self.server.env.timeout(after_s)
        if key in rnd.waiting and not rnd.closed:
            rnd.give_up(key)
            self.server.clients[key[0]].cancel(rnd)

    def close(self, rnd: Round) -> None:
        """Stop accepting updates for ``rnd`` and cancel work still running for it."""
        rnd.closed = True
        rnd.on_dropout = None  # it refers back to rnd: let reference counting free the round and its updates
        for cid in sorted({k[0] for k in rnd.waiting}):
            self.server.clients[cid].cancel(rnd)

    def abandon(self) -> None:
        """The server failed: everything open is lost."""
        for rnd in self.open_rounds():
            if not rnd.closed:
                self.close(rnd)
