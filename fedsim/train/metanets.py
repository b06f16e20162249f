"""FedL2P's two meta-networks, run from one flat parameter vector.

The server keeps the BN-net and the LR-net as a single float vector (one tensor to
average, step and send); these functions give it shape. Both nets are the authors'
shape (``BNNet`` / ``ClampLRNet`` in royson/fedl2p, ``src/models/weight_net.py``):
``Linear → ReLU → Linear → ReLU → Linear`` with a straight-through clamp on the output,

* BN-net: one input per BatchNorm layer (the client/global feature gap) to one mixing
  ratio β_l ∈ [0, 1] per BatchNorm layer;
* LR-net: two inputs (mean, std) per Linear/BatchNorm layer to one learning-rate
  multiplier ∈ [0, lr_max] per parameter tensor.

Initialisation (as the authors' ``weights_init``): weights Xavier-normal with a small
gain, and *every* bias set to a constant (0.5 in the BN-net, 1.0 in the LR-net), so
that at the start β ≈ 0.5 and multiplier ≈ 1, each within about ±0.1, away from the
clamp bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from fedsim.errors import FedsimError

BN_BIAS_INIT = 0.5  # β ≈ 0.5 at the start: half local, half global statistics
LR_BIAS_INIT = 1.0  # multiplier ≈ 1 at the start: fine-tune at the base learning rate


class _ClampSTE(torch.autograd.Function):
    """``clamp(x, 0, hi)`` forward, identity backward (the authors' ``ClampSTE``).

    Without the straight-through gradient a clamped output would stop learning for good.
    Written in the ``setup_context`` form so that ``torch.func`` transforms accept it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, hi: float) -> torch.Tensor:  # noqa: D102
        return x.clamp(0.0, hi)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: D102
        pass

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: D102
        return g, None


@dataclass(frozen=True)
class MetaShapes:
    """Widths of the two meta-nets for one model architecture."""

    n_bn: int  # BatchNorm layers: BN-net input and output width
    n_stats: int  # LR-net input width: (mean, std) of each Linear/BatchNorm layer's input
    n_lrs: int  # LR-net output width: parameter tensors of the model
    hidden: int  # width of both hidden layers

    def net_shapes(self) -> list[list[tuple[int, ...]]]:
        """Tensor shapes of each net, (W1, b1, W2, b2, W3, b3): the BN-net's, then the LR-net's."""
        h = self.hidden
        return [
            [(h, n_in), (h,), (h, h), (h,), (n_out, h), (n_out,)]
            for n_in, n_out in ((self.n_bn, self.n_bn), (self.n_stats, self.n_lrs))
        ]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Tensor shapes in flat order."""
        return [s for net in self.net_shapes() for s in net]

    @property
    def size(self) -> int:
        """Elements of the flat meta vector."""
        return sum(math.prod(s) for s in self.shapes)

    def split(self, meta_flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``meta_flat`` in :attr:`shapes`."""
        if meta_flat.shape != (self.size,):
            raise FedsimError(
                f"meta-net vector has shape {tuple(meta_flat.shape)}, this model and fedl2p hidden={self.hidden} need "
                f"({self.size},); restart the meta-nets from meta_init or match the model"
            )
        chunks = torch.split(meta_flat, [math.prod(s) for s in self.shapes])
        return [c.view(s) for c, s in zip(chunks, self.shapes)]


def init_meta(shapes: MetaShapes, gain: float, generator: torch.Generator) -> torch.Tensor:
    """A float32 meta vector: Xavier-normal weights (``gain``), every bias a net's constant."""
    out = []
    for net, bias in zip(shapes.net_shapes(), (BN_BIAS_INIT, LR_BIAS_INIT)):
        for shape in net:
            if len(shape) == 2:
                std = gain * math.sqrt(2.0 / (shape[0] + shape[1]))
                out.append(torch.randn(shape, generator=generator) * std)
            else:
                out.append(torch.full(shape, bias))
    return torch.cat([t.reshape(-1) for t in out]).to(torch.float32)


def _mlp(ws: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = F.relu(F.linear(x, ws[0], ws[1]))
    h = F.relu(F.linear(h, ws[2], ws[3]))
    return F.linear(h, ws[4], ws[5])


def run_meta(shapes: MetaShapes, meta_flat: torch.Tensor, gap: torch.Tensor, stats: torch.Tensor, lr_max: float) -> tuple[torch.Tensor, torch.Tensor]:
    """β per BatchNorm layer (from ``gap``) and LR multiplier per parameter tensor (from ``stats``)."""
    ws = shapes.split(meta_flat)
    betas = _ClampSTE.apply(_mlp(ws[:6], gap), 1.0)
    multipliers = _ClampSTE.apply(_mlp(ws[6:], stats), lr_max)
    return betas, multipliers
