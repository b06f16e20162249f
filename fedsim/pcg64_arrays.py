"""numpy PCG64 streams drawn outside numpy: many at once as arrays, or one in Python integers.

A fleet's idle failure clocks each draw from their own stream, one draw at a time, so
a million clients catching up cost a million Python loops. Here every stream's 128-bit
state is two ``uint64`` columns (high, low), numpy's PCG64 step and XSL-RR output run on
the columns, and numpy's exponential ziggurat turns each output into a draw. The draws
are numpy's own, bit for bit (tests compare them with ``Generator.standard_exponential``
on many streams): a stream drawn here and then handed back to a
:class:`numpy.random.Generator` goes on as if it had never left.

The ziggurat takes its first try 98.9 % of the time; the rest need more draws from the
same stream, in an order that depends on the values. Those are not taken here: the
draw comes back marked, its stream not advanced, for the caller to draw one by one.
numpy keeps its ziggurat tables in C, so they are read off numpy's own draws once
(:func:`ziggurat`), which keeps this exact for whatever numpy is installed.

A single stream that draws once and is put away again (a sleeping failure clock taking
one step) pays more to hand its state to a numpy generator and read it back than to
draw: :class:`Stream` is that stream in Python integers, the same step and ziggurat, and
numpy itself for the draws the ziggurat does not take at its first try.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

U64 = NDArray[np.uint64]
MULT = (2549297995355413924 << 64) | 4865540595714422341  # numpy's PCG64 multiplier
MASK64 = (1 << 64) - 1
MASK128 = (1 << 128) - 1
_M32 = np.uint64(0xFFFFFFFF)
_MULT_HI, _MULT_LO = np.uint64(MULT >> 64), np.uint64(MULT & MASK64)
_MULT_LO_HALVES = (np.uint64(MULT & 0xFFFFFFFF), np.uint64((MULT >> 32) & 0xFFFFFFFF))
_ONE, _SHIFT = np.uint64(1), np.uint64(32)


class States(NamedTuple):
    """PCG64 states of many streams: the 128-bit state and increment, each as (high, low) ``uint64`` columns."""

    hi: U64
    lo: U64
    inc_hi: U64
    inc_lo: U64

    def take(self, where: NDArray) -> States:
        """The states of the streams at ``where`` (an index or mask), copied."""
        return States(*(column[where] for column in self))

    def put(self, where: NDArray, other: States) -> None:
        """Set the streams at ``where`` to ``other``'s states."""
        for column, value in zip(self, other):
            column[where] = value


def _mulhi(a: U64, b_halves: tuple[np.uint64, np.uint64]) -> U64:
    """The high 64 bits of each ``a × b`` (b given as its low and high 32-bit halves)."""
    a0, a1 = a & _M32, a >> _SHIFT
    b0, b1 = b_halves
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _SHIFT) + (p01 & _M32) + (p10 & _M32)
    return p11 + (p01 >> _SHIFT) + (p10 >> _SHIFT) + (mid >> _SHIFT)


def _step(hi: U64, lo: U64, inc_hi: U64, inc_lo: U64) -> tuple[U64, U64]:
    """PCG64's LCG step, state·MULT + inc mod 2¹²⁸, on (high, low) columns."""
    high = _mulhi(lo, _MULT_LO_HALVES) + lo * _MULT_HI + hi * _MULT_LO
    low = lo * _MULT_LO
    new_lo = low + inc_lo
    return high + inc_hi + (new_lo < low).astype(np.uint64), new_lo


def seeded(words: U64) -> States:
    """The states numpy's ``PCG64`` starts from, given its seed sequence's four words per row (as ``generate_state(4,
    np.uint64)`` gives them: the initial state's high and low word, the stream selector's high and low word)."""
    words = np.asarray(words, dtype=np.uint64)
    inc_hi = (words[:, 2] << _ONE) | (words[:, 3] >> np.uint64(63))
    inc_lo = (words[:, 3] << _ONE) | _ONE
    lo = inc_lo + words[:, 1]  # the state after one step from 0 is the increment; the initial state is added
    hi = inc_hi + words[:, 0] + (lo < inc_lo).astype(np.uint64)
    return States(*_step(hi, lo, inc_hi, inc_lo), inc_hi, inc_lo)


class Ziggurat(NamedTuple):
    """numpy's exponential ziggurat tables: a draw's 8-bit strip ``idx`` and 53-bit ``ri`` give ``ri·width[idx]``
    at the first try when ``ri < accept[idx]``."""

    width: NDArray[np.float64]
    accept: NDArray[np.uint64]


@cache
def ziggurat() -> Ziggurat:
    """numpy's tables, read off its draws: a PCG64 made to output a chosen word shows which words it accepts at
    the first try (the draw takes that one word) and what it makes of them (with ``ri = 1`` the draw is the
    strip's width itself)."""
    g = np.random.Generator(np.random.PCG64())
    inverse = pow(MULT, -1, 1 << 128)

    def first_try(idx: int, ri: int) -> tuple[bool, float]:
        after = (ri << 8 | idx) << 3  # the state after the step: high word 0, so the output is the low word
        g.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": (after - 1) * inverse % (1 << 128), "inc": 1},
                                 "has_uint32": 0, "uinteger": 0}  # fmt: skip
        x = g.standard_exponential()
        return g.bit_generator.state["state"]["state"] == after, x

    width, accept = np.zeros(256), np.zeros(256, dtype=np.uint64)
    for idx in range(256):
        low, high = 0, 1 << 53  # the first rejected ri lies in [low, high]
        while low < high:
            mid = (low + high) // 2
            low, high = (mid + 1, high) if first_try(idx, mid)[0] else (low, mid)
        accept[idx] = low
        if low > 1:
            width[idx] = first_try(idx, 1)[1]
    return Ziggurat(width, accept)


def standard_exponentials(states: States) -> tuple[NDArray[np.float64], NDArray[np.bool_], States]:
    """One standard exponential from each stream: ``(draws, taken, states after)``.

    Where ``taken`` is False the ziggurat needs more of that stream: its draw is not
    valid and its state after must not be kept (draw it with numpy from the state before)."""
    hi, lo = _step(*states)
    x = hi ^ lo
    rot = hi >> np.uint64(58)
    out = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
    table = ziggurat()
    ri = out >> np.uint64(3)
    idx = (ri & np.uint64(0xFF)).astype(np.intp)
    ri >>= np.uint64(8)
    return ri.astype(np.float64) * table.width[idx], ri < table.accept[idx], States(hi, lo, states.inc_hi, states.inc_lo)


Words = tuple[int, int, int, int]  # a stream's state and increment, high and low 64-bit words each


class Stream:
    """One PCG64 stream, at ``words``, drawn in Python integers: numpy's standard exponentials, exponentials and
    Weibulls, bit for bit (numpy scales the one standard exponential, or takes its power ``1/a``).

    A draw that the ziggurat does not take at its first try is numpy's: ``numpy_at(words)``
    lends a generator set at the stream's position, and the stream goes on from where
    that draw left it."""

    __slots__ = ("state", "inc", "numpy_at")

    def __init__(self, words: Words, numpy_at: Callable[[Words], np.random.Generator]) -> None:
        hi, lo, inc_hi, inc_lo = words
        self.state, self.inc, self.numpy_at = hi << 64 | lo, inc_hi << 64 | inc_lo, numpy_at

    @property
    def words(self) -> Words:
        """Where the stream stands (as :class:`States` keeps a row)."""
        return self.state >> 64, self.state & MASK64, self.inc >> 64, self.inc & MASK64

    def standard_exponential(self) -> float:
        state = (self.state * MULT + self.inc) & MASK128
        hi, lo = state >> 64, state & MASK64
        x, rot = hi ^ lo, hi >> 58
        ri = ((x >> rot) | (x << (64 - rot) & MASK64)) >> 3
        idx, ri = ri & 0xFF, ri >> 8
        table = _tables()
        if ri < table[1][idx]:
            self.state = state
            return ri * table[0][idx]
        g = self.numpy_at(self.words)
        out = g.standard_exponential()
        self.state = g.bit_generator.state["state"]["state"]
        return out

    def exponential(self, scale: float = 1.0) -> float:
        return scale * self.standard_exponential()

    def weibull(self, a: float) -> float:
        return 0.0 if a == 0.0 else math.pow(self.standard_exponential(), 1.0 / a)


@cache
def _tables() -> tuple[list[float], list[int]]:
    """:func:`ziggurat`'s tables as Python lists (a draw in Python reads them one entry at a time)."""
    table = ziggurat()
    return table.width.tolist(), table.accept.tolist()
