"""by_category: each attack category on exactly one client, benign rows spread."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.data.partition import by_category


def test_each_attack_category_lives_on_one_client() -> None:
    cats = np.array(["normal"] * 60 + ["dos"] * 30 + ["probe"] * 20 + ["r2l"] * 5 + ["u2r"] * 2)
    parts = by_category(cats, 3, np.random.default_rng(0))
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(cats)))
    for kind in ("dos", "probe", "r2l", "u2r"):
        assert sum(bool((cats[p] == kind).any()) for p in parts) == 1
    assert [int((cats[p] == "normal").sum()) for p in parts] == [20, 20, 20]


def test_too_few_categories_without_benign_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="num_clients"):
        by_category(np.array(["a", "a", "b"]), 3, np.random.default_rng(0))
