"""A fleet's streams computed at once are exactly the streams made one by one."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.seeding import rng, seed_sequence
from fedsim.streams import Streams, seed_words

ROOTS = [0, 1, 7, 2**31, 2**32 - 1, 2**32, 2**40 + 5, 2**63 + 3, 12345678901234567890]


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize("purpose", ["failure", "link-failure", "x"])
def test_seed_words_are_numpys_seed_sequence_state(root, purpose):
    keys = np.array([0, 1, 2, 1000, 999_999, 2**32 - 1])
    one = seed_words(root, purpose, [keys])
    two = seed_words(root, purpose, [keys, keys % 2])
    for i, k in enumerate(keys.tolist()):
        assert (one[i] == seed_sequence(root, purpose, k).generate_state(4, np.uint64)).all()
        assert (two[i] == seed_sequence(root, purpose, k, k % 2).generate_state(4, np.uint64)).all()
    assert (seed_words(root, purpose, [])[0] == seed_sequence(root, purpose).generate_state(4, np.uint64)).all()


def test_a_streams_generator_draws_what_rng_draws():
    streams = Streams(3, "failure", np.arange(50), np.arange(50) % 3)
    for i in range(50):
        a, b = streams.generator(i), rng(3, "failure", i, i % 3)
        assert a.weibull(1.5) == b.weibull(1.5) and a.exponential(2.0) == b.exponential(2.0)
        assert (a.random(7) == b.random(7)).all() and a.lognormal(0.1, 0.5) == b.lognormal(0.1, 0.5)


def test_keys_outside_one_word_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
        seed_words(0, "x", [np.array([2**32])])
    with pytest.raises(ValueError, match="equal lengths"):
        seed_words(0, "x", [np.arange(3), np.arange(4)])
