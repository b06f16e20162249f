"""PCG64 streams drawn outside numpy (many at once as arrays, or one in Python integers) give numpy's own draws and leave
each stream where numpy leaves it."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.pcg64_arrays import MASK64, States, Stream, seeded, standard_exponentials
from fedsim.streams import Streams


def state_of(g: np.random.Generator) -> tuple[int, int]:
    s = g.bit_generator.state["state"]
    return s["state"], s["inc"]


def as_ints(states: States, i: int) -> tuple[int, int]:
    hi, lo, inc_hi, inc_lo = (int(c[i]) for c in states)
    return hi << 64 | lo, inc_hi << 64 | inc_lo


@pytest.mark.parametrize("root", [0, 3, 2**40 + 5])
def test_seeded_states_are_where_numpys_pcg64_starts(root):
    streams = Streams(root, "failure", np.arange(300))
    states = seeded(streams.words)
    for i in range(300):
        assert as_ints(states, i) == state_of(streams.generator(i))


def test_draws_taken_at_the_first_try_are_numpys_and_the_others_are_flagged():
    # follow 1,500 numpy generators for 40 draws each: a taken draw must be numpy's value with numpy's state after it
    # (one 64-bit word used); an untaken one must be a draw that made numpy use more words
    n = 1500
    streams = Streams(11, "failure", np.arange(n))
    generators = [streams.generator(i) for i in range(n)]
    states = seeded(streams.words)
    taken_count = untaken_count = 0
    for _ in range(40):
        x, taken, after = standard_exponentials(states)
        for i, g in enumerate(generators):
            value = g.standard_exponential()
            if taken[i]:
                assert value == x[i] and state_of(g) == as_ints(after, i)
            else:
                assert state_of(g) != as_ints(after, i)
            state = state_of(g)[0]
            states.hi[i], states.lo[i] = state >> 64, state & MASK64
        taken_count += int(taken.sum())
        untaken_count += int((~taken).sum())
    # numpy takes about 98 % at the first try (2.2 % not, measured): ~1,320 untaken of 60,000, sd ~36
    assert untaken_count > 600 and taken_count > 0.95 * 40 * n


def test_one_stream_in_python_integers_draws_numpys_exponentials_and_weibulls():
    streams, lent = Streams(7, "failure", np.arange(300)), []
    fleet = np.random.Generator(np.random.PCG64())

    def numpy_at(words):  # as a fleet lends its one generator: set at the stream's position
        lent.append(words)
        fleet.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": words[0] << 64 | words[1], "inc": words[2] << 64 | words[3]},
                                     "has_uint32": 0, "uinteger": 0}  # fmt: skip
        return fleet

    for i in range(300):
        g = streams.generator(i)
        state, inc = state_of(g)
        stream = Stream((state >> 64, state & MASK64, inc >> 64, inc & MASK64), numpy_at)
        for k in range(60):
            draw = ("standard_exponential", (), "exponential", (2.5,), "weibull", (1.5,))
            name, args = draw[2 * (k % 3)], draw[2 * (k % 3) + 1]
            assert getattr(stream, name)(*args) == getattr(g, name)(*args) and (stream.state, stream.inc) == state_of(g)
        assert stream.words == (state_of(g)[0] >> 64, state_of(g)[0] & MASK64, inc >> 64, inc & MASK64)
    assert 300 < len(lent) < 500  # numpy drew those the ziggurat does not take at its first try: ~2.2 %, ~400 of 18,000, sd ~20
