"""On-disk cache of parsed datasets, keyed by the input files' sha256 and the options.

Keying by content rather than path or mtime means a moved copy still hits and an
edited file never serves stale arrays. Entries are uncompressed ``.npz`` files of
plain arrays (no pickles), written to a temporary name and renamed into place so a
crash or a concurrent writer never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
"""Bump when a loader's parsed form changes, so old entries are ignored."""


def default_cache_dir() -> Path:
    """``$FEDSIM_CACHE`` if set, else ``.fedsim-cache/`` in the working directory."""
    return Path(os.environ.get("FEDSIM_CACHE", ".fedsim-cache"))


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_key(kind: str, hashes: tuple[str, ...], options: Mapping[str, object]) -> str:
    """A file name stem unique to (loader, input contents, parse options, format version)."""
    blob = json.dumps({"v": FORMAT_VERSION, "kind": kind, "files": hashes, "options": dict(options)}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def cached_arrays(
    key: str, build: Callable[[], dict[str, np.ndarray]], cache_dir: str | Path | None = None
) -> tuple[dict[str, np.ndarray], bool]:
    """The arrays stored under ``key``, building and storing them on a miss; also says whether it hit."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / f"{key}.npz"
    if target.is_file():
        try:
            with np.load(target, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}, True
        except (OSError, ValueError):
            pass  # unreadable entry (e.g. from a killed older writer): rebuild it
    arrays = build()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return arrays, False
