"""An executor that trains the clients of a round together, and the rule that picks one.

Client processes announce work when it starts (:meth:`BatchedExecutor.plan`) and ask
for its result when the simulated compute ends (``train``), as with
:class:`~fedsim.fl.executor.SequentialExecutor`. At the first ``train`` call after some
plans, every planned job is trained in one stacked computation
(:func:`fedsim.train.batched.train_stacked`) and the results are kept until asked for,
so the SimPy processes still receive them at their modelled times. A job planned with
a ``useful_stop`` (its failure is already drawn to strike before the later segments
end) is trained only that far. ``train`` for a job that was never planned, or whose
start state differs from the planned one, falls back to the sequential path, so the
results never depend on planning.

Two stacked paths: the exact :class:`~fedsim.train.batched.StackedMLP` (bit for bit
the sequential results, the anomaly DNN only) where
:func:`~fedsim.train.batched.stack_support` allows it, else
:class:`~fedsim.train.functional.FunctionalStack` (any functional model under
``vmap``, equal up to float32 rounding) where
:func:`~fedsim.train.functional.functional_support` does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from fedsim.fl.executor import SequentialExecutor
from fedsim.fl.messages import FitIns
from fedsim.train import personalize
from fedsim.train.batched import Job, StackedMLP, Stacker, Trajectory, stack_support, train_stacked
from fedsim.train.flat import FlatLayout
from fedsim.train.functional import FunctionalStack, functional_support
from fedsim.train.local import LocalSpec, TrainResult, TrainState

CPU_STACK_MAX_FLOPS = 50e6  # per client-step; above this a CPU gemm is already efficient alone (exact path)
CPU_VMAP_MAX_FLOPS = 10e6  # per client-step; above this vmap is no faster than one client at a time on CPU (vmap path)
VMAP_MIN_PARALLEL = 4.0  # mean clients per vmapped step below which a round trains one client at a time: a vmapped step of a
# small model costs 1.1-1.4 ms, a sequential one 0.33 ms (logistic regression, batch 10, one thread, AMD EPYC), so vmap
# pays from ~4 clients stepping together; clients of very unequal sizes (FedProx's power-law devices) step mostly alone


@dataclass(frozen=True)
class _Planned:
    client: int
    job: Job


class BatchedExecutor(SequentialExecutor):
    """Trains every planned job of a round in one stacked computation; same interface as the sequential one."""

    def __init__(
        self,
        model: nn.Module,
        layout: FlatLayout,
        data: Sequence[tuple[torch.Tensor, torch.Tensor]],
        spec: LocalSpec,
        *,
        max_group: int = 256,
        skip_discarded: bool = True,
        net: Stacker | None = None,
        min_parallel: float = 0.0,
    ) -> None:
        super().__init__(model, layout, data, spec)
        if net is None:
            net, path = stacker(model, layout, spec, sample(self.data))
            if net is None:
                raise ValueError(f"BatchedExecutor: {path}")
        self.net = net  # the stacked trainer (see stacker)
        self.min_parallel = min_parallel  # vmap path: a round whose clients would step together fewer times on average trains one at a time
        self.max_group = max_group  # clients per stacked computation (bounds memory)
        self.skip_discarded = skip_discarded  # train nothing a drawn failure will throw away
        self.pending: list[_Planned] = []
        self.done: dict[tuple[int, int], Trajectory] = {}
        self.pending_meta: list[tuple[int, int]] = []  # (client, seed) of FedL2P meta steps planned for ``meta_fit``
        self.meta_fit: FitIns | None = None
        self.meta_done: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.stats = {"planned": 0, "skipped": 0, "stacked": 0, "fallback": 0, "batches": 0}

    def plan(
        self,
        client: int,
        start: TrainState,
        *,
        seed: int,
        stop_step: int,
        snapshots: Sequence[int] = (),
        useful_stop: int | None = None,
        fit: FitIns | None = None,
    ) -> None:
        """Announce that ``client`` will ask for training from ``start`` to ``stop_step`` (and the states at ``snapshots``).

        ``useful_stop``: the last step whose result will be asked for (a failure is
        drawn to strike first); with ``skip_discarded`` nothing beyond it is trained.
        """
        if self.skip_discarded and useful_stop is not None:
            stop_step = min(stop_step, useful_stop)
        if stop_step <= start.step:
            self.stats["skipped"] += 1
            return
        x, y = self.data[client]
        snaps = tuple(s for s in snapshots if start.step < s < stop_step)
        mu = fit.prox_mu if fit is not None else 0.0
        job = Job(x=x, y=y, start=start, seed=seed, stop_step=stop_step, snapshots=snaps, anchor=fit.flat if mu else None, prox_mu=mu)
        self.pending.append(_Planned(client, job))
        self.stats["planned"] += 1

    def train(self, client: int, start: TrainState, *, seed: int, stop_step: int, fit: FitIns | None = None) -> TrainResult:
        """The result of training ``client`` from ``start`` to ``stop_step``: from the stacked run when planned."""
        hit = self._lookup(client, start, seed, stop_step)
        if hit is None and any(p.client == client and p.job.seed == seed for p in self.pending):
            self._run_pending()
            hit = self._lookup(client, start, seed, stop_step)
        if hit is None:
            self.stats["fallback"] += 1
            return super().train(client, start, seed=seed, stop_step=stop_step, fit=fit)
        return hit

    def plan_meta(self, client: int, fit: FitIns, *, seed: int) -> None:
        """Announce a FedL2P meta step of ``client`` under ``fit``; all of a round's are computed together."""
        if fit is not self.meta_fit:
            self.meta_fit, self.pending_meta, self.meta_done = fit, [], {}
        self.pending_meta.append((client, seed))

    def meta_gradient(self, client: int, fit: FitIns, *, seed: int) -> dict[str, torch.Tensor]:
        """The planned meta steps of the round in one ``vmap`` (≤ ``max_group`` clients at a time); else one client."""
        if fit is self.meta_fit and (client, seed) in self.pending_meta:
            t0 = time.perf_counter()
            p = fit.personalize
            assert p is not None
            todo, self.pending_meta = self.pending_meta, []
            for lo in range(0, len(todo), self.max_group):
                chunk = todo[lo : lo + self.max_group]
                out = personalize.meta_gradient_many(
                    self.model, self.layout, fit.flat, p.meta, [self.data[c] for c, _ in chunk], spec=p.spec, seeds=[s for _, s in chunk]
                )
                for key, (loss, grad) in zip(chunk, out):
                    self.meta_done[key] = {"meta_grad": grad, "meta_loss": torch.tensor(loss)}
            self.wall_s += time.perf_counter() - t0
        hit = self.meta_done.pop((client, seed), None) if fit is self.meta_fit else None
        return hit if hit is not None else super().meta_gradient(client, fit, seed=seed)

    def personalize_all(self, clients: Sequence[int], fit: FitIns, seeds: Sequence[int]) -> list[torch.Tensor]:
        """Every client's personalisation in ``vmap`` chunks of ``max_group`` (equal to one at a time up to float32 summation order)."""
        p = fit.personalize
        assert p is not None
        out: list[torch.Tensor] = []
        for lo in range(0, len(clients), self.max_group):
            chunk = list(clients[lo : lo + self.max_group])
            data = [self.data[c] for c in chunk]
            out += personalize.personalize_many(self.model, self.layout, fit.flat, p.meta, data, spec=p.spec, seeds=list(seeds[lo : lo + self.max_group]))
        return out

    def _lookup(self, client: int, start: TrainState, seed: int, stop_step: int) -> TrainResult | None:
        traj = self.done.get((client, seed))
        if traj is None or stop_step not in traj.states:
            return None
        if start.step == traj.start.step:
            same = start.flat is traj.start.flat or torch.equal(start.flat, traj.start.flat)
        else:
            mid = traj.states.get(start.step)
            same = mid is not None and (start.flat is mid.flat or torch.equal(start.flat, mid.flat))
        if not same:
            return None
        self.stats["stacked"] += 1
        result = traj.result(start.step, stop_step)
        if stop_step == max(traj.states):
            del self.done[(client, seed)]  # its last segment: nothing more will be asked of it
        return result

    def _run_pending(self) -> None:
        """Train every pending job, grouped by start step, ``max_group`` clients at a time."""
        t0 = time.perf_counter()
        pending, self.pending = self.pending, []
        by_step: dict[tuple[int, float], list[_Planned]] = {}
        for p in pending:
            by_step.setdefault((p.job.start.step, p.job.prox_mu), []).append(p)
        for group in by_step.values():
            for lo in range(0, len(group), self.max_group):
                chunk = group[lo : lo + self.max_group]
                if isinstance(self.net, FunctionalStack) and parallelism(chunk) < self.min_parallel:
                    continue  # the long tail of one client's steps runs faster one client at a time: train() falls back
                for p, traj in zip(chunk, train_stacked(self.model, self.layout, [p.job for p in chunk], spec=self.spec, stacked=self.net)):
                    self.done[(p.client, p.job.seed)] = traj
                self.stats["batches"] += 1
        self.wall_s += time.perf_counter() - t0


def parallelism(chunk: Sequence[_Planned]) -> float:
    """Mean number of clients stepping together when ``chunk`` is trained stacked: all steps over the longest job's."""
    steps = [p.job.stop_step - p.job.start.step for p in chunk]
    return sum(steps) / max(steps)


def stacker(model: nn.Module, layout: FlatLayout, spec: LocalSpec, sample: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[Stacker | None, str]:
    """The stacked trainer for ``model`` under ``spec`` and its path (``"exact"``, ``"vmap"``), or None and why neither.

    ``sample``: a client's rows, on which one vmapped step is tried (see :func:`functional_support`).
    """
    if stack_support(model, spec) is None:
        return StackedMLP(model, layout, spec), "exact"
    reason = functional_support(model, spec, sample)
    if reason is not None:
        return None, f"vmap cannot: {reason}"
    return FunctionalStack(model, layout, spec), "vmap"


def sample(data: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first client's rows that make a batch (two or more), to try a step or count FLOPs on; None if no client has them."""
    return next(((x, y) for x, y in data if len(x) > 1), None)


def step_flops(layout: FlatLayout, batch_size: int) -> float:
    """Rough multiply-add count ×2 of one training step (forward + backward ≈ 3 passes)."""
    return 6.0 * layout.size * batch_size


@torch.no_grad()
def measured_step_flops(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds ×2 of one training step on the rows ``x``: 3 × a forward pass's linear and convolution layers.

    Parameter count × rows (:func:`step_flops`) undercounts a convolution, whose weights
    are applied at every position; this counts what runs, in one eval-mode forward.
    """
    total = 0.0

    def count(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Linear):
            total += 2.0 * m.weight.numel() * out.numel() / m.out_features
        elif m.transposed:  # weights applied at every input position
            total += 2.0 * m.weight.numel() * inputs[0].numel() / m.in_channels
        else:
            total += 2.0 * m.weight.numel() * out.numel() / m.out_channels

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Linear, _ConvNd))]
    was = model.training
    try:
        model.eval()
        model(x)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return 3.0 * total


def choose_executor(
    model: nn.Module,
    layout: FlatLayout,
    data: Sequence[tuple[torch.Tensor, torch.Tensor]],
    spec: LocalSpec,
    *,
    device: torch.device | str = "cpu",
    batched: bool | str = "auto",
    asynchronous: bool = False,
) -> tuple[SequentialExecutor, str]:
    """The executor for ``model`` on ``device`` and a one-line reason that names the path.

    Under an ``asynchronous`` strategy clients start at their own times, and which of them
    a vmapped step stacks together depends on when the run started (a resumed run replays
    only the tasks in flight): vmap's float32 rounding depends on that grouping, so such a
    run trains one client at a time and resumes bit for bit. The exact path's results do not
    depend on grouping.

    ``batched``: ``True``/``False`` force the path (``True`` still needs a model one of
    the stacked paths takes). ``"auto"``: the exact path (see :class:`BatchedExecutor`)
    stacks when the device is a GPU or one client-step is small enough (≤
    ``CPU_STACK_MAX_FLOPS``) that a CPU spends it in per-op overhead rather than in gemm
    (measured: the paper's DNN is no faster stacked on CPU, the small MLP is; see
    benchmarks/RESULTS.md). The vmap path stacks on a GPU, and on a CPU when one
    client-step, counted by :func:`measured_step_flops` on a client's rows, is ≤
    ``CPU_VMAP_MAX_FLOPS``. Measured with ``benchmarks/bench_functional.py`` (16 clients
    × 200 rows, batch 32, one epoch, SGD; 2-core AMD EPYC shared with other jobs, load
    4–6, one torch thread, best of 3–7): vmap was 3.7–4.9× faster than one client at a
    time at 0.1–0.6 MFLOP per client-step (logistic regression 64→10, MLP 64-32-32-10,
    4-channel CNN on 8×8), 1.6–2.7× at 2–5 MFLOP (16/32-channel CNNs on 8×8, MLP
    64-128-128-10), 1.0–2.0× at 9 MFLOP (64-channel CNN on 8×8), 1.0–1.3× at 14 MFLOP
    (8-channel CNN on 28×28: vmap runs grouped convolutions), 1.3–2.4× at 16 and 1.0×
    at 58 MFLOP (MLPs 64-256-256-10, 64-512-512-10), 0.9× at 216 MFLOP (MLP
    64-1024-1024-10) and 0.5× at 55 MFLOP (32-channel CNN on 28×28). With two threads
    on the loaded machine vmap won by more (fewer thread barriers per client), so the
    limit, 10 MFLOP, is below where it stopped winning with one.
    """
    seq = SequentialExecutor(model, layout, data, spec)
    if batched is False or batched == "false":
        return seq, "sequential (compute.batched=false)"
    forced = batched is True or batched == "true"
    kind = torch.device(device).type
    exact = stack_support(model, spec)
    if exact is None:
        flops = step_flops(layout, spec.batch_size)
        if forced:
            return BatchedExecutor(model, layout, data, spec), "batched (compute.batched=true; exact stacked MLP)"
        if kind != "cpu":
            return BatchedExecutor(model, layout, data, spec), f"batched (auto: {kind} device; exact stacked MLP)"
        if flops <= CPU_STACK_MAX_FLOPS:
            return BatchedExecutor(model, layout, data, spec), f"batched (auto: {flops / 1e6:.1f} MFLOP per client-step on cpu ≤ {CPU_STACK_MAX_FLOPS / 1e6:.0f}; exact stacked MLP)"
        return seq, f"sequential (auto: {flops / 1e6:.0f} MFLOP per client-step on cpu > {CPU_STACK_MAX_FLOPS / 1e6:.0f}; stacking does not pay)"
    rows = sample(data)
    reason = functional_support(model, spec, rows)
    if reason is not None:
        if forced:
            raise ValueError(f"compute.batched=true but {exact}, and vmap cannot: {reason}")
        return seq, f"sequential (vmap cannot: {reason})"
    if asynchronous:
        return seq, "sequential (vmap: an asynchronous strategy's clients start one at a time; trained alone, a resumed run is bit-identical)"
    net = FunctionalStack(model, layout, spec)
    if forced:
        return BatchedExecutor(model, layout, data, spec, net=net), "batched (vmap: compute.batched=true)"
    vmapped = BatchedExecutor(model, layout, data, spec, net=net, min_parallel=VMAP_MIN_PARALLEL)
    if kind != "cpu":
        return vmapped, f"batched (vmap: auto: {kind} device)"
    flops = measured_step_flops(model, rows[0][: spec.batch_size]) if rows is not None else step_flops(layout, spec.batch_size)
    limit = f"{CPU_VMAP_MAX_FLOPS / 1e6:g}"
    if flops <= CPU_VMAP_MAX_FLOPS:
        return vmapped, f"batched (vmap: auto: {flops / 1e6:.2f} MFLOP per client-step on cpu ≤ {limit})"
    return seq, f"sequential (vmap: auto: {flops / 1e6:.1f} MFLOP per client-step on cpu > {limit}; vmap does not pay)"
