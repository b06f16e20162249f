"""vmap (FunctionalStack) vs one client at a time (local_train): where stacking pays on this CPU.

Training only (no engine): K clients, one epoch each, 10-class classification, SGD,
for models of growing cost per client-step; prints the MFLOP per client-step that
``choose_executor``'s vmap rule reads (``measured_step_flops``) and both timings.

    python benchmarks/bench_functional.py [--quick] [--repeats 3] [--clients 16] [--rows 200] [--batch 32]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.workload import best_of, common_args, setup, timed  # noqa: E402
from fedsim.fl.batched_executor import measured_step_flops  # noqa: E402
from fedsim.tasks import Classification  # noqa: E402
from fedsim.train.batched import Job, train_stacked  # noqa: E402
from fedsim.train.flat import FlatLayout  # noqa: E402
from fedsim.train.functional import FunctionalStack  # noqa: E402
from fedsim.train.local import LocalSpec, TrainState, local_train, steps_per_epoch  # noqa: E402


def mlp(h: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 10))


def cnn(c: int, side: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c * (side // 2) ** 2, 10))


MODELS = {
    "logreg": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), 8),
    **{f"mlp{h}": (lambda h=h: mlp(h), 8) for h in (32, 128, 256, 512, 1024)},
    **{f"cnn{c}": (lambda c=c: cnn(c), 8) for c in (4, 16, 32, 64)},
    **{f"cnn{c}@28": (lambda c=c: cnn(c, 28), 28) for c in (8, 32)},
}


def main(argv: list[str] | None = None) -> list[dict]:
    p = common_args(__doc__)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args(argv)
    setup(args)
    names = ["logreg", "cnn4"] if args.quick else args.models.split(",")
    spec = LocalSpec(batch_size=args.batch, lr=0.05, optimizer="sgd", momentum=0.9, task=Classification(num_classes=10))
    out = []
    print(f"{'model':10} {'MFLOP/step':>10} {'sequential s':>13} {'vmap s':>8} {'speed-up':>9}")
    for name in names:
        make, side = MODELS[name]
        torch.manual_seed(0)
        model = make()
        layout = FlatLayout.of(model)
        flat = layout.flatten(model)
        g = torch.Generator().manual_seed(1)
        data = [(torch.randn(args.rows, 1, side, side, generator=g), torch.randint(0, 10, (args.rows,), generator=g)) for _ in range(args.clients)]
        stop = steps_per_epoch(args.rows, args.batch)
        jobs = [Job(x=x, y=y, start=TrainState(flat), seed=i, stop_step=stop) for i, (x, y) in enumerate(data)]
        net = FunctionalStack(model, layout, spec)
        train_stacked(model, layout, jobs[:2], spec=spec, stacked=net)  # warm-up
        seq = best_of(lambda: timed(lambda: [local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=i, stop_step=stop) for i, (x, y) in enumerate(data)])[0], args.repeats)
        vm = best_of(lambda: timed(lambda: train_stacked(model, layout, jobs, spec=spec, stacked=net))[0], args.repeats)
        flops = measured_step_flops(model, data[0][0][: args.batch])
        print(f"{name:10} {flops / 1e6:10.2f} {seq:13.3f} {vm:8.3f} {seq / vm:8.2f}×")
        out.append({"model": name, "mflop": flops / 1e6, "sequential_s": seq, "vmap_s": vm, "speedup": seq / vm})
    return out


if __name__ == "__main__":
    main()
