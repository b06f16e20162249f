"""ROAD CAN intrusion dataset (Verma et al., PLoS One 2024), raw candump captures.

Published layout: ``ambient/*.log`` and ``attacks/*.log``, one frame a line as
``(timestamp) can0 ID#HEXDATA``, and ``attacks/capture_metadata.json`` giving each
attack capture (by file stem) its ``injection_id`` (hex, ``XXX`` = any),
``injection_data_str`` (hex payload, ``X`` = any nibble) and ``injection_interval``
(seconds from the capture's first frame). A frame is an attack when it falls in
the interval and matches the id and the payload pattern.

Frames are summarised per time window (``window_s``): counts per CAN id (ids seen
in the data), frame count, distinct ids, bus inter-arrival mean/std/min/max and
each payload byte's mean and std. A window is an attack when any of its frames is.
Windows are split stratified by capture family (seeded); no copy is in
``../shared/datasets``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.data import cache, preprocess
from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.seeding import rng

DEFAULT_DIR = preprocess.SHARED_DATASETS / "road"
AMBIENT = "ambient"


@dataclass(frozen=True)
class Capture:
    """One candump log as arrays, time-ordered."""

    ts: np.ndarray  # float64 seconds
    ids: np.ndarray  # int64 CAN id
    payload: np.ndarray  # uint8 (n, 8), zero-padded
    dlc: np.ndarray  # int64 bytes present


def parse_candump(path: Path) -> Capture:
    """Read ``(ts) iface ID#DATA`` lines (plain or gzip) without a Python loop over frames."""
    frame = pd.read_csv(path, sep=r"\s+", header=None, names=["ts", "iface", "frame"], dtype=str, engine="c")
    ts = frame["ts"].str.strip("()").astype(np.float64).to_numpy()
    parts = frame["frame"].str.partition("#")
    id_hex, data_hex = parts[0], parts[2].str.slice(0, 16)
    ids = np.frombuffer(bytes.fromhex("".join(id_hex.str.zfill(8))), dtype=">u4").astype(np.int64)
    dlc = (data_hex.str.len() // 2).to_numpy().astype(np.int64)
    payload = np.frombuffer(bytes.fromhex("".join(data_hex.str.ljust(16, "0"))), dtype=np.uint8).reshape(-1, 8)
    order = np.argsort(ts, kind="stable")
    return Capture(ts[order], ids[order], payload[order].copy(), dlc[order])


def attack_frames(capture: Capture, meta: dict[str, object]) -> np.ndarray:
    """Frames inside the injection interval whose id and payload match the metadata."""
    start, stop = (float(v) for v in meta["injection_interval"])  # type: ignore[union-attr]
    rel = capture.ts - capture.ts[0]
    hit = (rel >= start) & (rel <= stop)
    target = str(meta.get("injection_id", "XXX")).lower().removeprefix("0x")
    if "x" not in target:
        hit &= capture.ids == int(target, 16)
    pattern = str(meta.get("injection_data_str") or "").upper()
    nibbles = np.stack([capture.payload >> 4, capture.payload & 0xF], axis=2).reshape(-1, 16).astype(np.int64)
    nibbles[np.arange(16)[None, :] >= 2 * capture.dlc[:, None]] = -1  # absent bytes match no fixed nibble
    for i, char in enumerate(pattern[:16]):
        if char != "X":
            hit &= nibbles[:, i] == int(char, 16)
    return hit


def window_features(capture: Capture, attack: np.ndarray, id_vocab: np.ndarray, window_s: float):
    """Per-window feature matrix (float32), attack flag and feature names."""
    win = np.floor((capture.ts - capture.ts[0]) / window_s).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
    count = np.diff(np.r_[starts, len(win)]).astype(np.float64)
    code = np.searchsorted(id_vocab, capture.ids)
    known = (code < len(id_vocab)) & (id_vocab[np.minimum(code, len(id_vocab) - 1)] == capture.ids)
    code = np.where(known, code, len(id_vocab))  # last column: ids not in the vocabulary
    window_of = np.repeat(np.arange(len(starts)), count.astype(np.int64))
    per_id = np.zeros((len(starts), len(id_vocab) + 1))
    np.add.at(per_id, (window_of, code), 1.0)
    distinct = (per_id > 0).sum(1)
    gap = np.diff(capture.ts, prepend=capture.ts[0])
    gap[starts] = np.nan  # the first frame of a window has no in-window predecessor
    gap_sum = np.add.reduceat(np.nan_to_num(gap), starts)
    gap_n = np.maximum(count - 1, 1)
    gap_mean = gap_sum / gap_n
    gap_var = np.add.reduceat(np.nan_to_num(gap - gap_mean[window_of]) ** 2, starts) / gap_n
    gap_fill = np.where(np.isnan(gap), np.inf, gap)
    gap_min = np.minimum.reduceat(gap_fill, starts)
    gap_max = np.maximum.reduceat(np.where(np.isnan(gap), -np.inf, gap), starts)
    single = count < 2
    gap_min[single], gap_max[single] = 0.0, 0.0
    data = capture.payload.astype(np.float64)
    byte_mean = np.add.reduceat(data, starts, axis=0) / count[:, None]
    byte_std = np.sqrt(np.maximum(np.add.reduceat(data**2, starts, axis=0) / count[:, None] - byte_mean**2, 0.0))
    x = np.column_stack([per_id, count, distinct, gap_mean, np.sqrt(gap_var), gap_min, gap_max, byte_mean, byte_std])
    names = (
        *(f"count_id_{i:03X}" for i in id_vocab), "count_id_other", "frames", "distinct_ids",
        "gap_mean", "gap_std", "gap_min", "gap_max",
        *(f"byte{j}_mean" for j in range(8)), *(f"byte{j}_std" for j in range(8)),
    )  # fmt: skip
    return x.astype(np.float32), np.add.reduceat(attack.astype(np.int64), starts) > 0, names


def family(capture_name: str) -> str:
    """Attack family of a capture: its stem without instance numbers (``fuzzing_attack_2`` → ``fuzzing_attack``)."""
    return re.sub(r"_\d+", "", capture_name)


def _parse(root: Path, window_s: float, include: str | None) -> dict[str, np.ndarray]:
    meta_path = root / "attacks" / "capture_metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    logs = [(AMBIENT, p) for p in sorted((root / "ambient").glob("*.log*"))]
    logs += [("attack", p) for p in sorted((root / "attacks").glob("*.log*")) if include is None or include in p.name]
    if not logs:
        raise FedsimError(f"no ROAD captures (*.log) under {root}/ambient or {root}/attacks; set data.source.path=/path/to/road")
    captures = [(kind, p.name.split(".")[0], parse_candump(p)) for kind, p in logs]
    id_vocab = np.unique(np.concatenate([c.ids for _, _, c in captures]))
    xs, labels, cats = [], [], []
    for kind, name, cap in captures:
        if kind == AMBIENT:
            attack = np.zeros(len(cap.ts), dtype=bool)
        elif name in meta:
            attack = attack_frames(cap, meta[name])
        else:
            raise FedsimError(f"attack capture {name!r} has no entry in {meta_path}; add it or set data.source.include")
        x, y, names = window_features(cap, attack, id_vocab, window_s)
        xs.append(x)
        labels.append(y.astype(np.int64))
        cats.append(np.where(y, family(name), AMBIENT))
    table = preprocess.ParsedTable(
        numeric=np.concatenate(xs), numeric_names=names, codes=np.zeros((sum(map(len, xs)), 0), np.int32),
        categorical_names=(), vocab=(), label=np.concatenate(labels), category=np.concatenate(cats).astype(str),
    )  # fmt: skip
    return table.to_arrays()


def load_road(
    path: str | Path | None = None,
    *,
    window_s: float = 1.0,
    include: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    scaling: preprocess.Scaling = "standard",
    cache_dir: str | Path | None = None,
) -> Dataset:
    """ROAD windows; ``include`` keeps only attack captures whose name contains it."""
    root = Path(DEFAULT_DIR if path is None else path).expanduser()
    if not (root / "ambient").is_dir():
        raise FedsimError(f"ROAD data not found: looked for {root.resolve()}/ambient; set data.source.path=/path/to/road")
    if window_s <= 0:
        raise FedsimError(f"data.source.window_s must be > 0 (got {window_s})")
    files = sorted(p for p in root.glob("*/*") if p.is_file() and (p.suffix == ".json" or ".log" in p.name))
    hashes = tuple(f"{p.relative_to(root)}:{cache.file_sha256(p)}" for p in files)
    key = cache.cache_key("road", hashes, {"window_s": window_s, "include": include})
    arrays, _ = cache.cached_arrays(key, lambda: _parse(root, window_s, include), cache_dir)
    table = preprocess.ParsedTable.from_arrays(arrays)
    train, test = preprocess.stratified_split(table.category, test_fraction, rng(seed, "road-split"))
    return preprocess.to_tabular(
        table, train, test, scaling=scaling, name="road",
        info={"path": str(root), "windows": len(table), "window_s": window_s, "include": include},
    )  # fmt: skip


@dataclass
class ROADSource:
    """Config of :func:`load_road` (hydra ``data/source=road``)."""

    _target_: str = "fedsim.data.road.load_road"
    path: str | None = None
    """Folder holding ``ambient/`` and ``attacks/``; None = ``../shared/datasets/road``."""
    window_s: float = 1.0
    """Window length in seconds."""
    include: str | None = None
    """Keep only attack captures whose name contains this (e.g. ``correlated_signal``)."""
    seed: int = 0
    """Seed of the stratified window split."""
    test_fraction: float = 0.3
    """Held-out share of each capture family's windows."""
    scaling: str = "standard"
    """Feature scaling fit on training windows: standard | minmax | none."""
    cache_dir: str | None = None
    """Parsed-data cache; None = ``$FEDSIM_CACHE`` or ``.fedsim-cache/``."""
