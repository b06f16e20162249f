"""Records of a run: one row per event, per round, per client-round.

Processes append plain dicts; tables are built once at the end. Virtual time
(``time_s``) and wall-clock time (``wall_s``) are separate columns, never mixed.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import simpy

EVENT_COLUMNS = ["time_s", "kind", "client", "round", "value"]


class Recorder:
    """Collects event, round and client rows during a simulation."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.events: list[tuple[float, str, int, int, float]] = []
        self.rounds: list[dict[str, object]] = []
        self.clients: list[dict[str, object]] = []
        self.client_evals: list[dict[str, object]] = []  # each client's model on its own test rows, per round
        self.diverged: list[tuple[int, int]] = []  # (training seed, step) of every update dropped as divergent
        self.counts: Counter[str] = Counter()  # events so far, by kind

    def event(self, kind: str, *, client: int = -1, round: int = -1, value: float = float("nan")) -> None:
        """Log a simulated event at the current virtual time (client -1 = the server)."""
        self.events.append((float(self.env.now), kind, client, round, float(value)))
        self.counts[kind] += 1

    def events_table(self) -> pd.DataFrame:
        """The event log, in the order events happened."""
        return pd.DataFrame(self.events, columns=EVENT_COLUMNS)

    def rounds_table(self) -> pd.DataFrame:
        """One row per completed round."""
        return pd.DataFrame(self.rounds)

    def clients_table(self) -> pd.DataFrame:
        """One row per client update received (when per-client metrics are on)."""
        return pd.DataFrame(self.clients)
