"""The one preprocessing pipeline every tabular loader shares.

A loader parses its file(s) once into a :class:`ParsedTable` (numeric columns,
integer codes of the categorical columns with their vocabularies, and the row
labels); that compact form is what gets cached. Turning it into model input,
one-hot plus scaling with statistics fit on the training rows only, is cheap and
happens on every load, so the split and scaling options never multiply the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

import fedsim
from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError

Scaling = Literal["standard", "minmax", "none"]

SHARED_DATASETS = Path(fedsim.__file__).resolve().parents[2] / "shared" / "datasets"
"""Where the shared read-only copies live: ``../shared/datasets`` beside the repository."""


@dataclass(frozen=True)
class ParsedTable:
    """A raw table reduced to arrays; row order is file order."""

    numeric: np.ndarray  # float32 (n, m)
    numeric_names: tuple[str, ...]
    codes: np.ndarray  # int32 (n, c): index into ``vocab[j]`` for categorical column j
    categorical_names: tuple[str, ...]
    vocab: tuple[tuple[str, ...], ...]
    label: np.ndarray  # int64 (n,), 1 = attack
    category: np.ndarray  # str (n,), the finer attack label

    def __len__(self) -> int:
        return len(self.label)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickling) for :mod:`fedsim.data.cache`."""
        arrays = {
            "numeric": self.numeric,
            "numeric_names": np.array(self.numeric_names, dtype=str),
            "codes": self.codes,
            "categorical_names": np.array(self.categorical_names, dtype=str),
            "label": self.label,
            "category": self.category,
        }
        for j, words in enumerate(self.vocab):
            arrays[f"vocab_{j}"] = np.array(words, dtype=str)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ParsedTable:
        """Inverse of :meth:`to_arrays`."""
        categorical = tuple(str(s) for s in arrays["categorical_names"])
        return cls(
            numeric=arrays["numeric"],
            numeric_names=tuple(str(s) for s in arrays["numeric_names"]),
            codes=arrays["codes"],
            categorical_names=categorical,
            vocab=tuple(tuple(str(s) for s in arrays[f"vocab_{j}"]) for j in range(len(categorical))),
            label=arrays["label"],
            category=arrays["category"],
        )


def resolve(path: str | Path | None, default: Path, *, what: str, config_key: str) -> Path:
    """The file to read, or a one-line error naming it, where it was looked for and the fix."""
    target = Path(default if path is None else path).expanduser()
    if not target.is_file():
        raise FedsimError(
            f"{what} not found: looked for {target.resolve()}; "
            f"set {config_key}=/path/to/{target.name} (or place the file there)"
        )
    return target


def read_csv(
    path: Path,
    *,
    names: Sequence[str] | None,
    dtype: Mapping[str, object],
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Read a (possibly gzipped) CSV with explicit dtypes; a byte-order mark is dropped.

    The multithreaded pyarrow parser reads whole files; the C parser serves
    ``max_rows`` (pyarrow has no ``nrows``).
    """
    kwargs: dict[str, object] = {"header": None if names else 0, "names": names, "dtype": dict(dtype)}
    try:
        if max_rows is None:
            frame = pd.read_csv(path, engine="pyarrow", encoding="utf-8", **kwargs)
        else:
            frame = pd.read_csv(path, engine="c", nrows=max_rows, encoding="utf-8-sig", **kwargs)
    except pd.errors.EmptyDataError:
        raise FedsimError(f"{path} is empty; point the loader at the data file") from None
    except Exception as exc:  # pyarrow's and pandas' parse errors name neither the file nor a line
        raise FedsimError(csv_problem(Path(path), names, dtype, exc)) from None
    first = str(frame.columns[0])
    if first.startswith("\ufeff"):
        frame = frame.rename(columns={first: first.removeprefix("\ufeff")})
    if frame.empty:
        raise FedsimError(f"{path} has no data rows; point the loader at a non-empty file")
    return frame


def csv_problem(path: Path, names: Sequence[str] | None, dtype: Mapping[str, object], exc: BaseException) -> str:
    """One line saying where ``path`` stops being the expected CSV: file, line, expected columns, what was found."""
    import csv
    import gzip

    expect = list(names) if names else None
    numeric = {c for c, t in dtype.items() if t is not str}
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            for line, row in enumerate(csv.reader(fh), start=1):
                if expect is None:
                    expect = [c.strip() for c in row]
                    missing = [c for c in dtype if c not in expect]
                    if missing:
                        return f"{path}, line 1 (header): {len(missing)} expected column(s) missing ({columns_text(missing)}); the header must be {columns_text(list(dtype))}"
                    continue
                if len(row) != len(expect):
                    return f"{path}, line {line}: expected {len(expect)} columns ({columns_text(expect)}), got {len(row)}; fix or remove the line"
                for name, value in zip(expect, row):
                    if name in numeric and not _is_number(value):
                        return f"{path}, line {line}: column {name} must be a number, got {value!r}; fix or remove the line"
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        return f"{path} is not a readable CSV ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); check the file"
    return f"{path} could not be parsed ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); check the file"


def columns_text(names: Sequence[str]) -> str:
    """A column list short enough for one line."""
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, …, {names[-1]}"


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def parse_frame(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    label: np.ndarray,
    category: np.ndarray,
) -> ParsedTable:
    """Codes and sorted vocabularies of the categorical columns, float32 numerics."""
    codes = np.empty((len(frame), len(categorical)), dtype=np.int32)
    vocab: list[tuple[str, ...]] = []
    for j, col in enumerate(categorical):
        idx, words = pd.factorize(frame[col].astype(str), sort=True)
        codes[:, j] = idx
        vocab.append(tuple(str(w) for w in words))
    values = frame[list(numeric)].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        raise FedsimError("the data file has missing or non-numeric values in numeric columns; check the file")
    return ParsedTable(
        numeric=values,
        numeric_names=tuple(numeric),
        codes=codes,
        categorical_names=tuple(categorical),
        vocab=tuple(vocab),
        label=np.asarray(label, dtype=np.int64),
        category=np.asarray(category, dtype=str),
    )


def one_hot(codes: np.ndarray, vocab: Sequence[Sequence[str]], names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Dense float32 one-hot of each categorical column; width = vocabulary sizes."""
    widths = [len(v) for v in vocab]
    out = np.zeros((len(codes), sum(widths)), dtype=np.float32)
    offsets = np.cumsum([0, *widths])[:-1]
    rows = np.arange(len(codes))
    for j, off in enumerate(offsets):
        out[rows, off + codes[:, j]] = 1.0
    feature_names = [f"{name}={word}" for name, words in zip(names, vocab) for word in words]
    return out, feature_names


@dataclass(frozen=True)
class Scaler:
    """``(x - offset) / scale`` per column."""

    offset: np.ndarray
    scale: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.offset) / self.scale).astype(np.float32, copy=False)


def fit_scaler(x: np.ndarray, kind: Scaling = "standard") -> Scaler:
    """Column statistics of the (training) rows; constant columns keep scale 1."""
    if kind not in ("standard", "minmax", "none"):
        raise FedsimError(f"scaling must be 'standard', 'minmax' or 'none' (got {kind!r})")
    x64 = x.astype(np.float64, copy=False)
    if kind == "none" or len(x) == 0:
        offset, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
    elif kind == "standard":
        offset, scale = x64.mean(axis=0), x64.std(axis=0)
    else:
        offset, scale = x64.min(axis=0), x64.max(axis=0) - x64.min(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return Scaler(offset.astype(np.float32), scale.astype(np.float32))


def stratified_split(strata: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train/test row indices with each stratum split in the same proportion."""
    if not 0.0 < test_fraction < 1.0:
        raise FedsimError(f"test_fraction must be in (0, 1) (got {test_fraction})")
    train, test = [], []
    inverse, values = pd.factorize(strata, sort=True)  # hashing: far faster than sorting strings
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(values)))[:-1]
    for group in np.split(order, bounds):
        rows = rng.permutation(group)
        cut = int(round(len(rows) * (1.0 - test_fraction)))
        train.append(rows[:cut])
        test.append(rows[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def encode(table: ParsedTable, rows: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Model input of ``rows``: scaled numerics then one-hot columns, float32."""
    hot, _ = one_hot(table.codes[rows], table.vocab, table.categorical_names)
    return np.concatenate([scaler(table.numeric[rows]), hot], axis=1)


def feature_names(table: ParsedTable) -> tuple[str, ...]:
    """Column names of :func:`encode`'s output."""
    _, hot_names = one_hot(table.codes[:0], table.vocab, table.categorical_names)
    return (*table.numeric_names, *hot_names)


def to_tabular(
    table: ParsedTable,
    train: np.ndarray,
    test: np.ndarray,
    *,
    scaling: Scaling,
    name: str,
    info: dict[str, object],
) -> Dataset:
    """Encode a train/test split; numeric scaling is fit on the training rows only."""
    scaler = fit_scaler(table.numeric[train], scaling)
    return Dataset(
        x_train=encode(table, train, scaler),
        y_train=table.label[train],
        x_test=encode(table, test, scaler),
        y_test=table.label[test],
        feature_names=feature_names(table),
        category_train=table.category[train],
        category_test=table.category[test],
        name=name,
        info={**info, "scaling": scaling, "scaler_rows": int(len(train))},
    )
