"""Heartbeat failure detection: the server learns of a client's failure only from its silence.

Clients send a heartbeat every ``heartbeat_s`` while their node and uplink are up; the
server checks every ``heartbeat_s`` and declares a client failed after ``timeout_s`` of
silence, and alive again on its next heartbeat. What the server then does about the
work the client owes is the protocol's (:meth:`on_detected`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import simpy

from fedsim.fl.recovery import Detection
from fedsim.sim.recorder import Recorder


class Observed(Protocol):
    """What the detector reads of a client: whether it is up, and since when it is down (for the latency)."""

    up: bool
    failed_at: float


class FailureDetector:
    """The heartbeat table and the SimPy process that watches it."""

    def __init__(
        self,
        env: simpy.Environment,
        clients: Sequence[Observed],
        detection: Detection,
        recorder: Recorder,
        server_up: Callable[[], bool],
        on_detected: Callable[[int], None],
    ) -> None:
        self.env, self.clients, self.detection, self.recorder = env, clients, detection, recorder
        self.server_up = server_up  # a down server hears nothing and declares nothing
        self.on_detected = on_detected  # the protocol's policy for the work a failed client owes
        self.last_heartbeat = dict.fromkeys(range(len(clients)), 0.0)
        self.suspected: dict[int, float] = {}  # client -> when the server declared it failed
        env.process(self.watch())

    def heartbeat(self, cid: int, arrival: float) -> None:
        """A heartbeat from ``cid`` reaches the server at ``arrival``."""
        if self.server_up():
            self.last_heartbeat[cid] = max(self.last_heartbeat[cid], arrival)

    def forget_silence(self) -> None:
        """A restarted server starts every client's silence from now."""
        self.last_heartbeat = dict.fromkeys(self.last_heartbeat, self.env.now)

    def watch(self):
        """SimPy process: declare clients failed after ``timeout_s`` of silence, and alive again on a heartbeat."""
        while True:
            yield self.env.timeout(self.detection.heartbeat_s)
            if not self.server_up():
                continue
            now = self.env.now
            for cid, last in self.last_heartbeat.items():
                if cid not in self.suspected and now - last > self.detection.timeout_s:
                    self.suspected[cid] = now
                    client = self.clients[cid]
                    latency = now - client.failed_at if not client.up else float("nan")
                    self.recorder.event("detected", client=cid, value=latency)
                    self.on_detected(cid)
                elif cid in self.suspected and last > self.suspected[cid]:
                    del self.suspected[cid]
                    self.recorder.event("rejoined", client=cid)
