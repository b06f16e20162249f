"""A fast start: how long ``fedsim scenarios=quickstart`` takes before its first round, beyond ``import torch``.

Each measurement is a fresh process timed from its spawn: ``python -c "import torch"``
(the floor every fedsim process pays), and the quickstart CLI run up to the instant its
server starts round 1 (a hook prints the time and ends the process there). Both are
repeated and the minimum kept (the machine is shared). Also reports which of seaborn,
matplotlib, scipy.stats and pandas that process had imported by then, and the time to
generate the synthetic data set of ``--rows`` rows.

    python benchmarks/bench_startup.py [--quick] [--repeats 5] [--rows 206000]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEAVY = ("seaborn", "matplotlib", "scipy.stats", "pandas")
FIRST_ROUND = """
import json, os, sys, time
from fedsim.fl import server
def first_round(self):
    print(json.dumps({{"t": time.time(), "heavy": [m for m in {heavy!r} if m in sys.modules]}}), flush=True)
    os._exit(0)
server.Server.play_round = first_round
sys.argv = ["fedsim", "scenarios=quickstart", "hydra.run.dir={out}", "hydra.output_subdir=null"]
from fedsim.cli import main
main()
"""


def spawn_to_end(args: list[str]) -> tuple[float, str]:
    """Seconds from spawning ``args`` to its exit, and its stdout."""
    t0 = time.time()
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return time.time() - t0, out


def spawn_to_first_round(out_dir: str) -> tuple[float, list[str]]:
    """Seconds from spawning the quickstart to the start of its round 1, and the heavy modules imported by then."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", FIRST_ROUND.format(heavy=HEAVY, out=out_dir)], capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the quickstart did not reach round 1:\n{proc.stderr[-2000:]}")
    seen = json.loads(lines[-1])
    return seen["t"] - t0, seen["heavy"]


def data_seconds(rows: int) -> float:
    """Seconds to generate ``rows`` synthetic rows (in this process, after a warm-up)."""
    from fedsim.data.synthetic import make_synthetic

    make_synthetic(n_samples=1000)
    t0 = time.perf_counter()
    make_synthetic(n_samples=rows)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rows", type=int, default=206_000)
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    print(f"# load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    import tempfile

    torch_s, start_s, heavy = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):  # interleaved, so both see the same load
            torch_s.append(spawn_to_end([sys.executable, "-c", "import torch"])[0])
            t, heavy = spawn_to_first_round(tmp)
            start_s.append(t)
    out = {"import_torch_s": min(torch_s), "to_first_round_s": min(start_s), "beyond_torch_s": min(start_s) - min(torch_s),
           "heavy_imported": heavy, "data_rows": args.rows, "data_s": data_seconds(1000 if args.quick else args.rows)}
    print(f"python -c 'import torch': {out['import_torch_s']:.2f} s; quickstart to round 1: {out['to_first_round_s']:.2f} s; "
          f"beyond torch: {out['beyond_torch_s']:.2f} s (target ≤ 1.5 s); heavy modules imported by then: {', '.join(heavy) or 'none'}; "
          f"{out['data_rows']} synthetic rows: {out['data_s']:.2f} s")
    return out


if __name__ == "__main__":
    main()
