"""Writing run outputs atomically: a crash never leaves a half-written file that looks complete.

Each file is written to a temporary name in the same directory and renamed into
place (``os.replace`` is atomic on POSIX and Windows). A run writes its resolved
config (``config.yaml``) with its tables and ``summary.json`` last, so the summary's
presence marks a complete run, and the config says of what.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SUMMARY = "summary.json"
CONFIG = "config.yaml"  # the resolved config a run was made from
HOW_TO_RUN = ("resume", "snapshot_every_s", "keep_snapshots")  # run.* keys that do not change what is computed


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """A tidy table as CSV (``.csv``) or parquet (``.parquet``)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return atomic_write(path, lambda p: df.to_parquet(p, index=False))
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def write_text(text: str, path: Path) -> Path:
    """A text file (YAML, JSON, Markdown)."""
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(obj: object, path: Path) -> Path:
    """A JSON document, pretty-printed."""
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n", path)


def only_logs(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds nothing but what hydra makes for every job (``.hydra/`` and the job's log)."""
    return all(p.name == ".hydra" or p.suffix == ".log" for p in Path(run_dir).iterdir())


def discard(run_dir: Path) -> None:
    """Remove a failed job's directory that holds only hydra's files: a failed job leaves no output."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)


def is_complete(run_dir: Path) -> bool:
    """Whether a run directory holds a finished run (its summary was written)."""
    return (Path(run_dir) / SUMMARY).is_file()


def config_key(resolved_yaml: str) -> str:
    """SHA-256 of a resolved config without the settings that only say how to run it (:data:`HOW_TO_RUN`)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(resolved_yaml)
    for key in HOW_TO_RUN:
        if OmegaConf.select(cfg, f"run.{key}", default=None) is not None:
            del cfg.run[key]
    return hashlib.sha256(OmegaConf.to_yaml(cfg).encode()).hexdigest()


def is_done(run_dir: Path, resolved_yaml: str) -> bool:
    """Whether ``run_dir`` holds a finished run of this config (a re-run sweep skips it, a resume leaves it)."""
    stored = Path(run_dir) / CONFIG
    return is_complete(run_dir) and stored.is_file() and config_key(stored.read_text()) == config_key(resolved_yaml)


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (floats rounded to ``digits``)."""

    def cell(v: object) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def mean_std(values: pd.Series, digits: int = 3) -> str:
    """``mean (std)`` over runs (std with ddof = 1), the papers' form; undefined runs (NaN: a target never reached) left out."""
    v = values.dropna().astype(float)
    if v.empty:
        return "n/a"
    return f"{v.mean():.{digits}f} ({v.std(ddof=1):.{digits}f})" if len(v) > 1 else f"{v.mean():.{digits}f}"
