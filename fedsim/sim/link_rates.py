"""Each client's own link: latency and rates, drawn from a spread or read from a bandwidth trace.

Heterogeneity is a property of the fleet, not of the method: the draws come from the
``link`` streams of the run seed and a trace is fixed data, so two methods run with the
same seed see the same links (paired comparisons). A trace is a CSV with the columns
``client,time,down_mbps,up_mbps`` (the shape of FedScale's device traces): from ``time``
(virtual seconds) on, that trace client's links run at those rates; before its first
row, at its first row's rates. Simulated client ``i`` follows trace client ``ids[i mod K]``
(the K trace ids in ascending order), so a short trace serves a large fleet.
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedsim.errors import FedsimError
from fedsim.sim.compute import draw_speeds

TRACE_COLUMNS = ("client", "time", "down_mbps", "up_mbps")


@dataclass(frozen=True)
class RateSchedule:
    """A piecewise-constant rate: ``rates[k]`` bits/s from ``times[k]`` on (and ``rates[0]`` before ``times[0]``)."""

    times: tuple[float, ...]
    rates: tuple[float, ...]

    def rate_at(self, t: float) -> float:
        """Bits per second at virtual time ``t``."""
        return self.rates[max(bisect_right(self.times, t) - 1, 0)]

    def next_change(self, t: float) -> float:
        """The first rate change after ``t`` (∞ if none)."""
        k = bisect_right(self.times, t)
        return self.times[k] if k < len(self.times) else math.inf

    def finish(self, start: float, bits: float) -> float:
        """When ``bits`` sent from ``start`` on, at this rate, have all crossed."""
        t, left = start, bits
        k = max(bisect_right(self.times, t) - 1, 0)
        while True:
            end = self.times[k + 1] if k + 1 < len(self.times) else math.inf
            if left <= self.rates[k] * (end - t):
                return t + left / self.rates[k]
            left -= self.rates[k] * (end - t)
            t, k = end, k + 1


@dataclass(frozen=True)
class ClientLinks:
    """Per-client latency (s) and rates (bits/s); from a trace, rates change over time."""

    latency_s: np.ndarray
    down_bps: np.ndarray
    up_bps: np.ndarray
    down_schedules: tuple[RateSchedule, ...] = ()  # from a trace: client i follows schedule i mod len
    up_schedules: tuple[RateSchedule, ...] = ()

    def schedules(self, cid: int) -> tuple[RateSchedule | None, RateSchedule | None]:
        """Client ``cid``'s (down, up) rate schedules, or ``(None, None)`` for constant rates."""
        if not self.down_schedules:
            return None, None
        k = cid % len(self.down_schedules)
        return self.down_schedules[k], self.up_schedules[k]


def client_links(
    n: int,
    *,
    latency_s: float,
    down_bps: float,
    up_bps: float,
    spread: float,
    stream: Callable[[int], np.random.Generator],
    trace: Path | None = None,
) -> ClientLinks | None:
    """Each client's link: the common values scaled by lognormal factors, or its rates from a trace.

    With a trace the rates come from the trace and ``spread`` scales only the latencies.

    ``stream(k)`` gives the generator of draw ``k`` (0 latency, 1 down, 2 up); each is
    drawn for all clients at once, so client ``i``'s link does not depend on the fleet
    size. ``None`` when every client has the same constant link.
    """
    if spread == 0 and trace is None:
        return None
    factors = [draw_speeds(stream(k), n, "lognormal" if spread > 0 else "fixed", spread) for k in range(3)]  # mean-one factors, as compute speeds
    down, up = read_trace(trace) if trace is not None else ((), ())
    return ClientLinks(latency_s * factors[0], down_bps * factors[1], up_bps * factors[2], down, up)


def read_trace(path: Path) -> tuple[tuple[RateSchedule, ...], tuple[RateSchedule, ...]]:
    """(down, up) rate schedules, one per trace client in ascending id order, from a ``client,time,down_mbps,up_mbps`` CSV."""
    path = Path(path)
    if not path.is_file():
        raise FedsimError(f"network.trace={str(path)!r}: no such file; give a CSV with columns {','.join(TRACE_COLUMNS)}")
    rows: dict[int, dict[float, tuple[float, float, int]]] = {}
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if sorted(header) != sorted(TRACE_COLUMNS):
            raise FedsimError(f"{path}:1: header {','.join(header) or '(empty)'}; expected the columns {','.join(TRACE_COLUMNS)}")
        col = {name: header.index(name) for name in TRACE_COLUMNS}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            client, time, down, up = _parse_row(path, line, row, col)
            seen = rows.setdefault(client, {})
            if time in seen:
                raise FedsimError(f"{path}:{line}: client {client} already has a row at time {time:g} (line {seen[time][2]}); keep one")
            seen[time] = (down * 1e6, up * 1e6, line)
    if not rows:
        raise FedsimError(f"{path}: no data rows; add rows {','.join(TRACE_COLUMNS)}")
    down_sched, up_sched = [], []
    for client in sorted(rows):
        times = sorted(rows[client])
        down_sched.append(RateSchedule(tuple(times), tuple(rows[client][t][0] for t in times)))
        up_sched.append(RateSchedule(tuple(times), tuple(rows[client][t][1] for t in times)))
    return tuple(down_sched), tuple(up_sched)


def _parse_row(path: Path, line: int, row: list[str], col: dict[str, int]) -> tuple[int, float, float, float]:
    """One trace row, checked: a client id ≥ 0, a finite time ≥ 0, rates > 0."""
    if len(row) != len(col):
        raise FedsimError(f"{path}:{line}: {len(row)} fields, expected {len(col)} ({','.join(TRACE_COLUMNS)})")
    try:
        client = int(row[col["client"]])
        time, down, up = (float(row[col[k]]) for k in ("time", "down_mbps", "up_mbps"))
    except ValueError:
        raise FedsimError(f"{path}:{line}: {','.join(row)!r} is not numbers; client is an integer, the rest decimals") from None
    if client < 0 or not (math.isfinite(time) and time >= 0):
        raise FedsimError(f"{path}:{line}: client must be ≥ 0 and time a finite number ≥ 0 (got {client}, {time:g})")
    if not (math.isfinite(down) and math.isfinite(up) and down > 0 and up > 0):
        raise FedsimError(f"{path}:{line}: down_mbps and up_mbps must be finite and > 0 (got {down:g}, {up:g})")
    return client, time, down, up
