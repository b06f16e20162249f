"""Where each sleeping failure clock's stream stands between its draws, for a whole fleet.

A numpy generator is 0.7 KiB. A million idle clocks keep instead their stream's
position, four 64-bit words each (the PCG64 state and increment, high and low), in one
array, and draw from there: on the fleet's one numpy generator, lent at that position,
or in Python integers (:class:`~fedsim.pcg64_arrays.Stream`), or, many streams at once,
as arrays (:mod:`fedsim.pcg64_arrays`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedsim.pcg64_arrays import MASK64, States, Stream


class ParkedStreams:
    """The positions of ``size`` streams, by index, and the one generator lent to each in turn."""

    def __init__(self, size: int) -> None:
        self.positions = np.zeros((size, 4), dtype=np.uint64)  # each parked stream's state and increment, as words
        # (a PCG64 increment is odd: a row whose last word is 0 was never parked)
        self.states = States(*self.positions.T)  # the same, as columns
        self._bits = np.random.PCG64()
        self._generator = np.random.Generator(self._bits)  # lent to one stream at a time, at that stream's position
        self._state = {"bit_generator": "PCG64", "state": {"state": 0, "inc": 0}, "has_uint32": 0, "uinteger": 0}  # refilled by each lend

    def resume(self, index: int) -> np.random.Generator:
        """The fleet's generator, set where stream ``index`` was parked."""
        return self.lend(self.positions[index].tolist())

    def stream(self, index: int) -> Stream:
        """Stream ``index`` where it was parked, to draw from in Python integers."""
        return Stream(self.positions[index].tolist(), self.lend)

    def park(self, index: int, g: np.random.Generator | Stream) -> None:
        """Keep where ``g``'s stream stands as stream ``index``'s."""
        self.positions[index] = g.words if isinstance(g, Stream) else _words(g)

    def lend(self, words: Sequence[int]) -> np.random.Generator:
        """The fleet's generator, set to the stream whose state and increment are ``words`` (high and low each)."""
        hi, lo, inc_hi, inc_lo = words
        pcg = self._state["state"]  # one dictionary refilled: building one per lend was a fifth of its cost
        pcg["state"], pcg["inc"] = hi << 64 | lo, inc_hi << 64 | inc_lo
        self._bits.state = self._state
        return self._generator

    def draw_alone(self, states: States, rows: np.ndarray) -> np.ndarray:
        """One standard exponential from each stream at ``rows`` of ``states`` (advanced), drawn by numpy one by one:
        the few draws the ziggurat does not take at its first try."""
        out, after = [], []
        for words in zip(*(column[rows].tolist() for column in states)):  # the words read and written as columns
            out.append(self.lend(words).standard_exponential())
            after.append(self._bits.state["state"]["state"])  # the increment stays
        states.hi[rows], states.lo[rows] = [state >> 64 for state in after], [state & MASK64 for state in after]
        return np.array(out, dtype=np.float64)


def _words(g: np.random.Generator) -> tuple[int, int, int, int]:
    """Where ``g``'s stream stands: its state and increment, high and low words (the failure draws take 64 bits at a
    time, so no half-used word is lost)."""
    state = g.bit_generator.state
    assert not state["has_uint32"], "a 32-bit draw left half a word: the position would lose it"
    pcg = state["state"]
    return pcg["state"] >> 64, pcg["state"] & MASK64, pcg["inc"] >> 64, pcg["inc"] & MASK64
