"""``fedsim plot <kind> <table>``: a figure from a collected sweep table, as PNG and SVG."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fedsim.errors import FedsimError
from fedsim.figures import FORMATS, save_all
from fedsim.figures.sweeps import KINDS


def read_table(path: Path) -> pd.DataFrame:
    """A collected table from parquet or CSV."""
    return pd.read_parquet(path) if Path(path).suffix == ".parquet" else pd.read_csv(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Draw one figure kind from a table; prints the files written."""
    parser = argparse.ArgumentParser(prog="fedsim plot", description="Draw a figure from a table made by `fedsim collect`.")
    parser.add_argument("kind", choices=sorted(KINDS), help="dropout: accuracy/AUC vs dropout; scaling: accuracy and time vs clients; learning: curves per round; ctau: C(τ) with simulated points")
    parser.add_argument("table", type=Path, help="collected.parquet (or a CSV with the same columns)")
    parser.add_argument("--out", type=Path, default=None, help="output path without suffix (default: <table dir>/<kind>)")
    parser.add_argument("--format", default=",".join(FORMATS), help="comma-separated formats (default: png,svg)")
    parser.add_argument("--hue", default=None, help="column for one line per value (dropout, scaling, learning)")
    parser.add_argument("--x", default="round", choices=["round", "time_s"], help="learning: x axis")
    parser.add_argument("--model", default="renewal", help="ctau: the exact cost model (segment, renewal, minimal_repair)")
    args = parser.parse_args(argv)
    try:
        table = read_table(args.table)
        if args.kind == "ctau":
            fig = KINDS["ctau"](table, model=args.model)
        elif args.kind == "learning":
            fig = KINDS["learning"](table, hue=args.hue, x=args.x)
        else:
            fig = KINDS[args.kind](table, hue=args.hue)
        out = args.out or args.table.with_name(args.kind)
        paths = save_all(fig, out, [f.strip() for f in args.format.split(",") if f.strip()])
    except (FedsimError, OSError, ImportError, ValueError) as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0
