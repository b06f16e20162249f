"""Max-min fair sharing of one link among flows that each have their own rate cap.

A transfer through the server is limited by its client's own link (its *cap*) and by
its share of the server's link. Max-min fairness (water-filling): raise every flow's
rate together; a flow stops rising at its cap, and the capacity it leaves unused goes
to the others. So flows whose cap is below the water *level* run at their cap and
the rest run at the level ``(capacity − Σ caps below it) ÷ (flows above it)``.

:func:`max_min_rates` is the allocation for a set of caps; :func:`fluid_finish_times`
plays a whole fluid schedule from it (the reference the study's analytic curves and the
tests use). :class:`FairShare` keeps the same allocation up to date as flows start,
end and are cut, in O(log k) per change for k active flows, so a server link with
100,000 transfers in flight stays cheap. Nothing here knows about SimPy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

REL_TOL = 1e-9  # a flow is finished when less than this share of its bits is left (rounding of the clocks)


def max_min_rates(capacity: float, caps: Sequence[float] | np.ndarray) -> np.ndarray:
    """Max-min fair rates of flows with rate ``caps`` sharing a link of ``capacity`` (same units).

    In ascending cap order, the level left for the flows from the k-th on is
    ``(capacity − Σ smaller caps) ÷ (n − k)``; the first flow whose cap exceeds it and
    every later one run at that level, the earlier ones at their caps.
    """
    caps = np.asarray(caps, dtype=float)
    if caps.sum() <= capacity:
        return caps.copy()
    ordered = np.sort(caps)
    below = np.concatenate(([0.0], np.cumsum(ordered)[:-1]))
    levels = (capacity - below) / (len(caps) - np.arange(len(caps)))
    over = ordered > levels
    if not over.any():  # Σ caps exceeds capacity only by rounding
        return caps.copy()
    return np.minimum(caps, levels[int(np.argmax(over))])


def fluid_finish_times(
    starts: Sequence[float] | np.ndarray, bits: Sequence[float] | np.ndarray, caps: Sequence[float] | np.ndarray, capacity: float
) -> np.ndarray:
    """When each flow finishes if flow ``i`` brings ``bits[i]`` at ``starts[i]`` and rates are always max-min fair.

    Event by event (a start or a finish), O(k² log k) for k flows: the reference model, not
    the engine's scheduler.
    """
    starts, size, caps = (np.asarray(a, dtype=float) for a in (starts, bits, caps))
    left = size.copy()
    done = np.full(len(starts), np.nan)
    t = float(starts.min()) if len(starts) else 0.0
    while (waiting := np.isnan(done)).any():
        active = np.flatnonzero(waiting & (starts <= t))
        later = starts[waiting & (starts > t)]
        t_start = float(later.min()) if len(later) else math.inf
        if not len(active):
            t = t_start
            continue
        rates = max_min_rates(capacity, caps[active])
        ends = left[active] / rates
        dt = float(ends.min())
        if t_start - t < dt:
            dt, t = t_start - t, t_start
        else:
            t += dt
        left[active] -= rates * dt
        done[active[(ends <= dt) | (left[active] <= REL_TOL * size[active])]] = t
    return done


@dataclass
class _Flow:
    size: float  # bits when the flow started (for the finishing tolerance)
    cap: float  # bits/s the client's own link allows
    bottlenecked: bool = True  # runs at the level (else at its cap)
    key: float = 0.0  # bottlenecked: finish tag on the virtual clock; capped: finish time
    stamp: int = -1  # placement stamp; heap entries with another stamp are stale


class FairShare:
    """The max-min allocation of one link, updated incrementally as flows come and go.

    Capped flows keep an absolute finish time. Bottlenecked flows all run at the level,
    so they advance together on one virtual clock (bits served to each since the link
    was last without bottlenecked flows) and each keeps a finish *tag* on it. A change
    re-levels with heap moves between the two classes; no pass over all flows.
    """

    def __init__(self, capacity: float) -> None:
        if not capacity > 0:
            raise ValueError(f"capacity must be > 0 (got {capacity})")
        self.capacity = float(capacity)
        self.now = 0.0
        self.virtual = 0.0
        self.capped_sum = 0.0  # Σ caps of capped flows
        self.counts = [0, 0]  # [capped, bottlenecked]
        self._flows: dict[int, _Flow] = {}
        self._stamp = 0
        # (key, fid, stamp) heaps: bottlenecked by cap and by tag; capped by −cap and by finish time
        self._heaps: dict[str, list[tuple[float, int, int]]] = {"b_cap": [], "b_end": [], "c_cap": [], "c_end": []}

    def __len__(self) -> int:
        return len(self._flows)

    @property
    def level(self) -> float:
        """The rate of each bottlenecked flow (∞ when there is none and capacity is left)."""
        if self.counts[1]:
            return (self.capacity - self.capped_sum) / self.counts[1]
        return math.inf if self.capped_sum <= self.capacity else -math.inf

    def rates(self) -> dict[int, float]:
        """Every active flow's current rate."""
        level = self.level
        return {fid: level if f.bottlenecked else f.cap for fid, f in self._flows.items()}

    def add(self, now: float, fid: int, bits: float, cap: float) -> None:
        """A flow of ``bits`` starts at ``now``, limited to ``cap`` by its own link."""
        if not cap > 0:
            raise ValueError(f"flow {fid}: cap must be > 0 (got {cap})")
        self._advance(now)
        flow = self._flows[fid] = _Flow(size=float(bits), cap=float(cap))
        self._place(fid, flow, float(bits), bottlenecked=True)
        self._rebalance()

    def remove(self, now: float, fid: int) -> None:
        """The flow is cut at ``now`` (its link failed, or its sender gave up); its share goes to the others."""
        self._advance(now)
        self._unplace(self._flows.pop(fid))
        self._rebalance()

    def set_cap(self, now: float, fid: int, cap: float) -> None:
        """The flow's own link changed rate at ``now``."""
        if not cap > 0:
            raise ValueError(f"flow {fid}: cap must be > 0 (got {cap})")
        self._advance(now)
        flow = self._flows[fid]
        left = self._left(flow)
        self._unplace(flow)
        flow.cap = float(cap)
        self._place(fid, flow, left, bottlenecked=True)
        self._rebalance()

    def next_finish(self) -> float:
        """When the next flow finishes at the current rates (∞ when idle)."""
        t = math.inf
        if (top := self._top("c_end")) is not None:
            t = top[0]
        if (top := self._top("b_end")) is not None:
            t = min(t, self.now + (top[0] - self.virtual) / self.level)
        return t

    def pop_finished(self, now: float) -> list[int]:
        """Advance to ``now`` and remove the flows that have finished; returns their ids, ascending."""
        self._advance(now)
        done: list[int] = []
        for name in ("b_end", "c_end"):
            while (top := self._top(name)) is not None and self._finished(self._flows[top[1]]):
                heapq.heappop(self._heaps[name])
                done.append(top[1])
        for fid in done:
            self._unplace(self._flows.pop(fid))
        self._rebalance()
        return sorted(done)

    # --- internals ------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"time went back: {now} < {self.now}")
        if self.counts[1]:
            self.virtual += self.level * (now - self.now)
        self.now = now

    def _left(self, flow: _Flow) -> float:
        return flow.key - self.virtual if flow.bottlenecked else (flow.key - self.now) * flow.cap

    def _finished(self, flow: _Flow) -> bool:
        if not flow.bottlenecked:
            return flow.key <= self.now or self._left(flow) <= REL_TOL * flow.size
        left = self._left(flow)
        return left <= REL_TOL * flow.size or self.now + left / self.level <= self.now

    def _place(self, fid: int, flow: _Flow, left: float, *, bottlenecked: bool) -> None:
        self._stamp += 1
        flow.stamp, flow.bottlenecked = self._stamp, bottlenecked
        if bottlenecked:
            flow.key = self.virtual + left
            heapq.heappush(self._heaps["b_cap"], (flow.cap, fid, flow.stamp))
            heapq.heappush(self._heaps["b_end"], (flow.key, fid, flow.stamp))
        else:
            flow.key = self.now + left / flow.cap
            self.capped_sum += flow.cap
            heapq.heappush(self._heaps["c_cap"], (-flow.cap, fid, flow.stamp))
            heapq.heappush(self._heaps["c_end"], (flow.key, fid, flow.stamp))
        self.counts[bottlenecked] += 1

    def _unplace(self, flow: _Flow) -> None:
        self.counts[flow.bottlenecked] -= 1
        if not flow.bottlenecked:
            self.capped_sum -= flow.cap
        flow.stamp = -1

    def _move(self, name: str, to_bottlenecked: bool) -> None:
        _, fid, _ = heapq.heappop(self._heaps[name])
        flow = self._flows[fid]
        left = self._left(flow)
        self._unplace(flow)
        self._place(fid, flow, left, bottlenecked=to_bottlenecked)

    def _rebalance(self) -> None:
        """Move flows between capped and bottlenecked until every cap is on the right side of the level.

        Each move raises the level, so a flow moves at most twice and the loop ends at the
        max-min allocation.
        """
        while True:
            level = self.level
            if (top := self._top("b_cap")) is not None and top[0] < level:
                self._move("b_cap", to_bottlenecked=False)
            elif (top := self._top("c_cap")) is not None and -top[0] > level:
                self._move("c_cap", to_bottlenecked=True)
            else:
                break
        if not self.counts[1]:
            self.virtual = 0.0  # no tags to keep: restart the virtual clock (keeps it small)
        if not self.counts[0]:
            self.capped_sum = 0.0  # drop accumulated rounding
        if sum(map(len, self._heaps.values())) > 8 * len(self._flows) + 64:
            self._compact()

    def _top(self, name: str) -> tuple[float, int, int] | None:
        heap = self._heaps[name]
        while heap:
            _, fid, stamp = heap[0]
            flow = self._flows.get(fid)
            if flow is not None and flow.stamp == stamp:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _compact(self) -> None:
        """Rebuild the heaps without their stale entries."""
        for heap in self._heaps.values():
            heap[:] = [e for e in heap if (f := self._flows.get(e[1])) is not None and f.stamp == e[2]]
            heapq.heapify(heap)
