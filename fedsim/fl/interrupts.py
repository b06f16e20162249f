"""Why a client's work stops: the cause an interrupt carries.

A failure clock, a link or the server interrupts a client's process (SimPy's
``process.interrupt(cause)``); the client reads the cause to decide what is lost and
what to log.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    """Interrupt cause: the client's node went down."""


@dataclass(frozen=True)
class LinkDown:
    """Interrupt cause: the link carrying the client's message went down."""


@dataclass(frozen=True)
class Cancel:
    """Interrupt cause: the server no longer wants this work."""


@dataclass(frozen=True)
class FailureAhead(Failure):
    """Interrupt cause: the client's node goes down inside work played ahead (an uncut round), at its failure clock's
    next transition; the failure is played when the work meets it."""


FAILED, CANCELLED, LINK_DOWN, FAILS_AHEAD = Failure(), Cancel(), LinkDown(), FailureAhead()  # the causes carry no state: one of each
