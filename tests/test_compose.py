"""The YAML → typed-config step and the argument list fedsim hands to hydra."""

from __future__ import annotations

import pytest

from fedsim.cli import main
from fedsim.compose import hydra_argv, is_override


def test_overrides_are_told_from_flags_and_their_values():
    assert [a for a in ["-m", "a.b=1", "--cfg", "job", "--config-dir=x", "c=2,3"] if is_override(a)] == ["a.b=1", "c=2,3"]


def test_added_overrides_join_the_users_after_the_flags():
    argv = hydra_argv(["a=1", "--cfg", "job", "-m", "b=2"], "hydra.searchpath=[x]")
    assert argv == ["--cfg", "job", "-m", "a=1", "b=2", "hydra.searchpath=[x]"]


@pytest.mark.parametrize("args", [["data.num_clients=3", "--cfg", "job"], ["--cfg", "job", "data.num_clients=3"]])
def test_a_flag_may_come_before_or_after_the_overrides(args, capsys):
    main(args)
    assert "num_clients: 3" in capsys.readouterr().out
