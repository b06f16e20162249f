"""Time C(τ) on 200 τ values and the search for τ*, per failure model (target: < 1 s each on one core).

Run: ``python benchmarks/bench_cost.py`` (set OMP_NUM_THREADS=1 for one core). Setting: k = 0.7,
λ = 1, δ = 0.01, R = 0.02; minimal repair for a job of T = 1 (≈ 10 segments near τ*),
whose cost grows with T/τ (about T/τ* · 10 ms per C(τ)).
"""

from __future__ import annotations

import time

import numpy as np

from fedsim.checkpoint import expected_overhead, optimal_interval

TARGET_S = 1.0
SHAPE, SCALE, DELTA, RESTART, WORK = 0.7, 1.0, 0.01, 0.02, 1.0


def best_of(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` wall-clock runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Print one row per model: C(τ) on 200 τ, τ* search, and each as a fraction of the target."""
    taus = np.geomspace(0.01, 1.0, 200)
    print(f"{'model':<15}{'C(tau) x200 [s]':>17}{'ratio':>8}{'tau* [s]':>10}{'ratio':>8}{'tau*':>9}")
    for model in ("paper", "segment", "renewal", "minimal_repair"):
        curve = best_of(lambda: expected_overhead(taus, DELTA, RESTART, SHAPE, SCALE, model, WORK))
        search = best_of(lambda: optimal_interval(DELTA, RESTART, SHAPE, SCALE, model, WORK))
        tau = optimal_interval(DELTA, RESTART, SHAPE, SCALE, model, WORK).tau
        print(f"{model:<15}{curve:>17.4f}{curve / TARGET_S:>8.3f}{search:>10.4f}{search / TARGET_S:>8.3f}{tau:>9.4f}")


if __name__ == "__main__":
    main()
