"""The YAML → typed-config step and the argument list fedsim hands to hydra."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.cli import main
from fedsim.compose import REPO, hydra_argv, is_override, search_path
from fedsim.errors import FedsimError

EXAMPLE_CONF = REPO / "examples" / "own_problem" / "conf"


def test_overrides_are_told_from_flags_and_their_values():
    assert [a for a in ["-m", "a.b=1", "--cfg", "job", "--config-dir=x", "c=2,3"] if is_override(a)] == ["a.b=1", "c=2,3"]


def test_added_overrides_join_the_users_after_the_flags():
    argv = hydra_argv(["a=1", "--cfg", "job", "-m", "b=2"], "hydra.searchpath=[x]")
    assert argv == ["--cfg", "job", "-m", "a=1", "b=2", "hydra.searchpath=[x]"]


@pytest.mark.parametrize("args", [["data.num_clients=3", "--cfg", "job"], ["--cfg", "job", "data.num_clients=3"]])
def test_a_flag_may_come_before_or_after_the_overrides(args, capsys):
    main(args)
    assert "num_clients: 3" in capsys.readouterr().out


@pytest.mark.parametrize("flag", [["--config-dir", "examples/own_problem/conf"], ["--config-dir=examples/own_problem/conf"], ["-cd", "examples/own_problem/conf"]])
def test_a_config_dir_joins_fedsims_searchpath(flag, monkeypatch):
    monkeypatch.chdir(REPO)  # a relative folder is the user's working directory's
    assert search_path(["data=waves", *flag]) == f"hydra.searchpath=[file://{REPO},file://{EXAMPLE_CONF}]"


def test_a_users_own_searchpath_is_kept():
    assert search_path(["hydra.searchpath=[file:///a,pkg://b.conf]"]) == f"hydra.searchpath=[file://{REPO},file:///a,pkg://b.conf]"


def test_a_missing_config_dir_is_one_line(tmp_path: Path):
    with pytest.raises(FedsimError, match="--config-dir .*nowhere is not a directory"):
        search_path(["--config-dir", str(tmp_path / "nowhere")])


@pytest.mark.parametrize("where", [["--config-dir", str(EXAMPLE_CONF)], [f"hydra.searchpath=[file://{EXAMPLE_CONF}]"]])
def test_groups_next_to_a_users_code_compose(where, capsys):
    """The pre-flight check and the job both find the user's groups (conf/ keeps fedsim's)."""
    main([*where, "model=seqconv", "strategy=trimmed_mean", "--cfg", "job"])
    out = capsys.readouterr().out
    assert "_target_: own_problem.model.SeqConvNet" in out and "trim: 0.25" in out
