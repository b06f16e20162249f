"""FedL2P (Lee et al., NeurIPS 2023, "FedL2P: Federated Learning to Personalize").

The global model trains as in FedAvg. Alongside it the server keeps two small
meta-nets (:mod:`fedsim.train.metanets`) that tell each client how to personalise the
global model: a mixing ratio β per BatchNorm layer and a learning rate per parameter
tensor, from the client's own feature statistics. Every round each client also
returns the hypergradient of its meta-validation loss after fine-tuning
(:func:`fedsim.train.personalize.meta_gradient`); the server averages them, weighted by
the clients' training rows, clamps each coordinate to ±``clip`` and takes one SGD step,
as the authors do. Evaluation scores every client's personalised model on its own
test rows. Where fedsim's client side differs from the authors', the module
docstring of :mod:`fedsim.train.personalize` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from fedsim.errors import FedsimError
from fedsim.fl.aggregate import weighted_mean
from fedsim.fl.messages import FitIns, Personalization, Update
from fedsim.fl.strategies.fedavg import FedAvg
from fedsim.tasks import BinaryAnomalyDetection, Task
from fedsim.train.personalize import PersonalizeSpec, meta_init


class FedL2P(FedAvg):
    """FedAvg for the global model; meta-nets for personalisation, learned from clients' hypergradients."""

    def __init__(
        self, *, meta: torch.Tensor, spec: PersonalizeSpec, meta_lr: float = 0.01, clip: float = 1.0, fraction: float = 1.0, min_clients: int = 1
    ) -> None:
        super().__init__(fraction=fraction, min_clients=min_clients)
        self.meta, self.spec, self.meta_lr, self.clip = meta, spec, meta_lr, clip

    def configure_fit(self, rnd: int, current: torch.Tensor) -> FitIns:
        """The global state and the meta-nets: train, then return a hypergradient."""
        return FitIns(flat=current, personalize=Personalization(self.meta, self.spec))

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """FedAvg of the states; one clamped SGD step of the meta-nets along the averaged hypergradient."""
        with_grad = [u for u in updates if "meta_grad" in u.extras]
        if with_grad:
            g = weighted_mean([u.extras["meta_grad"] for u in with_grad], [u.num_samples for u in with_grad])
            self.meta = self.meta - self.meta_lr * g.clamp(-self.clip, self.clip)
        return super().aggregate(rnd, current, updates)

    def personalization(self, current: torch.Tensor) -> FitIns:
        """Clients personalise the global state with the meta-nets before they are scored."""
        return self.configure_fit(0, current)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The meta-nets' parameters."""
        return {"meta": self.meta.clone()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore the meta-nets."""
        self.meta = state["meta"].clone()


def fedl2p(
    *,
    model: torch.nn.Module,
    task: Task,
    seed: int,
    finetune_steps: int = 5,
    finetune_batch_size: int = 32,
    finetune_lr: float = 0.01,
    lr_max: float = 100.0,
    meta_lr: float = 0.1,
    meta_clip: float = 1.0,
    meta_hidden: int = 100,
    meta_val_fraction: float = 0.2,
    fraction: float = 1.0,
    min_clients: int = 1,
) -> FedL2P:
    """FedL2P for ``model`` from its config (``strategy=fedl2p``): meta-nets sized to the model, seeded from ``seed``."""
    if not isinstance(task, BinaryAnomalyDetection):
        raise FedsimError(f"strategy=fedl2p fine-tunes with binary cross-entropy: it needs task=binary_anomaly, not task={task.name}")
    spec = PersonalizeSpec(steps=finetune_steps, batch_size=finetune_batch_size, base_lr=finetune_lr, lr_max=lr_max, val_fraction=meta_val_fraction, hidden=meta_hidden)
    meta = meta_init(model, spec, seed).to(next(model.parameters()).device)
    return FedL2P(meta=meta, spec=spec, meta_lr=meta_lr, clip=meta_clip, fraction=fraction, min_clients=min_clients)
