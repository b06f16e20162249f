"""Cache entries are keyed by content and options and written atomically."""

from __future__ import annotations

import numpy as np

from fedsim.data import cache


def test_second_call_hits_and_returns_equal_arrays(tmp_path) -> None:
    calls = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"a": np.arange(3), "s": np.array(["x", "yy"])}

    first, hit1 = cache.cached_arrays("k", build, tmp_path)
    second, hit2 = cache.cached_arrays("k", build, tmp_path)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    np.testing.assert_array_equal(first["s"], second["s"])
    assert [p.name for p in tmp_path.iterdir()] == ["k.npz"]  # no temporary left behind


def test_key_changes_with_content_and_options(tmp_path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"one")
    h1 = cache.file_sha256(f)
    f.write_bytes(b"two")
    h2 = cache.file_sha256(f)
    assert h1 != h2
    assert cache.cache_key("x", (h1,), {"n": 1}) != cache.cache_key("x", (h2,), {"n": 1})
    assert cache.cache_key("x", (h1,), {"n": 1}) != cache.cache_key("x", (h1,), {"n": 2})


def test_corrupt_entry_is_rebuilt(tmp_path) -> None:
    (tmp_path / "k.npz").write_bytes(b"garbage")
    arrays, hit = cache.cached_arrays("k", lambda: {"a": np.ones(2)}, tmp_path)
    assert not hit and arrays["a"].sum() == 2


def test_env_var_sets_default_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FEDSIM_CACHE", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path
