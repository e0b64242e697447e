"""The server's background checks: silent agents and deliveries given up on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from certvigil.alerts.delivery import deliver_due
from certvigil.alerts.engine import AlertEngine
from certvigil.analysis.model import Severity
from certvigil.server.watch import (
    AGENT_SILENT_KIND,
    check_silent_agents,
    tell_failed_deliveries,
)
from certvigil.store import AlertState, Store
from certvigil.store import outbox as box
from certvigil.store import server_queries as sq

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def contact(store: Store, name: str, at: datetime, interval_s: int = 600) -> None:
    with store.write() as connection:
        sq.record_agent_contact(
            connection,
            name=name,
            api_key_id=None,
            version="1",
            tags=(),
            interval_s=interval_s,
            targets=3,
            backlog=0,
            now=at,
        )


def events(store: Store) -> list[tuple[str, int]]:
    with store.read() as connection:
        return [(e.event, e.alert_id) for e in sq.alert_events_after(connection, 0)]


def test_an_agent_silent_for_more_than_three_intervals_raises_one_alert(
    server_store: Store,
) -> None:
    """Silent 30 min at a 10 min interval: no alert; 31 min: one, told once; back: resolved."""
    engine = AlertEngine(server_store)
    contact(server_store, "lab-a", NOW - timedelta(minutes=30))
    assert check_silent_agents(server_store, engine, now=NOW, intervals=3) == 0
    later = NOW + timedelta(minutes=1)
    assert check_silent_agents(server_store, engine, now=later, intervals=3) == 1
    assert check_silent_agents(server_store, engine, now=later, intervals=3) == 0
    (alert,) = server_store.list_alerts()
    assert alert.kind == AGENT_SILENT_KIND and alert.state is AlertState.OPEN
    assert "lab-a" in alert.summary
    contact(server_store, "lab-a", later + timedelta(minutes=1))
    assert (
        check_silent_agents(server_store, engine, now=later + timedelta(minutes=2), intervals=3)
        == 1
    )
    (alert,) = server_store.list_alerts()
    assert alert.state is AlertState.RESOLVED
    assert events(server_store) == [("opened", alert.id), ("resolved", alert.id)]


def test_a_delivery_given_up_on_is_told_once_on_the_stream(server_store: Store) -> None:
    """A delivery to a route that no longer exists fails for good: one delivery_failed."""
    with server_store.write() as connection:
        alert, _ = box.open_alert_if_absent(
            connection,
            dedup_key="k",
            kind="test",
            severity=Severity.WARNING,
            summary="s",
            now=NOW,
            routes=["gone#0"],
        )
    stats = asyncio.run(deliver_due(server_store, {}, NOW))
    assert stats.failed == 1
    assert tell_failed_deliveries(server_store, now=NOW) == 1
    assert tell_failed_deliveries(server_store, now=NOW) == 0
    assert events(server_store) == [("delivery_failed", alert.id)]
    with server_store.read() as connection:
        (event,) = sq.alert_events_after(connection, 0)
    assert event.detail is not None and "gone" in event.detail
