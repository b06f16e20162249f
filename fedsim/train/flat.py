"""A model's whole state (parameters and buffers) as one flat float vector.

Aggregation, checkpoints and messages all move flat vectors: one tensor op to
average, one buffer to serialise, and the byte size of a message is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FlatLayout:
    """Where each state_dict entry lives in the flat vector."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    dtypes: tuple[torch.dtype, ...]
    numels: tuple[int, ...]

    @classmethod
    def of(cls, module: nn.Module) -> FlatLayout:
        """The layout of ``module.state_dict()``."""
        sd = module.state_dict()
        return cls(
            names=tuple(sd),
            shapes=tuple(t.shape for t in sd.values()),
            dtypes=tuple(t.dtype for t in sd.values()),
            numels=tuple(t.numel() for t in sd.values()),
        )

    @property
    def size(self) -> int:
        """Number of elements in the flat vector."""
        return sum(self.numels)

    def nbytes(self) -> int:
        """Bytes on the wire: each entry at its own dtype's width."""
        return sum(n * torch.empty((), dtype=d).element_size() for n, d in zip(self.numels, self.dtypes))

    def flatten(self, module: nn.Module) -> torch.Tensor:
        """The module's state as a new float32 vector."""
        return self.flatten_state(module.state_dict())

    def flatten_state(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """A state dict (in this layout's order) as a new float32 vector."""
        return torch.cat([state[name].detach().reshape(-1).to(torch.float32) for name in self.names])

    def views(self, flat: torch.Tensor, names: list[str]) -> list[torch.Tensor]:
        """The entries ``names`` of ``flat`` as views in their own shapes (no copy)."""
        where = dict(zip(self.names, zip(torch.split(flat, self.numels), self.shapes)))
        return [where[n][0].view(where[n][1]) for n in names]

    def param_mask(self, module: nn.Module) -> torch.Tensor:
        """True at the positions of ``module``'s trainable parameters, False at its buffers."""
        params = {n for n, _ in module.named_parameters()}
        return torch.cat([torch.full((k,), name in params, dtype=torch.bool) for name, k in zip(self.names, self.numels)])

    def load(self, module: nn.Module, flat: torch.Tensor) -> None:
        """Copy ``flat`` into the module's state in place (integer buffers are rounded)."""
        sd = module.state_dict()
        for name, chunk in zip(self.names, torch.split(flat, self.numels)):
            target = sd[name]
            if target.dtype.is_floating_point:
                target.copy_(chunk.view(target.shape))
            else:
                target.copy_(chunk.round().view(target.shape).to(target.dtype))
