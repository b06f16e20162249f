"""Which snapshot a resume starts from: the newest of this config, never another config's or another format's."""

from __future__ import annotations

import pytest

from fedsim.checkpoint.store import DiskStore
from fedsim.errors import FedsimError
from fedsim.experiments.snapshots import latest
from fedsim.fl.replay import FORMAT


def _payload(round_: int, **changes) -> dict:
    payload = {"format": FORMAT, "config": "key", "round": round_, "global": None, "strategy": {}, "tables": '{"rounds": [], "client_evals": [], '
               '"diverged": [], "aggregations": []}', "clients": {}, "wall": [0.0, 0.0], "events": 0, "digest": ""}  # fmt: skip
    return payload | changes


def test_the_newest_snapshot_of_the_config_is_the_one_resumed(tmp_path):
    store = DiskStore(tmp_path)
    for r in (1, 2):
        store.save(f"snapshot-{r:06d}", _payload(r))
    (tmp_path / "snapshot-000003.ckpt").write_bytes(b"torn")  # a corrupt newest one is skipped
    assert latest(tmp_path, "key").round == 2
    assert latest(tmp_path / "none", "key") is None


@pytest.mark.parametrize("changes, words", [({"config": "other"}, "another config"), ({"format": None}, "another fedsim version")])
def test_a_snapshot_of_another_config_or_format_stops_with_one_line(tmp_path, changes, words):
    DiskStore(tmp_path).save("snapshot-000001", {k: v for k, v in _payload(1, **changes).items() if v is not None})
    with pytest.raises(FedsimError, match=words) as info:
        latest(tmp_path, "key")
    assert "\n" not in str(info.value) and "delete" in str(info.value)
