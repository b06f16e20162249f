"""The benchmark scripts still run: quick versions of three of them (they are run by hand otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_failures, bench_system_only, bench_tables  # noqa: E402


def test_quick_benchmarks_run_and_report():
    sys_only = bench_system_only.main(["--quick", "--server-mbps", "100000"])
    assert sys_only["events"] > 1000 and sys_only["simpy_events"] > 0 and sys_only["simpy_events_per_s"] > 0  # 200 clients, 2 rounds
    runs = sys_only["runs"].values()
    assert len(runs) == 2 and all(r["events"] == sys_only["events"] and r["simpy_events"] > 0 for r in runs)  # the same log, however scheduled
    half = bench_system_only.main(["--quick", "--fraction", "0.5"])  # half the fleet a round: fewer processes and events
    assert half["fraction"] == 0.5 and half["events"] < sys_only["events"] and half["simpy_events"] < sys_only["simpy_events"]
    fail = bench_failures.main(["--quick"])  # asserts identical tables across executors itself
    assert fail["skip_s"] > 0 and fail["noskip_s"] > 0
    tables = bench_tables.main(["--quick"])  # asserts that each new way gives what the old one gave
    assert len(tables) == 4 and all(t["new_s"] > 0 and t["old_s"] > 0 for t in tables.values())


def test_a_runs_phases_are_printed_and_the_engine_is_left_as_it_was(capsys):
    from fedsim.fl.sync import SyncRounds
    from fedsim.sim.recorder import Recorder

    settle = Recorder.settle
    bench_system_only.main(["--quick", "--phases"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("#") and " RSS " in line]
    steps = {line.split()[3] for line in lines}
    assert {"close", "settle", "close_all", "events_table", "clients_table"} <= steps and len(lines) % 2 == 0
    assert Recorder.settle is settle and "close" not in vars(SyncRounds)  # unwrapped again; an inherited method inherited again


def test_bytecodes_are_counted_per_client_round_and_the_tracer_is_put_back(capsys):
    before = sys.gettrace()
    out = bench_system_only.main(["--quick", "--bytecodes"])
    assert sys.gettrace() is before
    printed = capsys.readouterr().out
    assert "Python bytecodes per client-round" in printed and "attempt.py" in printed
    assert 1_000 < out["bytecodes_per_client_round"] < 100_000  # thousands: a client-round is dozens of calls, not one or a million
