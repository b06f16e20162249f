"""A fast start: the CLI and the engine import no plotting, statistics or table library until they are used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("seaborn", "matplotlib", "scipy.stats", "scipy.optimize", "pandas")


def test_the_engine_and_cli_load_without_heavy_modules():
    code = (
        "import json, sys; import fedsim.cli, fedsim.experiments.run, fedsim.fl.simulation, fedsim.checkpoint.store; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_the_checkpoint_theory_still_imports_by_name():
    from fedsim import checkpoint

    assert checkpoint.optimal_interval.__module__ == "fedsim.checkpoint.cost" and callable(checkpoint.weibull_mean)
