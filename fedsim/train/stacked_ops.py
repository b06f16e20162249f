"""Autograd operations on K stacked clients that round exactly as one client's torch calls do.

:mod:`fedsim.train.batched` trains many clients as one computation and promises the
sequential path's results; these three pieces are where that promise is kept: the
memory layout of a stacked tensor (:func:`rowwise`), the linear layer
(:class:`StackedLinear`) and the loss (:class:`StackedBCE`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def rowwise(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` whose clients (rows of the leading axis) are one element apart in memory.

    torch runs an elementwise op on a contiguous tensor as one flat loop: vectorised
    body, scalar tail. Stacked, a client's elements would fall on other body/tail
    boundaries than alone, and vector and scalar code round some ops differently
    (``lerp``, ``addcmul``, ``addcdiv``, ``sigmoid``). With a gap between rows the
    dimensions cannot be merged, so each client's row is its own loop, as when alone.
    """
    k, n = t.shape[0], t[0].numel()
    base = torch.empty(k, n + 1, dtype=t.dtype, device=t.device)
    view = base[:, :n].view(t.shape)
    view.copy_(t)
    return view


TINY_MACS = 400  # below this many multiply-adds per client, torch's bmm uses its own naive loop


class StackedLinear(torch.autograd.Function):
    """``x @ wᵀ + b`` per client, rounding exactly as ``F.linear`` and its backward do.

    With ``exact`` (and for products under ``TINY_MACS`` multiply-adds, where torch's
    ``bmm`` uses a naive kernel) each client runs the very ``addmm``/``mm`` calls of
    ``F.linear`` and its backward, so results are bitwise those of the sequential path.
    Otherwise one ``bmm`` per product: same maths, but CPU gemm picks its blocking by
    shape and layout, so results differ in the last bits (≈1e-7 relative). That is
    harmless without BatchNorm; with it, Adam turns last-bit noise in the gradients of
    BatchNorm-shadowed biases (true gradient 0) into steps of up to ``lr``, so models
    with BatchNorm are stacked in exact mode. The weight gradient is ``gᵀ @ x`` as in
    ``F.linear``'s backward (autograd of ``baddbmm`` would form ``xᵀ @ g``).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, exact: bool, dtype: torch.dtype | None = None) -> torch.Tensor:  # noqa: D102
        ctx.dtypes = x.dtype, w.dtype  # gradients go back in these (the casts autocast makes in F.linear)
        if dtype is not None:
            x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
        ctx.save_for_backward(x, w)
        ctx.tiny = exact or x.shape[1] * x.shape[2] * w.shape[1] < TINY_MACS
        if ctx.tiny:
            return torch.stack([torch.addmm(b[k], x[k], w[k].t()) for k in range(len(x))])
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: D102
        x, w = ctx.saved_tensors
        g = g.contiguous()  # reductions over a strided view round differently
        if ctx.tiny:
            gx = torch.stack([g[k].mm(w[k]) for k in range(len(g))]) if ctx.needs_input_grad[0] else None
            gw = torch.stack([g[k].t().mm(x[k]) for k in range(len(g))])
        else:
            gx = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
            gw = torch.bmm(g.transpose(1, 2), x)
        x_dtype, w_dtype = ctx.dtypes
        return None if gx is None else gx.to(x_dtype), gw.to(w_dtype), g.sum(1).to(w_dtype), None, None


class StackedBCE(torch.autograd.Function):
    """Each client's mean binary cross-entropy on logits, with torch's backward rounding.

    ``F.binary_cross_entropy_with_logits(..., reduction="mean")`` differentiates as
    ``(σ(z) − y)·g / n``; a ``"none"`` loss followed by ``mean`` would give
    ``(σ(z) − y)·(g/n)``, which differs in the last bit when n is not a power of two.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: D102
        z, y = rowwise(z), rowwise(y)
        ctx.save_for_backward(z, y)
        return F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(1)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: D102
        z, y = ctx.saved_tensors
        return (z.sigmoid() - y).mul_(g.unsqueeze(1)).div_(z.shape[1]), None
