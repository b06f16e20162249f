"""Records of a run: one row per event, per round, per client-round.

Events and client updates, the two tables that grow with the fleet, go into columnar
buffers (``array``: 2 to 8 bytes a number, no object per row), so a million-client round
logs its events in tens of megabytes; tables are built once at the end. Virtual time
(``time_s``) and wall-clock time (``wall_s``) are separate columns, never mixed.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence

from typing import TYPE_CHECKING

import numpy as np
import simpy

if TYPE_CHECKING:
    import pandas as pd

    from fedsim.sim.sleeping_clocks import Sleepers

EVENT_COLUMNS = ["time_s", "kind", "client", "round", "value"]
CLIENT_COLUMNS = ["round", "client", "origin", "num_samples", "train_loss", "version", "staleness"]
Event = tuple[float, str, int, int, float]


class EventLog(Sequence[Event]):
    """The event rows in columns; reads back as ``(time_s, kind, client, round, value)`` tuples."""

    def __init__(self) -> None:
        self.time, self.value = array("d"), array("d")
        self.client, self.round = array("i"), array("i")  # 4 bytes: ids and rounds below 2**31; int64 in the table
        self.kind = array("H")  # code into ``names``
        self.names: list[str] = []
        self.codes: dict[str, int] = {}
        self._tally = np.zeros(0, dtype=np.int64)  # events per code in the first ``_tallied`` rows: a count per round
        self._tallied = 0  # counts only the rows logged since the last, not the whole log, and logging counts nothing

    def code(self, kind: str) -> int:
        """The code of ``kind``, registering it on first use."""
        code = self.codes.get(kind)
        if code is None:
            code = self.codes[kind] = len(self.names)
            self.names.append(kind)
        return code

    def tally(self, code: int) -> int:
        """Rows of ``code`` logged so far."""
        new = _view(self.kind, np.uint16)[self._tallied :]
        if len(new):
            counts = np.bincount(new, minlength=len(self.names))
            counts[: len(self._tally)] += self._tally
            self._tally, self._tallied = counts, len(self.kind)
        del new  # the buffer is no longer exported: it can grow again
        return int(self._tally[code]) if code < len(self._tally) else 0

    def __len__(self) -> int:
        return len(self.time)

    @property
    def buffers(self) -> tuple[array, array, array, array, array]:
        """The columns' buffers, in ``EVENT_COLUMNS`` order (``kind`` as codes into ``names``)."""
        return self.time, self.kind, self.client, self.round, self.value

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return (self.time[index], self.names[self.kind[index]], self.client[index], self.round[index], self.value[index])

    def __iter__(self) -> Iterator[Event]:
        names = self.names
        return zip(self.time, (names[k] for k in self.kind), self.client, self.round, self.value)

    def frame(self, release: bool = False, max_rows: int | None = None) -> pd.DataFrame:
        """The log as a table, in the order events happened (rows logged late, at past times, sorted into place).

        ``max_rows``: at most that many rows, the server's and the whole histories of the
        clients with the lowest ids that fit (:func:`histories_that_fit`), chosen before
        the table is built, so a log of tens of millions of rows never becomes one.
        ``release``: the log is done; each buffer is emptied once its column is made, so a
        log of tens of millions of rows is never held twice."""
        import pandas as pd

        kept = None if max_rows is None else histories_that_fit(_view(self.client, np.int32), max_rows)
        rows = None if kept is None else np.flatnonzero(kept)
        del kept
        time = _view(self.time, np.float64) if rows is None else _view(self.time, np.float64)[rows]
        if (time[1:] < time[:-1]).any():
            order = stable_order(time)
            rows = order if rows is None else rows[order]
            del order
        del time  # the buffer is no longer exported

        def column(buffer: array, dtype: type, wide: type | None = None) -> np.ndarray:
            out = _view(buffer, dtype)
            out = (out if rows is None else out[rows]).astype(wide or dtype, copy=rows is None)  # new: the buffer goes on
            if release:
                del buffer[:]
            return out

        columns = {"time_s": column(self.time, np.float64), "kind": column(self.kind, np.uint16)}
        columns |= {"client": column(self.client, np.int32, np.int64), "round": column(self.round, np.int32, np.int64)}
        columns["value"] = column(self.value, np.float64)
        rows = None  # the order is spent: freed before the strings are made
        columns["kind"] = _strings(self.names, columns["kind"])
        return pd.DataFrame(columns, copy=False)  # the columns are new arrays: no second copy of the log

    def mean(self, kind: str) -> float:
        """The mean ``value`` of every row of ``kind`` that has one (NaN if none): over the whole log, however few
        rows its table keeps."""
        code = self.codes.get(kind)
        values = _view(self.value, np.float64)[_view(self.kind, np.uint16) == code] if code is not None else np.array([])
        values = values[~np.isnan(values)]
        return float(values.mean()) if len(values) else float("nan")

    def counts(self, chunk: int = 1 << 20) -> pd.DataFrame:
        """Events per round and kind (round -1: outside a round), sorted by both: a group-by of :meth:`frame`'s table,
        counted from the codes ``chunk`` rows at a time, so tens of millions of rows need no table and no string hashing."""
        import pandas as pd

        kinds, rounds = _view(self.kind, np.uint16), _view(self.round, np.int32)
        low, width = (int(rounds.min()), int(rounds.max()) - int(rounds.min()) + 1) if len(rounds) else (0, 0)
        total = np.zeros(width * len(self.names), dtype=np.int64)
        for i in range(0, len(rounds), chunk):
            key = (rounds[i : i + chunk].astype(np.int64) - low) * len(self.names) + kinds[i : i + chunk]
            total += np.bincount(key, minlength=len(total))
        del kinds, rounds  # the buffers are no longer exported
        seen = np.flatnonzero(total)
        table = pd.DataFrame({"round": seen // len(self.names) + low, "kind": np.array(self.names, dtype=object)[seen % len(self.names)],
                              "count": total[seen]})  # fmt: skip
        return table.sort_values(["round", "kind"], kind="stable", ignore_index=True)


def stable_order(keys: np.ndarray) -> np.ndarray:
    """The order that sorts ``keys``, equal keys in the order they came: ``np.argsort(keys, kind="stable")``, in half
    its time on a log of millions of rows.

    numpy's stable sort of floats is a merge sort; its unstable one is vectorised (and
    sorts integers faster still). So the keys are sorted unstably, each given the rank
    of its value, and the ranks and positions, packed into one integer each, sorted
    again: equal keys come out by position."""
    n = len(keys)
    bits = max(1, (n - 1).bit_length())
    if 2 * bits > 63:  # ranks and positions do not fit one 64-bit integer together
        return np.argsort(keys, kind="stable")
    order = np.argsort(keys)
    ordered = keys[order]
    steps = ordered[1:] != ordered[:-1]
    del ordered  # (a log of tens of millions of rows holds as few copies at once as it can)
    packed = np.zeros(n, dtype=np.int64)
    np.cumsum(steps, out=packed[1:])  # each key's rank
    del steps
    packed <<= bits
    packed |= order
    del order
    packed.sort()
    packed &= (1 << bits) - 1
    return packed


def _strings(names: list[str], codes: np.ndarray, chunk: int = 1 << 20) -> pd.api.extensions.ExtensionArray:
    """``names[code]`` for every code, as pandas' strings (no object per row), taken ``chunk`` codes at a time into one
    chunked Arrow column: tens of millions of rows never need their codes widened to 64 bits, nor the strings copied
    into one buffer."""
    import pandas as pd
    import pyarrow as pa

    dictionary = pa.array(names, type=pa.large_string())
    parts = [dictionary.take(pa.array(codes[i : i + chunk])) for i in range(0, len(codes), chunk)]
    return pd.array(pa.chunked_array(parts, type=pa.large_string()), dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def _view(buffer: array, dtype: type) -> np.ndarray:
    """``buffer`` as a numpy array without a copy (copy or index it before the buffer grows again)."""
    return np.frombuffer(buffer, dtype=dtype) if len(buffer) else np.array([], dtype=dtype)


def _column(buffer: array, dtype: type) -> np.ndarray:
    """A copy of ``buffer`` as a numpy array (a copy: the buffer keeps growing)."""
    return _view(buffer, dtype).copy()


class UpdateLog:
    """One row per update the server aggregated: round, client, origin, samples, training loss, the model version it
    trained from and its staleness (versions behind the model it was folded into), in columns."""

    def __init__(self) -> None:
        self.columns = {name: array("d" if name == "train_loss" else "q") for name in CLIENT_COLUMNS}

    def __len__(self) -> int:
        return len(self.columns["round"])

    def extend(self, rnd: int, client: Sequence[int], origin: Sequence[int], num_samples: Sequence[int], loss: Sequence[float],
               version: Sequence[int], staleness: Sequence[int]) -> None:  # fmt: skip
        """Log round ``rnd``'s updates, one entry each in the other columns: a column at a time, not a call per row."""
        self.columns["round"].extend(array("q", [rnd]) * len(client))
        for name, values in zip(CLIENT_COLUMNS[1:], (client, origin, num_samples, loss, version, staleness)):
            self.columns[name].extend(values)

    def arrays(self) -> dict[str, np.ndarray]:
        """A copy of the columns (what a snapshot keeps: a million clients' updates as arrays, not a million dicts)."""
        return {name: _column(buffer, np.float64 if buffer.typecode == "d" else np.int64) for name, buffer in self.columns.items()}

    def load(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Replace the log by ``arrays`` (as :meth:`arrays` gives them)."""
        self.columns = {name: array(buffer.typecode, np.asarray(arrays[name]).tobytes()) for name, buffer in self.columns.items()}

    def frame(self) -> pd.DataFrame:
        """The log as a table (empty, without columns, when nothing was received)."""
        import pandas as pd

        if not len(self):
            return pd.DataFrame()
        return pd.DataFrame(self.arrays(), copy=False)  # the arrays are copies already: millions of updates, not copied twice


class Recorder:
    """Collects event, round and client rows during a simulation."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.events = EventLog()
        self.rounds: list[dict[str, object]] = []
        self.clients = UpdateLog()
        self.client_evals: list[dict[str, object]] = []  # each client's model on its own test rows, per round
        self.diverged: list[tuple[int, int]] = []  # (training seed, step) of every update dropped as divergent
        self.sleepers: Sleepers | None = None  # failure clocks that log idle clients' failures late

    def event(self, kind: str, *, client: int = -1, round: int = -1, value: float = float("nan"), at: float | None = None) -> None:
        """Log a simulated event at the current virtual time, or at the past instant ``at`` (client -1 = the server)."""
        log = self.events
        code = log.codes.get(kind)
        if code is None:
            code = log.code(kind)
        log.time.append(self.env.now if at is None else at)
        log.kind.append(code)
        log.client.append(client)
        log.round.append(round)
        log.value.append(value)

    def alternating(self, kinds: tuple[str, str], times: Sequence[float], *, client: int) -> None:
        """Log ``kinds[0]``, ``kinds[1]``, ``kinds[0]``… of ``client`` at the past instants ``times``, in one go
        (a failure clock's transitions played late); the rows :meth:`event` would log one by one."""
        log, n = self.events, len(times)
        codes = [log.code(kind) for kind in kinds[: min(n, 2)]]  # registered in the order they happen, as event() does
        log.time.extend(times)
        log.kind.extend((codes * (n // 2 + 1))[:n])
        log.client.extend(array("i", [client]) * n)
        log.round.extend(array("i", [-1]) * n)
        log.value.extend(array("d", [float("nan")]) * n)

    def failures_and_repairs(self, times: np.ndarray, failed: np.ndarray, clients: np.ndarray) -> None:
        """Log a failure (where ``failed``) or else a repair of ``clients`` at the past instants ``times``, in that
        order, in one go (a fleet's failure clocks played late together): the rows :meth:`event` would log."""
        self.columns(("failure", "repair"), (~failed).astype(np.intp), times, clients, -1, np.full(len(times), np.nan))

    def columns(self, kinds: Sequence[str], which: np.ndarray, times: np.ndarray, clients: np.ndarray, round: int, values: np.ndarray) -> None:
        """Log rows given as columns, in that order, in one go: row ``i`` is of ``kinds[which[i]]``, of ``clients[i]`` in
        ``round``, at ``times[i]``, with ``values[i]``: the rows :meth:`event` would log one by one."""
        log, n = self.events, len(times)
        used = np.zeros(len(kinds), dtype=bool)
        used[which] = True
        codes = np.array([log.code(kind) if use else 0 for kind, use in zip(kinds, used.tolist())], dtype=np.uint16)  # in turn, as event() does
        columns = (times, codes[which], clients, np.full(n, round), values)
        for buffer, column in zip(log.buffers, columns):
            buffer.frombytes(np.asarray(column, dtype=buffer.typecode).tobytes())  # numpy reads array's type codes

    def count(self, kind: str) -> int:
        """Events of ``kind`` so far (those that sleeping failure clocks owe are logged first)."""
        self.settle()
        code = self.events.codes.get(kind)
        return 0 if code is None else self.events.tally(code)

    def settle(self) -> None:
        """Log what happened by now but is not logged yet (failures and repairs of idle clients)."""
        if self.sleepers is not None:
            self.sleepers.settle(self.env.now)

    def event_counts(self) -> pd.DataFrame:
        """Events per round and kind, every one logged so far (:meth:`EventLog.counts`)."""
        self.settle()
        return self.events.counts()

    def events_table(self, release: bool = False, max_rows: int | None = None) -> pd.DataFrame:
        """The event log, in the order events happened (``release``: the run is over, free the log as it is copied;
        ``max_rows``: the rows :func:`histories_that_fit` keeps)."""
        self.settle()
        return self.events.frame(release, max_rows)

    def rounds_table(self) -> pd.DataFrame:
        """One row per completed round."""
        import pandas as pd

        return pd.DataFrame(self.rounds)

    def clients_table(self) -> pd.DataFrame:
        """One row per client update received (when per-client metrics are on)."""
        return self.clients.frame()


def histories_that_fit(client: np.ndarray, max_rows: int, chunk: int = 1 << 20) -> np.ndarray | None:
    """Which rows of an event log whose ``client`` column this is to keep in at most ``max_rows`` rows (``None``: all
    fit): the server's (client -1) and the whole histories of the clients with the lowest ids that fit (a client's
    history is never cut). Counted ``chunk`` rows at a time: tens of millions of rows, no copy of the column."""
    if len(client) <= max_rows:
        return None
    rows = np.zeros(int(client.max()) + 2, dtype=np.int64)  # per client id + 1 (0: the server's rows)
    for i in range(0, len(client), chunk):
        rows += np.bincount(client[i : i + chunk] + 1, minlength=len(rows))
    fits = np.concatenate([[True], np.cumsum(rows[1:]) <= max_rows - rows[0]])  # the lowest ids whose histories fit
    return np.concatenate([fits[client[i : i + chunk] + 1] for i in range(0, len(client), chunk)])
