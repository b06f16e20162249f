"""Builder for the failure side of a fleet: per-client laws of a mixed fleet, and the τ rule of ``auto``/``adaptive``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fedsim.config import TAU_RULES, Config
from fedsim.fl.recovery import TauRule
from fedsim.seeding import rng
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.sim.fleet import assign_groups

if TYPE_CHECKING:
    from fedsim.checkpoint.adaptive import Law


def client_groups(cfg: Config) -> np.ndarray:
    """Each client's index into ``failure.groups`` (stream ``failure-group``: the same for every method)."""
    shares = [g.share for g in cfg.failure.groups]
    return assign_groups(cfg.data.num_clients, shares, rng(cfg.run.seed, "failure-group"))


def client_laws(cfg: Config) -> list[Law]:
    """Each client's true failure law: its group's, or ``failure.shape``/``scale`` for everyone."""
    from fedsim.checkpoint.adaptive import Law  # scipy: only for mixed fleets and τ rules

    f = cfg.failure
    if not f.groups:
        return [Law(f.shape, f.scale)] * cfg.data.num_clients
    return [Law(f.groups[g].shape, f.groups[g].scale) for g in client_groups(cfg)]


def client_failure_models(cfg: Config) -> tuple[FailureModel, ...]:
    """Per-client failure clocks of a mixed fleet (empty without ``failure.groups``: one law for all)."""
    f = cfg.failure
    if not (f.clients and f.groups):
        return ()
    repair = repair_sampler(f.repair, f.repair_mean_s, f.repair_cv)
    return tuple(FailureModel(law.shape, law.scale, repair) for law in client_laws(cfg))


def configured_law(cfg: Config) -> Law | None:
    """The failure law ``auto`` and the adaptive prior start from: the fleet's (:func:`fleet_law`); None without client clocks."""
    from fedsim.checkpoint.adaptive import Law, fleet_law

    f = cfg.failure
    if not f.clients:
        return None
    if not f.groups:
        return Law(f.shape, f.scale)
    return fleet_law([g.share for g in f.groups], [g.shape for g in f.groups], [g.scale for g in f.groups])


def tau_rule(cfg: Config) -> TauRule | None:
    """The τ rule for ``checkpoint.tau_s=auto|adaptive`` (None for a fixed τ or with checkpointing off)."""
    c = cfg.checkpoint
    if not (c.enabled and c.tau_s in TAU_RULES):
        return None
    return TauRule(
        mode=c.tau_s,
        prior=configured_law(cfg),
        repair_mean_s=cfg.failure.repair_mean_s,
        model=c.model,
        refit_every=c.refit_every,
        refit_on=c.refit_on,
        min_failures=c.min_failures,
        prior_failures=c.prior_failures,
    )
