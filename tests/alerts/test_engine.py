"""The alert engine on a real store (SQLite and PostgreSQL): alerts, lifecycle, outbox rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import AlertKind, AlertPolicy, EventAction
from certvigil.analysis.model import Severity
from certvigil.errors import StoreError, UsageError
from certvigil.store import AlertState, Store
from certvigil.store.ingest import record_report
from certvigil.store.outbox import list_deliveries
from certvigil.targets.target import Target

from .factories import T0, TARGET, leaf, report

CHAT = AlertRoute(name="chat", url="json://127.0.0.1:9/chat", min_severity=Severity.INFO)
PAGER = AlertRoute(name="pager", url="json://127.0.0.1:9/pager", min_severity=Severity.CRITICAL)
PROD = AlertRoute(name="prod", url="json://127.0.0.1:9/prod", tags=frozenset({"prod"}))


def _deliveries(store: Store, alert_id: int | None = None):
    with store.read() as connection:
        return list_deliveries(connection, alert_id=alert_id)


def test_open_queues_one_delivery_per_matching_route_and_never_twice(store: Store) -> None:
    """An untrusted chain seen three times opens one alert with one delivery per route."""
    engine = AlertEngine(store, routes=(CHAT, PAGER))
    cert = leaf("e1", not_before=T0, lifetime=timedelta(days=365))
    for hour in range(3):
        now = T0 + timedelta(hours=hour)
        engine.record_and_process(report(cert, now, trusted=False), now)
    alerts = engine.list_alerts()
    assert [(a.kind, a.state, a.severity) for a in alerts] == [
        (AlertKind.UNTRUSTED.value, AlertState.OPEN, Severity.CRITICAL)
    ]
    assert alerts[0].target == TARGET
    assert alerts[0].certificate_sha256 == cert.sha256_hex
    assert alerts[0].observation_id is not None
    assert sorted((d.route, d.event) for d in _deliveries(store)) == sorted(
        [(CHAT.key, "opened"), (PAGER.key, "opened")]
    )


def test_thresholds_cross_once_through_the_store(store: Store) -> None:
    """A 90-day leaf scanned daily to expiry alerts at 14, 7 and 1 days, then expired, once each."""
    engine = AlertEngine(store, routes=(CHAT,))
    cert = leaf("e2", not_before=T0, lifetime=timedelta(days=90))
    day = timedelta(days=1)
    now = cert.not_after_utc - 25 * day
    while now < cert.not_after_utc + 3 * day:
        engine.record_and_process(report(cert, now), now)
        now += timedelta(hours=12)
    alerts = sorted(engine.list_alerts(), key=lambda a: a.opened_at_utc)
    assert [(a.kind, a.details.get("threshold")) for a in alerts] == [
        ("expiry_threshold", "14d"),
        ("expiry_threshold", "7d"),
        ("expiry_threshold", "1d"),
        ("expired", None),
    ]
    assert [a.state for a in alerts] == [AlertState.RESOLVED] * 3 + [AlertState.OPEN]
    opened = [d for d in _deliveries(store) if d.event == "opened"]
    assert len(opened) == 4


def test_replacement_resolves_and_sends_a_notice_only_where_wanted(store: Store) -> None:
    """A replaced leaf resolves its expiry alert and sends an info notice to INFO routes only."""
    engine = AlertEngine(store, routes=(CHAT, PAGER))
    old = leaf("e3-old", not_before=T0, lifetime=timedelta(days=90))
    now = old.not_after_utc - timedelta(days=10)
    engine.record_and_process(report(old, now), now)
    later = now + timedelta(hours=1)
    new = leaf("e3-new", not_before=later, lifetime=timedelta(days=90))
    _, events = engine.record_and_process(report(new, later), later)
    assert [(e.action, e.kind) for e in events] == [
        (EventAction.RESOLVE, AlertKind.EXPIRY_THRESHOLD),
        (EventAction.NOTIFY, AlertKind.REPLACED),
    ]
    by_kind = {a.kind: a for a in engine.list_alerts()}
    assert by_kind["expiry_threshold"].state is AlertState.RESOLVED
    assert by_kind["expiry_threshold"].details["resolution"].endswith(f"({new.sha256_hex[:16]}).")
    notice = by_kind["replaced"]
    assert notice.state is AlertState.RESOLVED and notice.severity is Severity.INFO
    assert [(d.route, d.event) for d in _deliveries(store, notice.id)] == [(CHAT.key, "notice")]
    resolved = [d for d in _deliveries(store) if d.event == "resolved"]
    assert [d.route for d in resolved] == [CHAT.key]


def test_unreachable_k_times_then_recovery_queues_resolution(store: Store) -> None:
    """Three failed scans open one unreachable alert; an answer resolves it and notifies."""
    engine = AlertEngine(store, routes=(CHAT,), policy=AlertPolicy(unreachable_after=3))
    cert = leaf("e4", not_before=T0, lifetime=timedelta(days=365))
    engine.record_and_process(report(cert, T0), T0)
    for n in range(1, 6):
        now = T0 + timedelta(minutes=n)
        engine.record_and_process(report(None, now), now)
    (alert,) = engine.list_alerts(states=[AlertState.OPEN])
    assert alert.kind == "unreachable"
    now = T0 + timedelta(minutes=10)
    engine.record_and_process(report(cert, now), now)
    assert engine.list_alerts(states=[AlertState.OPEN]) == ()
    assert sorted(d.event for d in _deliveries(store, alert.id)) == ["opened", "resolved"]


def test_acknowledge_records_who_and_when_and_refuses_twice(store: Store) -> None:
    """Acknowledging keeps the name, time and note; a second acknowledgement is refused."""
    engine = AlertEngine(store)
    cert = leaf("e5", not_before=T0, lifetime=timedelta(days=365))
    engine.record_and_process(report(cert, T0, hostname_matches=False), T0)
    (alert,) = engine.list_alerts()
    at = T0 + timedelta(minutes=3)
    acked = engine.acknowledge(alert.id, by="alice", now=at, note="renewing today")
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at_utc) == (
        AlertState.ACKNOWLEDGED,
        "alice",
        at,
    )
    assert acked.details["ack_note"] == "renewing today"
    with pytest.raises(UsageError, match="already acknowledged by alice"):
        engine.acknowledge(alert.id, by="bob", now=at)
    with pytest.raises(UsageError, match="no such alert"):
        engine.acknowledge(alert.id + 1000, by="bob", now=at)


def test_acknowledged_alert_still_resolves_on_recovery(store: Store) -> None:
    """An acknowledged alert stays one alert while the condition holds and resolves after."""
    engine = AlertEngine(store, routes=(CHAT,))
    cert = leaf("e6", not_before=T0, lifetime=timedelta(days=365))
    engine.record_and_process(report(cert, T0, trusted=False), T0)
    (alert,) = engine.list_alerts()
    engine.acknowledge(alert.id, by="bob", now=T0)
    t1 = T0 + timedelta(hours=1)
    engine.record_and_process(report(cert, t1, trusted=False), t1)
    assert len(engine.list_alerts()) == 1
    t2 = T0 + timedelta(hours=2)
    engine.record_and_process(report(cert, t2), t2)
    (resolved,) = engine.list_alerts()
    assert resolved.state is AlertState.RESOLVED and resolved.resolved_at_utc == t2


def test_manual_resolve_notifies_where_the_opening_went(store: Store) -> None:
    """Resolving by hand queues 'resolved' to the routes told of the opening, and only once."""
    engine = AlertEngine(store, routes=(CHAT, PAGER))
    cert = leaf("e7", not_before=T0, lifetime=timedelta(days=365))
    engine.record_and_process(report(cert, T0, trusted=False), T0)
    (alert,) = engine.list_alerts()
    at = T0 + timedelta(minutes=1)
    done = engine.resolve(alert.id, now=at, by="carol", note="known lab host")
    assert done.state is AlertState.RESOLVED
    assert done.details["resolved_by"] == "carol"
    resolved = sorted(d.route for d in _deliveries(store, alert.id) if d.event == "resolved")
    assert resolved == sorted([CHAT.key, PAGER.key])
    with pytest.raises(UsageError, match="already resolved"):
        engine.resolve(alert.id, now=at)


def test_tag_routes_only_get_alerts_of_tagged_endpoints(store: Store) -> None:
    """A route limited to 'prod' gets the prod endpoint's alert, not the lab endpoint's."""
    engine = AlertEngine(store, routes=(PROD,))
    lab = Target(host="lab.example.test", port=443)
    cert = leaf("e8", not_before=T0, lifetime=timedelta(days=365))
    with store.write() as connection:
        record_report(connection, report(cert, T0, trusted=False), tags=["prod"])
        record_report(connection, report(cert, T0, trusted=False, target=lab), tags=["lab"])
    engine.process(report(cert, T0, trusted=False), T0)
    engine.process(report(cert, T0, trusted=False, target=lab), T0)
    alerts = {a.target: a for a in engine.list_alerts()}
    assert set(alerts) == {TARGET, lab}
    assert [d.route for d in _deliveries(store, alerts[TARGET].id)] == [PROD.key]
    assert _deliveries(store, alerts[lab].id) == ()


def test_processing_an_unrecorded_report_is_refused(store: Store) -> None:
    """Judging a report whose endpoint was never recorded names the endpoint."""
    engine = AlertEngine(store)
    cert = leaf("e9", not_before=T0, lifetime=timedelta(days=365))
    with pytest.raises(StoreError, match=r"www\.example\.test:443"):
        engine.process(report(cert, T0), T0)
