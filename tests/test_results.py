"""Run outputs: atomic writes, and the one rule for "this run is done"."""

from __future__ import annotations

import pytest

from fedsim.results import atomic_write, config_key, is_done

CFG = "run:\n  max_rounds: 3\n  resume: false\n  snapshot_every_s: 30.0\n  keep_snapshots: 2\nseed: 0\n"


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "rounds.csv"
    path.write_text("old\n")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rounds.csv"]


def test_is_done_needs_a_summary_and_the_same_config(tmp_path):
    assert not is_done(tmp_path, CFG)
    (tmp_path / "config.yaml").write_text(CFG)
    assert not is_done(tmp_path, CFG)  # started, never finished
    (tmp_path / "summary.json").write_text("{}")
    assert is_done(tmp_path, CFG)
    assert not is_done(tmp_path, CFG.replace("seed: 0", "seed: 1"))
    assert not is_done(tmp_path, CFG.replace("max_rounds: 3", "max_rounds: 4"))


def test_how_a_run_is_run_does_not_change_what_it_computes(tmp_path):
    """A sweep re-run with run.resume=true, or other snapshot settings, finds its finished jobs done."""
    other = CFG.replace("resume: false", "resume: true").replace("snapshot_every_s: 30.0", "snapshot_every_s: 5.0")
    assert config_key(other) == config_key(CFG)
    (tmp_path / "config.yaml").write_text(CFG)
    (tmp_path / "summary.json").write_text("{}")
    assert is_done(tmp_path, other)
