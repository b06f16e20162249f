"""Every error a user can cause ends in one line ``fedsim: error: …``, exit code 2, no traceback, no output.

Property-based (hypothesis, derandomised so CI sees the same cases), each case through the
real entry point (:func:`fedsim.cli.main`) in this process. Every test is parametrised by the
kind of mistake, so each kind is drawn at every depth: the default profile draws a few cases
of each kind (a run of the suite stays short), ``--hypothesis-profile=deep`` (the deep tier
of ``.ci/run``) draws 500 bad configs and 500 malformed files (UNSW-NB15 CSVs, network
traces, failure logs).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import os
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.cli import main
from fedsim.data.unsw_nb15 import DTYPES, NUMERIC

CALLS = itertools.count()
DEEP = {"config": 500, "unsw": 250, "trace": 150, "log": 100}  # examples under the deep profile


def per_kind(kinds: list[str], deep: int, default: int, profile: str) -> int:
    """Examples drawn per kind: ``deep`` in all under the deep profile, ``default`` each otherwise."""
    return -(-deep // len(kinds)) if profile == "deep" else default


def fuzz(kinds: list[str], deep: int, default: int) -> settings:
    """Fixed examples (derandomised), no deadline (each one starts hydra), as many as the profile says."""
    examples = per_kind(kinds, deep, default, settings.get_current_profile_name())
    return settings(max_examples=examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)


OUT = Path(os.environ.get("TMPDIR", "/tmp")) / f"fedsim-errors-{os.getpid()}"  # a run dir per call, that must not appear


def run_cli(*args: str) -> tuple[int, list[str], Path]:
    """Exit code, non-empty stderr lines and the run directory of ``fedsim <args>`` run in this process."""
    err = io.StringIO()
    code = 0
    run_dir = OUT / str(next(CALLS))
    with contextlib.redirect_stderr(err):
        try:
            main([*args, f"hydra.run.dir={run_dir}"])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, [line for line in err.getvalue().splitlines() if line.strip()], run_dir


def assert_one_line(result: tuple[int, list[str], Path], *must: str) -> None:
    code, lines, run_dir = result
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("fedsim: error: "), lines
    assert "Traceback" not in lines[0]
    for word in must:
        assert word in lines[0], (word, lines[0])
    assert not run_dir.exists()  # no partial output: the run stopped before it made its directory


# --- bad configs ---------------------------------------------------------------------------------

NEGATIVE = st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)
NON_POSITIVE = st.floats(max_value=0.0, allow_nan=False, allow_infinity=False)
NOT_FINITE = st.sampled_from(["nan", "inf", "-inf"])
UNIT_OUT = st.one_of(st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False), st.floats(min_value=1.0 + 1e-9, allow_nan=False, allow_infinity=False))
RANGES = {
    "failure.shape": NON_POSITIVE, "failure.scale": NON_POSITIVE, "failure.repair_mean_s": NEGATIVE, "failure.dropout": st.one_of(NEGATIVE, st.floats(min_value=1.0, max_value=1e6)),
    "data.num_clients": st.integers(max_value=0), "data.alpha": NON_POSITIVE, "data.val_fraction": st.one_of(NON_POSITIVE, st.floats(min_value=1.0, max_value=1e6)),
    "data.max_rows": st.integers(min_value=-1000, max_value=9),
    "strategy.fraction": st.one_of(NON_POSITIVE, st.floats(min_value=1.0 + 1e-9, max_value=1e6)), "strategy.lr": st.one_of(NON_POSITIVE, NOT_FINITE),
    "strategy.batch_size": st.integers(max_value=1), "strategy.local_epochs": st.integers(max_value=0), "strategy.min_clients": st.integers(max_value=0),
    "run.max_rounds": st.integers(max_value=0), "run.patience": st.integers(max_value=-1), "run.target_accuracy": UNIT_OUT, "run.aggregation_s": NEGATIVE,
    "run.snapshot_every_s": NEGATIVE, "run.keep_snapshots": st.integers(max_value=0),
    "checkpoint.tau_s": NON_POSITIVE, "checkpoint.delta_s": NEGATIVE, "checkpoint.restart_s": NEGATIVE, "checkpoint.storage_mbps": NON_POSITIVE,
    "network.latency_s": st.one_of(NEGATIVE, NOT_FINITE), "network.up_mbps": st.one_of(NON_POSITIVE, NOT_FINITE), "network.down_mbps": NON_POSITIVE,
    "compute.cost_per_sample_s": st.one_of(NEGATIVE, NOT_FINITE), "compute.speed_spread": NEGATIVE, "compute.threads": st.integers(max_value=-1),
    "recovery.heartbeat_s": NON_POSITIVE, "recovery.wait_deadline_s": NON_POSITIVE,
}  # fmt: skip
ENUMS = ["data.partition", "run.round_policy", "compute.device", "compute.speed_dist", "compute.batched", "failure.repair", "recovery.client", "recovery.aggregation", "run.on_divergence"]
GROUPS = ["data", "model", "strategy", "failure", "checkpoint", "recovery", "network", "compute", "run"]
WORD = st.text(alphabet=string.ascii_lowercase + "_", min_size=3, max_size=12).filter(lambda w: w not in ("true", "false", "null", "auto", "none", "nan", "inf"))


CONFIG_KINDS = ["range", "type", "enum", "key", "group"]


@st.composite
def bad_override(draw, kind: str) -> tuple[str, str]:
    """(override, word the error line must name) of a mistake of ``kind``."""
    if kind == "range":
        key = draw(st.sampled_from(sorted(RANGES)))
        return f"{key}={draw(RANGES[key])}", key
    if kind == "type":
        key = draw(st.sampled_from(sorted(RANGES)))
        return f"{key}={draw(WORD)}", key
    if kind == "enum":
        key = draw(st.sampled_from(ENUMS))
        return f"{key}={draw(WORD)}x", key
    group = draw(st.sampled_from(GROUPS))
    if kind == "key":
        name = draw(WORD)
        return f"{group}.{name}q=1", f"{name}q"
    return f"{group}={draw(WORD)}q", group


@pytest.mark.parametrize("kind", CONFIG_KINDS)
@fuzz(CONFIG_KINDS, DEEP["config"], default=8)
@given(data=st.data())
def test_a_bad_config_is_one_line(kind, data):
    override, word = data.draw(bad_override(kind))
    assert_one_line(run_cli(override), word)


@pytest.mark.parametrize("override, word", [
    ("strategy.lr=inf", "strategy.lr"), ("network.latency_s=inf", "network.latency_s"),
    ("data.num_clients=100000", "data.num_clients"),  # valid range, too many for the data: found when the data is read
])  # fmt: skip
def test_a_bad_config_found_before_and_while_reading_is_one_line(override, word):
    assert_one_line(run_cli(override), word)


@pytest.mark.parametrize("overrides", [
    ["compute.system_only=true", "run.objective=final_auc"],  # the surrogate models no AUC
    ["task=regression", "data=synthetic_fedprox", "model=logreg", "run.objective=final_accuracy"],  # regression reports no accuracy
])  # fmt: skip
def test_an_objective_the_run_will_not_report_is_one_line(overrides):
    assert_one_line(run_cli(*overrides), "run.objective")


# --- malformed input files -----------------------------------------------------------------------

COLUMNS = list(DTYPES)


def unsw_rows(n: int, g: np.random.Generator) -> list[list[str]]:
    """``n`` well-formed UNSW-NB15 rows, both classes."""
    rows = []
    for i in range(n):
        attack = i % 3 == 0
        row = {"id": str(i + 1), **{c: f"{g.random() * 100:.4f}" for c in NUMERIC}, "proto": "tcp", "service": "-", "state": "FIN"}
        row |= {"attack_cat": "DoS" if attack else "Normal", "label": "1" if attack else "0"}
        rows.append([row[c] for c in COLUMNS])
    return rows


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    """A CSV file's text: the header line, then one line per row."""
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


UNSW_KINDS = ["short", "long", "text", "header", "empty", "header_only", "one_class", "binary", "truncated", "gzip"]


@st.composite
def bad_unsw(draw, kind: str) -> tuple[bytes, str]:
    """(file bytes, a word the error must name) of a UNSW-NB15 CSV broken in the way ``kind`` says."""
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = unsw_rows(draw(st.integers(min_value=12, max_value=40)), g)
    header = list(COLUMNS)
    line = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    word = f"line {line + 2}"
    if kind == "short":
        rows[line] = rows[line][: draw(st.integers(min_value=1, max_value=len(header) - 1))]  # an empty line would just be skipped
    elif kind == "long":
        rows[line] = rows[line] + ["1"] * draw(st.integers(min_value=1, max_value=5))
    elif kind == "text":
        col = draw(st.sampled_from(NUMERIC))
        rows[line][header.index(col)] = draw(WORD)
        word = col
    elif kind == "header":
        for col in draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=5, unique=True)):
            header[header.index(col)] = col + "_x"
        word = "column"
    elif kind == "one_class":
        for r in rows:
            r[-2:] = ["Normal", "0"]
        word = "anomalous"
    text = csv_text(header, rows)
    if kind == "empty":
        return b"", "empty"
    if kind == "header_only":
        return (",".join(header) + "\n").encode(), "no data rows"
    if kind == "binary":
        return bytes(draw(st.binary(min_size=1, max_size=200)).replace(b"\n", b"\x00")) + b"\xff\xfe", "unsw"
    if kind == "truncated":  # cut inside the last line, so it is short
        cut = draw(st.integers(min_value=2, max_value=len(",".join(rows[-1])) - 1))
        return text[: len(text) - cut].encode(), f"line {len(rows) + 1}"
    if kind == "gzip":
        return gzip.compress(text.encode())[: draw(st.integers(min_value=2, max_value=30))], "unsw"
    return text.encode(), word


@pytest.mark.parametrize("kind", UNSW_KINDS)
@fuzz(UNSW_KINDS, DEEP["unsw"], default=3)
@given(data=st.data())
def test_a_malformed_dataset_file_is_one_line(tmp_path_factory, kind, data):
    content, word = data.draw(bad_unsw(kind))
    path = tmp_path_factory.mktemp("unsw") / "unsw.csv"
    path.write_bytes(content)
    result = run_cli("data=unsw_nb15", f"data.source.path={path}", f"data.source.cache_dir={path.parent / 'cache'}")
    assert_one_line(result, str(path) if word != "anomalous" else "anomalous")
    assert word.lower() in result[1][0].lower() or word == "unsw"


TRACE_KINDS = ["short", "text", "negative", "header", "empty", "duplicate", "nan"]


@st.composite
def bad_trace(draw, kind: str) -> bytes:
    """A network trace CSV (client,time,down_mbps,up_mbps) broken in the way ``kind`` says."""
    rows = [[str(c), f"{t:.1f}", "10", "5"] for c in range(3) for t in (0.0, 30.0)]
    line = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    header = ["client", "time", "down_mbps", "up_mbps"]
    if kind == "short":
        rows[line] = rows[line][: draw(st.integers(min_value=1, max_value=3))]
    elif kind == "text":
        rows[line][draw(st.integers(min_value=0, max_value=3))] = draw(WORD)
    elif kind == "negative":
        rows[line][draw(st.integers(min_value=1, max_value=3))] = f"-{draw(st.floats(min_value=0.001, max_value=1e6)):.3f}"
    elif kind == "header":
        header[draw(st.integers(min_value=0, max_value=3))] = draw(WORD)
    elif kind == "empty":
        return b""
    elif kind == "duplicate":
        rows.append(list(rows[line]))
    else:
        rows[line][draw(st.integers(min_value=2, max_value=3))] = draw(NOT_FINITE)
    return csv_text(header, rows).encode()


@pytest.mark.parametrize("kind", TRACE_KINDS)
@fuzz(TRACE_KINDS, DEEP["trace"], default=3)
@given(data=st.data())
def test_a_malformed_network_trace_is_one_line(tmp_path_factory, kind, data):
    content = data.draw(bad_trace(kind))
    path = tmp_path_factory.mktemp("trace") / "trace.csv"
    path.write_bytes(content)
    assert_one_line(run_cli(f"network.trace={path}", "data.num_clients=3"), str(path))


@pytest.mark.parametrize("override, word", [("nosuch=1", "nosuch"), ("tau=abc", "tau"), ("seeds=0", "seeds")])
def test_a_bad_tune_override_is_one_line(override, word):
    assert_one_line(run_cli("tune", override), word)


LOG_KINDS = ["negative", "zero", "text", "flag", "header", "empty", "nan"]


@st.composite
def bad_failure_log(draw, kind: str) -> bytes:
    """A failure log (duration,failed) broken in the way ``kind`` says."""
    rows = [[f"{draw(st.floats(min_value=0.1, max_value=100)):.3f}", draw(st.sampled_from(["1", "0"]))] for _ in range(draw(st.integers(3, 20)))]
    line = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    header = ["duration", "failed"]
    if kind == "negative":
        rows[line][0] = f"-{draw(st.floats(min_value=0.001, max_value=1e6)):.3f}"
    elif kind == "zero":
        rows[line][0] = "0"
    elif kind == "text":
        rows[line][0] = draw(WORD)
    elif kind == "flag":
        rows[line][1] = draw(WORD)
    elif kind == "header":
        header = [draw(WORD), "failed"]
    elif kind == "empty":
        return b"duration,failed\n"
    else:
        rows[line][0] = draw(NOT_FINITE)
    return csv_text(header, rows).encode()


@pytest.mark.parametrize("kind", LOG_KINDS)
@fuzz(LOG_KINDS, DEEP["log"], default=2)
@given(data=st.data())
def test_a_malformed_failure_log_is_one_line(tmp_path_factory, kind, data):
    content = data.draw(bad_failure_log(kind))
    path = tmp_path_factory.mktemp("log") / "failures.csv"
    path.write_bytes(content)
    assert_one_line(run_cli("tune", f"failure_log={path}"), str(path))


def test_the_deep_profile_draws_500_bad_configs_and_500_malformed_files():
    def deep(kinds: list[str], n: int) -> int:
        return len(kinds) * per_kind(kinds, n, 0, "deep")

    assert deep(CONFIG_KINDS, DEEP["config"]) >= 500
    assert deep(UNSW_KINDS, DEEP["unsw"]) + deep(TRACE_KINDS, DEEP["trace"]) + deep(LOG_KINDS, DEEP["log"]) >= 500
