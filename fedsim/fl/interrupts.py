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


FAILED, CANCELLED, LINK_DOWN = Failure(), Cancel(), LinkDown()  # the causes carry no state: one of each
