"""The seeded streams of a whole fleet at once: ``rng(root, purpose, k)`` for every ``k``, without a loop.

:func:`fedsim.seeding.rng` builds a :class:`numpy.random.SeedSequence` per stream,
about 15 µs and 1 KB each: 15 s and a GiB for a million clients' failure clocks.
Here the SeedSequence arithmetic (O'Neill's ``seed_seq_fe``, as numpy implements it:
hash the entropy words into a pool of four, then hash the pool into the state
words) runs on numpy arrays, one column per entropy word and one row per stream, and
a :class:`numpy.random.PCG64` generator is made from a row only when a stream is
drawn from (about 1 µs). The draws are exactly those of ``rng(root, purpose, k)``
(tests compare them for many roots, purposes and keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from fedsim.seeding import purpose_key

POOL_SIZE = 4
INIT_A, MULT_A = 0x43B0D7E5, 0x931E8875
INIT_B, MULT_B = 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715
MASK32 = 0xFFFFFFFF
XSHIFT = np.uint32(16)


def _int_words(x: int) -> list[int]:
    """``x`` as little-endian 32-bit words (numpy's coercion of an int entropy value)."""
    if x < 0:
        raise ValueError(f"seed entropy must be non-negative, got {x}")
    words = [x & MASK32]
    while x := x >> 32:
        words.append(x & MASK32)
    return words


class _Hash:
    """The running multiplier of ``hashmix`` (the same for every row, so one Python int)."""

    def __init__(self, init: int, mult: int) -> None:
        self.const, self.mult = init, mult

    def mix(self, value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint32(self.const)
        self.const = (self.const * self.mult) & MASK32
        value = value * np.uint32(self.const)
        return value ^ (value >> XSHIFT)


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(MIX_MULT_L) * x - np.uint32(MIX_MULT_R) * y
    return result ^ (result >> XSHIFT)


def seed_words(root: int, purpose: str, keys: Sequence[np.ndarray], n_words: int = 4) -> np.ndarray:
    """``seed_sequence(root, purpose, *k).generate_state(n_words, np.uint64)`` for every row ``k`` of ``keys``.

    ``keys`` are equal-length integer columns with values in [0, 2³²) (one entropy word
    each, as client ids are); the result has one row of ``n_words`` uint64 per stream.
    """
    columns = [np.asarray(k, dtype=np.int64) for k in keys]
    n = len(columns[0]) if columns else 1
    if any(len(c) != n for c in columns):
        raise ValueError("key columns must have equal lengths")
    if any(len(c) and (c.min() < 0 or c.max() > MASK32) for c in columns):
        raise ValueError("keys must be in [0, 2**32)")
    entropy = [np.full(n, w, dtype=np.uint32) for w in [*_int_words(int(root)), purpose_key(purpose)]]
    entropy += [c.astype(np.uint32) for c in columns]
    with np.errstate(over="ignore"):
        h = _Hash(INIT_A, MULT_A)
        pool = [h.mix(entropy[i] if i < len(entropy) else np.zeros(n, dtype=np.uint32)) for i in range(POOL_SIZE)]
        for src in range(POOL_SIZE):
            for dst in range(POOL_SIZE):
                if src != dst:
                    pool[dst] = _mix(pool[dst], h.mix(pool[src]))
        for src in range(POOL_SIZE, len(entropy)):
            for dst in range(POOL_SIZE):
                pool[dst] = _mix(pool[dst], h.mix(entropy[src]))
        out = np.empty((n, 2 * n_words), dtype=np.uint32)
        h = _Hash(INIT_B, MULT_B)  # the state words: the pool hashed again, with the second constants
        for i in range(2 * n_words):
            out[:, i] = h.mix(pool[i % POOL_SIZE])
    return out[:, 0::2].astype(np.uint64) | (out[:, 1::2].astype(np.uint64) << np.uint64(32))


class _Words(ISeedSequence):
    """A seed sequence that has already been hashed: it hands PCG64 its four state words."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words != 4 or np.dtype(dtype) != np.uint64:
            raise ValueError("only PCG64's four 64-bit words are precomputed")
        return self.words


class Streams:
    """``rng(root, purpose, *k)`` for every row ``k`` of the key columns, made on demand."""

    def __init__(self, root: int, purpose: str, *keys: np.ndarray) -> None:
        self.words = seed_words(root, purpose, keys)

    def __len__(self) -> int:
        return len(self.words)

    def generator(self, index: int) -> np.random.Generator:
        """A fresh generator of stream ``index`` (the same draws as ``rng(root, purpose, *keys[index])``)."""
        return np.random.Generator(np.random.PCG64(_Words(self.words[index])))
