"""The bookkeeping of a large run, against the row-by-row ways it replaced, in the same process.

A million clients over ten rounds log tens of millions of events and aggregate millions of
updates. Four pieces of bookkeeping grow with them; each is timed here on a synthetic log
of ``--rows`` events (``--clients`` clients, ten rounds) against the way it was done before:

- the snapshot's digest of the event log: the column bytes, against a repr per row;
- the snapshot's update log: column tensors, against a JSON list of one dict per update;
- ``event_counts.csv``: a bincount of the log's codes, against a group-by of the event table;
- ``events.csv``: the rows that fit chosen from the log's client column (a bincount per client) before a table
  is built, against building the whole table, then ``value_counts`` and ``isin``.

Each line prints both wall times, their ratio and both peaks of traced memory (a second
call under ``tracemalloc``: Python objects and numpy arrays; pandas' string buffers are not traced).

    python benchmarks/bench_tables.py [--quick] [--rows 10000000] [--clients 500000]
"""

from __future__ import annotations

import io
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import simpy  # noqa: E402
import torch  # noqa: E402

from benchmarks.workload import common_args, setup  # noqa: E402
from fedsim.fl.replay import EventDigest  # noqa: E402
from fedsim.sim.recorder import Recorder  # noqa: E402

KINDS = ["round_start", "broadcast", "train_start", "upload", "receive", "failure", "repair", "dropout"]


def synthetic(rows: int, clients: int) -> Recorder:
    """A recorder holding ``rows`` events of ``clients`` clients over ten rounds (some logged late, as sleeping clocks do)."""
    g = np.random.default_rng(0)
    rec = Recorder(simpy.Environment())
    for kind in KINDS:
        rec.events.code(kind)
    time_s = np.sort(g.random(rows)) * 1e4
    time_s[::7] -= 1.0
    events = (time_s, g.integers(0, len(KINDS), rows), g.integers(-1, clients, rows), g.integers(-1, 10, rows), np.full(rows, np.nan))
    rounds, who = g.integers(1, 11, rows // 5), g.integers(0, clients, rows // 5)
    updates = (rounds, who, who, np.full(len(who), 2000), np.full(len(who), 0.5), rounds - 1, np.zeros(len(who)))  # in CLIENT_COLUMNS order
    for buffers, columns in ((rec.events.buffers, events), (rec.clients.columns.values(), updates)):
        for buffer, column in zip(buffers, columns):
            buffer.frombytes(np.asarray(column, dtype=buffer.typecode).tobytes())
    return rec


def measure(fn) -> tuple[float, float, object]:
    """Wall seconds of ``fn()``, the peak MiB it traces (a second call: tracing slows allocations), what it returned."""
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, peak, out


def row_digest(log) -> str:
    """The digest as it was: SHA-256 of every row's repr."""
    import hashlib

    h = hashlib.sha256()
    for row in log:
        h.update(repr(row).encode())
    return h.hexdigest()


def dict_rows(rec: Recorder) -> int:
    """The update log as a snapshot held it: one dict per update, as JSON (its length)."""
    columns = rec.clients.columns
    return len(json.dumps([dict(zip(columns, r)) for r in zip(*columns.values())]))


def column_tensors(rec: Recorder) -> int:
    """The update log as a snapshot holds it: column tensors, serialised by ``torch.save`` (its length)."""
    buf = io.BytesIO()
    torch.save({name: torch.from_numpy(column) for name, column in rec.clients.arrays().items()}, buf)
    return buf.tell()


def sample_by_value_counts(events: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """``events.csv``'s sample as it was computed: value counts of the clients' rows, then ``isin``."""
    server = events["client"].to_numpy() < 0
    per_client = events.loc[~server, "client"].value_counts().sort_index()
    fits = per_client.index[per_client.cumsum().to_numpy() <= max_rows - int(server.sum())]
    return events[server | events["client"].isin(fits).to_numpy()].reset_index(drop=True)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = common_args(__doc__)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--clients", type=int, default=500_000)
    args = p.parse_args(argv)
    setup(args)
    rows, clients = (20_000, 1_000) if args.quick else (args.rows, args.clients)
    rec = synthetic(rows, clients)
    print(f"# {rows:,} events of {clients:,} clients over ten rounds, {len(rec.clients):,} updates")
    out = {}

    def compare(name: str, new, old, same) -> None:
        new_s, new_mib, a = measure(new)
        old_s, old_mib, b = measure(old)
        assert same(a, b), f"{name}: the two ways disagree"
        out[name] = {"new_s": new_s, "old_s": old_s, "new_mib": new_mib, "old_mib": old_mib}
        print(f"{name}: {new_s:.2f} s against {old_s:.2f} s ({old_s / new_s:.1f}× as fast); peak traced {new_mib:,.0f} MiB against {old_mib:,.0f} MiB")

    compare("digest of the event log", lambda: EventDigest().update(rec.events), lambda: row_digest(rec.events), lambda a, b: len(a) == len(b))
    compare("snapshot's update log", lambda: column_tensors(rec), lambda: dict_rows(rec), lambda a, b: a > 0 and b > 0)
    table = rec.events_table()  # what the counts were grouped from
    compare("event counts", rec.events.counts, lambda: table.groupby(["round", "kind"]).size().reset_index(name="count"), lambda a, b: a.equals(b))
    compare("events.csv's table", lambda: rec.events_table(max_rows=rows // 20), lambda: sample_by_value_counts(rec.events_table(), rows // 20), lambda a, b: a.equals(b))
    return out


if __name__ == "__main__":
    main()
