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


def test_local_training_does_not_import_torch_dynamo():
    """torch.optim's first use imports torch._dynamo (seconds in every fresh process); fedsim's optimisers do not."""
    code = (
        "import sys, torch; from fedsim.train.flat import FlatLayout; from fedsim.train.local import LocalSpec, TrainState, local_train; "
        "model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)); layout = FlatLayout.of(model); "
        "x, y = torch.randn(32, 4), (torch.rand(32) > 0.5).float(); "
        "specs = [LocalSpec(batch_size=8, optimizer=o, momentum=0.5) for o in ('adam', 'sgd')]; "
        "out = [local_train(model, layout, TrainState(layout.flatten(model)), x, y, spec=s, seed=0, stop_step=3) for s in specs]; "
        "print('torch._dynamo' in sys.modules, out[0].state.step)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "3"]
