"""Checkpoint intervals that tune themselves: τ* of the configured law (``auto``) or of each client's own (``adaptive``).

``auto`` sets every client's τ once, before the run, to τ* of the configured failure
law (a mixed fleet: :func:`~fedsim.checkpoint.adaptive.fleet_law`), with δ the
client's checkpoint cost and R = restart + mean repair time.

``adaptive`` gives each client an estimator (:class:`ClientTau`) that sits between
the client and its failure clock: it sees the instant the client goes down and the
instant it is back, keeps the up-times, refits k and λ
(:func:`~fedsim.checkpoint.adaptive.estimate_law`, the prior until ``min_failures``
own failures) and moves the client to the new τ*. It refits when the client is back
up after every ``refit_every``-th failure, or at the end of every ``refit_every``-th
round (then the current up-time enters censored); the client's next attempt asks for
its checkpoint stops under the new τ.

Who observes what. The fit runs on the client, from its own failures. A deployed
client can observe the same: it keeps its boot time and a last-alive timestamp
(written with each heartbeat or checkpoint) in local storage, so after a reboot the
up-time that just ended is known to within one heartbeat period, and the time since
boot is the current, censored one. The simulator hands the estimator exact instants,
an optimistic bound by at most that period. The server sees failures only through
heartbeat timeouts, late by the detection latency and only while the client is in
contact, so it could run the same fits on the client's behalf only with that blur.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import simpy

from fedsim.fl.recovery import Checkpointing, TauRule
from fedsim.sim.recorder import Recorder

if TYPE_CHECKING:
    import pandas as pd

    from fedsim.checkpoint.adaptive import Estimate

log = logging.getLogger(__name__)
MODES = ("auto", "adaptive")
REFIT_ON = ("failures", "rounds")
TAU_COLUMNS = ["time_s", "client", "source", "failures", "exposure_s", "shape", "scale", "tau_s", "delta_s", "restart_s", "model"]


class Tunable(Protocol):
    """What a client's τ estimator needs of the client: break and repair it, and set its checkpoint plan."""

    cid: int
    checkpointing: Checkpointing
    recorder: Recorder

    def fail(self) -> None: ...

    def repair(self) -> None: ...


class ClientTau:
    """One client's up-time log and τ; its failure clock breaks and repairs the client through it."""

    def __init__(self, env: simpy.Environment, node: Tunable, rule: TauRule, delta: float, restart: float, rows: list[dict]) -> None:
        self.env, self.node, self.rule = env, node, rule
        self.delta, self.restart, self.rows = delta, restart, rows
        self.uptimes: list[float] = []
        self.up, self.up_since, self.since_refit = True, 0.0, 0

    def fail(self) -> None:
        """The client goes down: an up-time ends."""
        self.uptimes.append(self.env.now - self.up_since)
        self.up = False
        self.node.fail()

    def repair(self) -> None:
        """The client is back up: refit (every ``refit_every`` failures) before it resumes."""
        self.up, self.up_since = True, self.env.now
        self.since_refit += 1
        if self.rule.refit_on == "failures" and self.since_refit >= self.rule.refit_every:
            self.refit()
        self.node.repair()

    def round_done(self, number: int) -> None:
        """A round ended: refit every ``refit_every`` rounds."""
        if self.rule.refit_on == "rounds" and number % self.rule.refit_every == 0:
            self.refit()

    def refit(self) -> None:
        """Estimate the law from the up-times so far (the current one censored) and move to its τ*."""
        self.since_refit = 0
        current = [self.env.now - self.up_since] if self.up else []
        censored = [False] * len(self.uptimes) + [True] * len(current)
        r = self.rule
        from fedsim.checkpoint.adaptive import estimate_law, tau_star  # scipy, only when τ adapts
        estimate = estimate_law([*self.uptimes, *current], censored, r.prior, min_failures=r.min_failures, prior_failures=r.prior_failures)
        self.move_to(tau_star(estimate.law if estimate else None, self.delta, self.restart, r.model), estimate)

    def move_to(self, tau: float, estimate: Estimate | None, source: str | None = None) -> None:
        """Give the client τ (from ``estimate``) for its next attempts, and record it."""
        law = estimate.law if estimate is not None else None
        self.node.checkpointing = dataclasses.replace(self.node.checkpointing, tau_s=tau)
        self.node.recorder.event("tau_refit", client=self.node.cid, value=tau)
        self.rows.append({
            "time_s": float(self.env.now),
            "client": self.node.cid,
            "source": source or (estimate.source if estimate is not None else "none"),
            "failures": estimate.failures if estimate is not None else 0,
            "exposure_s": estimate.exposure if estimate is not None else 0.0,
            "shape": law.shape if law is not None else float("nan"),
            "scale": law.scale if law is not None else float("nan"),
            "tau_s": tau,
            "delta_s": self.delta,
            "restart_s": self.restart,
            "model": self.rule.model,
        })


class Tuning:
    """Every client's τ under ``checkpointing.rule``; a no-op when τ is a fixed number."""

    def __init__(self, env: simpy.Environment, nodes: Sequence[Tunable], checkpointing: Checkpointing, checkpoint_bytes: int) -> None:
        self.rows: list[dict] = []
        self.clients: dict[int, ClientTau] = {}
        self.rule = rule = checkpointing.rule  # the same for every client
        if rule is None:
            return
        from fedsim.checkpoint.adaptive import Estimate, tau_star  # scipy, only when τ is a rule
        delta = checkpointing.cost(checkpoint_bytes)
        restart = checkpointing.restart_s + rule.repair_mean_s
        start = Estimate(rule.prior, "prior", 0, 0.0) if rule.prior is not None else None
        tau = tau_star(rule.prior, delta, restart, rule.model)  # the same for everyone at the start
        for node in nodes:
            self.clients[node.cid] = ClientTau(env, node, rule, delta, restart, self.rows)
            self.clients[node.cid].move_to(tau, start, source="auto" if rule.mode == "auto" else None)
        law = f"k = {rule.prior.shape:.4g}, λ = {rule.prior.scale:.4g} s" if rule.prior else "no client failures"
        log.info(
            "checkpoint.tau_s=%s: τ* = %.4g s from the %s model with %s, δ = %.4g s, R = %.4g s%s",
            rule.mode, tau, rule.model, law, delta, restart,
            f"; refit every {rule.refit_every} {rule.refit_on}, own fit after {rule.min_failures} failures" if rule.mode == "adaptive" else "",
        )

    def target(self, node: Tunable) -> Tunable | ClientTau:
        """What ``node``'s failure clock breaks: its estimator under ``adaptive``, else the client itself."""
        return self.clients[node.cid] if self.rule is not None and self.rule.mode == "adaptive" else node

    def on_round(self, then: Callable[[dict[str, object]], None] | None) -> Callable[[dict[str, object]], None] | None:
        """The server's per-round callback: round-based refits, then ``then``."""
        if self.rule is None or self.rule.mode != "adaptive" or self.rule.refit_on != "rounds":
            return then

        def hook(row: dict[str, object]) -> None:
            for client in self.clients.values():
                client.round_done(int(row["round"]))  # type: ignore[call-overload]
            if then is not None:
                then(row)

        return hook

    def table(self) -> pd.DataFrame:
        """One row per τ set: at the start, and at every refit."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=TAU_COLUMNS)
