"""What the dashboard shows from parts that live elsewhere: agents and CT findings.

The server passes callables that read them; without one the page says the feature is
not set up, rather than failing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSummary:
    """One agent as the agents page lists it.

    Attributes:
        name: The agent's name.
        version: The certvigil version it reported, ``None`` if unknown.
        last_contact_utc: When it last reported, ``None`` if never.
        targets: How many targets it scans.
        backlog: Reports waiting in its outbox at its last contact, ``None`` if unknown.
        is_silent: Silent for longer than three of its intervals.
    """

    name: str
    version: str | None
    last_contact_utc: datetime | None
    targets: int
    backlog: int | None
    is_silent: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CtFindingSummary:
    """One certificate found in Certificate Transparency logs.

    Attributes:
        logged_at_utc: When the log entry was made.
        names: The DNS names it covers.
        issuer: The issuer's name.
        sha256_hex: The certificate's fingerprint.
        verdict: What certvigil made of it (``expected``, ``unknown_issuer``...).
    """

    logged_at_utc: datetime
    names: tuple[str, ...]
    issuer: str
    sha256_hex: str
    verdict: str


AgentsSource = Callable[[], Sequence[AgentSummary]]
"""Reads the agents the server knows, newest contact first."""

CtFindingsSource = Callable[[int], Sequence[CtFindingSummary]]
"""Reads at most N CT findings, newest first."""
