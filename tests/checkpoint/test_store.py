"""Checkpoint storage: round trip, atomic files, corruption detected in one line."""

from __future__ import annotations

import pytest
import torch

from fedsim.checkpoint.store import CheckpointCorrupt, DiskStore, MemoryStore


def payload():
    return {"round": 3, "step": 7, "flat": torch.arange(10.0), "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}}


@pytest.mark.parametrize("make", [lambda p: MemoryStore(), lambda p: DiskStore(p)])
def test_round_trip(tmp_path, make):
    store = make(tmp_path)
    assert store.load("a") is None
    nbytes = store.save("a", payload())
    back = store.load("a")
    assert nbytes > 0 and back["step"] == 7 and torch.equal(back["flat"], torch.arange(10.0))
    store.drop("a")
    assert store.load("a") is None


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "garbage", "header", "no_newline"])
def test_damaged_file_raises_one_line(tmp_path, damage):
    store = DiskStore(tmp_path)
    store.save("c", payload())
    path = store.path("c")
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "bitflip":
        blob[-10] ^= 0x80
    elif damage == "header":  # the checksum line itself
        blob[3] ^= 0x01
    elif damage == "no_newline":  # a header that never ends
        blob = bytearray(b"a" * 200)
    else:
        blob = bytearray(b"not a checkpoint")
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointCorrupt) as err:
        store.load("c")
    assert "'c'" in str(err.value) and "\n" not in str(err.value)


def test_a_file_on_disk_is_the_checksum_line_then_torch_saves_bytes(tmp_path):
    import hashlib
    import io

    from fedsim.checkpoint.store import serialize

    nbytes = DiskStore(tmp_path).save("k", payload())  # torch.save into the file, after the line the checksum fills in
    header, blob = (tmp_path / "k.ckpt").read_bytes().split(b"\n", 1)
    assert header == hashlib.sha256(blob).hexdigest().encode() and nbytes == len(blob)
    assert blob == serialize(payload())  # the bytes torch.save writes anywhere: the format of a file is unchanged
    assert torch.load(io.BytesIO(blob), weights_only=True)["step"] == 7
    big = {"flat": torch.arange(6_000_000, dtype=torch.float32)}  # 24 MB: checksummed over several reads
    DiskStore(tmp_path).save("big", big)
    assert torch.equal(DiskStore(tmp_path).load("big")["flat"], big["flat"])


def test_disk_writes_leave_no_temporary_files(tmp_path):
    store = DiskStore(tmp_path)
    for i in range(3):
        store.save("k", payload() | {"step": i})
    assert [p.name for p in tmp_path.iterdir()] == ["k.ckpt"]
    assert store.load("k")["step"] == 2


def test_loading_refuses_pickled_code(tmp_path):
    import hashlib
    import io
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    pickle.dump({"x": Evil()}, buf, protocol=2)
    blob = buf.getvalue()
    (tmp_path / "e.ckpt").write_bytes(hashlib.sha256(blob).hexdigest().encode() + b"\n" + blob)
    with pytest.raises(CheckpointCorrupt):
        DiskStore(tmp_path).load("e")
