"""K clients' training state stacked along a leading client axis, and torch's optimisers on it.

Both stacked trainers (:mod:`fedsim.train.batched`, exact, and
:mod:`fedsim.train.functional`, vmap) keep parameters, buffers and optimiser state of
K clients in one tensor per entry, step the optimiser of :class:`~fedsim.train.local.LocalSpec`
on the stacks as :mod:`fedsim.train.optim` (torch's single-tensor implementation, op for
op) does one client, and hand each client's optimiser state back in torch's
``state_dict`` format, so a checkpoint moves freely between the stacked and the
sequential path. Parameters and optimiser state are laid out by :func:`rowwise`, so
the elementwise updates round per client as they do alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState
from fedsim.train.optim import adam_, sgd_, state_keys, torch_state
from fedsim.train.stacked_ops import rowwise


class Stacks:
    """Parameters, buffers and optimiser state (by torch's key, one stack per parameter) of K clients.

    ``anchors`` (FedProx) are the parameters of each client's proximal anchor; they are
    read, never written.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        buffers: list[torch.Tensor],
        state: dict[str, list[torch.Tensor]],
        anchors: list[torch.Tensor] | None = None,
    ) -> None:
        self.params, self.buffers, self.state = params, buffers, state
        self.anchors = anchors or []

    def take(self, idx: torch.Tensor) -> Stacks:
        """Copies of the rows ``idx``."""
        pick = lambda ts: [rowwise(t.index_select(0, idx)) for t in ts]  # noqa: E731
        params = [q.requires_grad_(p.requires_grad) for p, q in zip(self.params, pick([p.detach() for p in self.params]))]
        buffers = [t.index_select(0, idx) for t in self.buffers]
        return Stacks(params, buffers, {key: pick(ts) for key, ts in self.state.items()}, pick(self.anchors))

    def put(self, idx: torch.Tensor, sub: Stacks) -> None:
        """Write ``sub`` back into rows ``idx``."""
        with torch.no_grad():
            for mine, theirs in zip(self._written(), sub._written()):
                mine.index_copy_(0, idx, theirs.detach())

    def _written(self) -> list[torch.Tensor]:
        return self.params + self.buffers + [t for ts in self.state.values() for t in ts]


def entries(layout: FlatLayout, flats: torch.Tensor, names: Sequence[str]) -> list[torch.Tensor]:
    """The entries ``names`` of the stacked flat vectors ``flats`` (K, size), each a new (K, *shape) tensor."""
    where = dict(zip(layout.names, zip(torch.split(flats, layout.numels, dim=1), layout.shapes)))
    return [where[n][0].reshape(len(flats), *where[n][1]).clone() for n in names]


def stack_state(spec: LocalSpec, starts: Sequence[TrainState], params: Sequence[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """The optimiser state of each start, stacked like ``params``; zeros where a start has none.

    Zeros are exact for SGD too: a fresh momentum buffer is ``grad`` (torch clones it),
    and ``0·m + grad`` is ``grad``.
    """
    def stacked(i: int, p: torch.Tensor, key: str) -> torch.Tensor:
        rows = [s.optimizer["state"][i][key] if s.optimizer and i in s.optimizer["state"] else torch.zeros_like(p[0]) for s in starts]
        return rowwise(torch.stack(rows).to(p))

    return {key: [stacked(i, p, key) for i, p in enumerate(params)] for key in state_keys(spec)}


def export_state(spec: LocalSpec, st: Stacks, j: int, steps: int) -> dict | None:
    """Client ``j``'s optimiser state after ``steps`` steps in torch's ``state_dict`` format (own tensors); None before any."""
    if not steps:
        return None
    keys, n = state_keys(spec), len(st.params)
    buffers = {i: {key: st.state[key][i][j].clone() for key in keys} for i in range(n)} if keys else {}
    return torch_state(spec, buffers, dict.fromkeys(buffers, steps), n)


def proximal(grads: Sequence[torch.Tensor], st: Stacks, mu: float) -> list[torch.Tensor]:
    """FedProx: each gradient plus μ·(w − anchor), as local_train adds it, one client row at a time."""
    out = []
    for g, p, a in zip(grads, st.params, st.anchors):
        grad = rowwise(g)
        grad.add_(rowwise(p.detach() - a), alpha=mu)
        out.append(grad)
    return out


def optimizer_step(spec: LocalSpec, st: Stacks, grads: Sequence[torch.Tensor], step: int) -> None:
    """One step of ``spec``'s optimiser on the stacks (``step``: Adam's 1-based step count)."""
    with torch.no_grad():
        params = [p.detach() for p in st.params]
        if spec.optimizer == "adam":
            adam_(params, list(grads), st.state["exp_avg"], st.state["exp_avg_sq"], lr=spec.lr, step=step)
        else:
            sgd_(params, list(grads), st.state.get("momentum_buffer", []), lr=spec.lr, momentum=spec.momentum)
