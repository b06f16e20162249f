"""Run snapshots on disk: when they are written, which are kept, which one a resume starts from.

A snapshot (:class:`fedsim.fl.replay.Snapshot`) is written at a round boundary, at most
every ``run.snapshot_every_s`` wall seconds, as a checksummed file written atomically
(:class:`fedsim.checkpoint.store.DiskStore`) under ``<run dir>/snapshots/``; the last
``run.keep_snapshots`` are kept. Each carries a key of the resolved config (without the
settings that only say how to run it, :func:`fedsim.results.config_key`), so a
resume never continues another config's run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from fedsim.checkpoint.store import CheckpointCorrupt, DiskStore
from fedsim.errors import FedsimError
from fedsim.fl.replay import FORMAT, Snapshot

log = logging.getLogger(__name__)
DIRECTORY = "snapshots"


class SnapshotWriter:
    """Offered a snapshot at every round boundary; writes one at most every ``every_s`` wall seconds."""

    def __init__(self, directory: Path, key: str, *, every_s: float, keep: int) -> None:
        self.directory = Path(directory)
        self.store: DiskStore | None = None  # made with the first snapshot: a run that fails early leaves no folder
        self.key, self.every_s, self.keep = key, every_s, keep
        self.last = -float("inf")

    def __call__(self, make: Callable[[], Snapshot]) -> None:
        """Write ``make()`` if ``every_s`` has passed since the last one, then prune."""
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        snap = make()
        self.store = self.store or DiskStore(self.directory)
        self.store.save(f"snapshot-{len(snap.rounds):06d}", {**snap.payload(), "config": self.key})
        self.last = now
        for old in sorted(self.directory.glob("snapshot-*.ckpt"))[: -self.keep]:
            self.store.drop(old.stem)


def latest(directory: Path, key: str) -> Snapshot | None:
    """The newest readable snapshot of config ``key`` under ``directory`` (None if there is none).

    A corrupt file is reported and the next older one is tried; a snapshot of another
    config stops with one line, since continuing it would mix two runs.
    """
    if not Path(directory).is_dir():
        return None
    store = DiskStore(directory)
    for path in sorted(store.directory.glob("snapshot-*.ckpt"), reverse=True):
        try:
            payload = store.load(path.stem)
        except CheckpointCorrupt:
            log.warning("snapshot %s is corrupt (failed its SHA-256 check or could not be read); trying an older one", path)
            continue
        if payload is None:
            continue
        if payload.get("config") != key:
            raise FedsimError(f"snapshot {path} is of another config; resume with the same overrides, or delete {directory} to start over")
        if payload.get("format") != FORMAT:
            raise FedsimError(f"snapshot {path} was written by another fedsim version; rerun without run.resume, or delete {directory} to start over")
        return Snapshot.from_payload(payload)
    return None
