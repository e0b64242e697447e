"""Background checks of the server: agents gone silent, deliveries given up on.

An agent silent for longer than ``serve.agent_silence_intervals`` of its own scan
interval gets an ``agent_silent`` alert (one per agent, kept open until it reports
again, then resolved). A delivery the outbox gave up on is told on the live stream
once, as ``delivery_failed``.
"""

from __future__ import annotations

from datetime import datetime

from certvigil.alerts.engine import AlertEngine
from certvigil.analysis.model import Severity
from certvigil.server.events import (
    EVENT_DELIVERY_FAILED,
    EVENT_OPENED,
    EVENT_RESOLVED,
    record_alert_event,
)
from certvigil.store import Store
from certvigil.store import outbox as box
from certvigil.store import server_queries as sq

AGENT_SILENT_KIND = "agent_silent"
"""The alert kind of a silent agent."""


def agent_dedup_key(name: str) -> str:
    """The dedup key of an agent's silence alert."""
    return f"{AGENT_SILENT_KIND}:{name}"


def check_silent_agents(store: Store, engine: AlertEngine, *, now: datetime, intervals: int) -> int:
    """Opens an alert for each newly silent agent, resolves those of agents heard again.

    Returns:
        How many stream events were logged.
    """
    told = 0
    with store.write() as connection:
        for agent in sq.list_agents(connection):
            key = agent_dedup_key(agent.name)
            silent_s = (now - agent.last_contact_utc).total_seconds()
            is_silent = silent_s > agent.interval_s * intervals
            active = box.active_alert(connection, key)
            if is_silent and active is None:
                alert, created = box.open_alert_if_absent(
                    connection,
                    dedup_key=key,
                    kind=AGENT_SILENT_KIND,
                    severity=Severity.WARNING,
                    summary=(
                        f"agent {agent.name} silent for {int(silent_s // 60)} min "
                        f"(more than {intervals} of its {agent.interval_s} s intervals)"
                    ),
                    now=now,
                    details={
                        "agent": agent.name,
                        "last_contact": agent.last_contact_utc.isoformat(),
                    },
                    routes=[route.key for route in engine.routes],
                )
                if created:
                    record_alert_event(connection, alert.id, EVENT_OPENED, now=now)
                    told += 1
            elif not is_silent and active is not None:
                engine.resolve_in(
                    connection, active.id, now=now, note=f"agent {agent.name} reported again"
                )
                record_alert_event(connection, active.id, EVENT_RESOLVED, now=now)
                told += 1
    return told


def tell_failed_deliveries(store: Store, *, now: datetime) -> int:
    """Logs a ``delivery_failed`` event for each delivery given up on and not yet told.

    Returns:
        How many were told.
    """
    with store.write() as connection:
        rows = sq.failed_deliveries_untold(connection)
        for row in rows:
            record_alert_event(
                connection,
                int(row.alert_id),
                EVENT_DELIVERY_FAILED,
                now=now,
                detail=f"route {row.route}: {row.last_error or 'failed'}",
                delivery_id=int(row.id),
            )
    return len(rows)
