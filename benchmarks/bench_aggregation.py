"""Wall seconds per update × parameter of fedsim's FedAvg aggregation: the default of ``run.aggregation_per_param_s``.

Times ``FedAvg.aggregate`` (float64 accumulation of float32 vectors) on updates the size
of the paper's DNN and of the small MLP, for several update counts, and prints the
slope of time against updates × parameters.

    python benchmarks/bench_aggregation.py [--quick] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.workload import best_of, common_args, make_model, setup  # noqa: E402
from fedsim.fl.messages import Update  # noqa: E402
from fedsim.fl.strategies import FedAvg  # noqa: E402
from fedsim.train.flat import FlatLayout  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = common_args(__doc__)
    p.add_argument("--updates", default="10,50,100")
    args = p.parse_args(argv)
    setup(args)
    counts = [2, 4] if args.quick else [int(n) for n in args.updates.split(",")]
    out: dict[str, float] = {}
    for name in ("mlp",) if args.quick else ("dnn", "mlp"):
        model = make_model(name)
        size = FlatLayout.of(model).size
        g = torch.Generator().manual_seed(0)
        rows = []
        for n in counts:
            updates = [Update(client=i, round=1, flat=torch.randn(size, generator=g), num_samples=100 + i, loss=0.0) for i in range(n)]

            def once() -> float:
                t0 = time.perf_counter()
                FedAvg().aggregate(1, updates[0].flat, updates)
                return time.perf_counter() - t0

            wall = best_of(once, args.repeats)
            rows.append((n * size, wall))
            print(f"{name}: {size} parameters × {n} updates: {wall * 1e3:.1f} ms ({wall / (n * size) * 1e9:.2f} ns per update-parameter)")
        work, wall = (np.array(c, dtype=float) for c in zip(*rows))
        slope = float(np.polyfit(work, wall, 1)[0]) if len(rows) > 1 else float(wall[0] / work[0])
        out[name] = slope
        print(f"{name}: slope {slope * 1e9:.2f} ns per update-parameter")
    return out


if __name__ == "__main__":
    main()
