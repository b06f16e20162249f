"""Writing run outputs atomically: a crash never leaves a half-written file that looks complete.

Each file is written to a temporary name in the same directory and renamed into
place (``os.replace`` is atomic on POSIX and Windows). A run writes
``summary.json`` last, so its presence marks a complete run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SUMMARY = "summary.json"


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


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (floats rounded to ``digits``)."""

    def cell(v: object) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"
