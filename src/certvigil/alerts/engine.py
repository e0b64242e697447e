"""The alert engine: rule events applied to the store, with their deliveries, in one transaction.

For each report the engine reads what the store knew before it (the previous leaf, the
failures in a row, the endpoint's alerts), asks :func:`certvigil.alerts.rules.evaluate`
what to do, and applies the events: an alert opens unless one with its dedup key is
active, a notice is recorded already resolved, a resolve closes the active alert. In
the same transaction it queues one delivery per route that wants the event (the outbox
pattern), so an alert and its notifications commit together or not at all. The outbox
worker (``certvigil.alerts.delivery``) sends them later.

Acknowledging and resolving by hand go through here too, so that a manual resolve
notifies the routes that were told of the opening.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certvigil.alerts.routing import AlertRoute, matching_routes
from certvigil.alerts.rules import (
    UNDECIDED_REVOCATION,
    AlertEvent,
    AlertKind,
    AlertPolicy,
    EndpointHistory,
    EventAction,
    KnownAlert,
    LeafSummary,
    evaluate,
)
from certvigil.analysis.model import EndpointReport, Severity
from certvigil.errors import StoreError, UsageError
from certvigil.store import AlertRecord, AlertState, ObservationId, Store
from certvigil.store import outbox as box
from certvigil.store.alert_queries import (
    StoredHistory,
    insert_resolved_alert,
    merge_alert_details,
    read_history,
    routes_told,
)
from certvigil.store.ingest import observed_at, record_report
from certvigil.store.queries import find_endpoint

if TYPE_CHECKING:
    from sqlalchemy import Connection

EVENT_OPENED = "opened"
"""The outbox event of an opened alert."""
EVENT_NOTICE = "notice"
"""The outbox event of an informational alert recorded already resolved."""
EVENT_RESOLVED = "resolved"
"""The outbox event of a resolved alert."""

_EVENT_OF_ACTION = {
    EventAction.OPEN: EVENT_OPENED,
    EventAction.NOTIFY: EVENT_NOTICE,
    EventAction.RESOLVE: EVENT_RESOLVED,
}
_ACTION_OF_EVENT = {v: k for k, v in _EVENT_OF_ACTION.items()}


def action_of_event(event: str) -> EventAction:
    """The rule action an outbox event string stands for.

    Raises:
        ValueError: ``event`` is not one the engine queues.
    """
    try:
        return _ACTION_OF_EVENT[event]
    except KeyError:
        raise ValueError(f"unknown delivery event {event!r}") from None


class AlertEngine:
    """Turns reports into alerts and queued deliveries.

    Args:
        store: The inventory.
        routes: Where alerts go.
        policy: Thresholds and rule settings.
    """

    def __init__(
        self,
        store: Store,
        routes: Sequence[AlertRoute] = (),
        policy: AlertPolicy | None = None,
    ) -> None:
        self.store = store
        self.routes = tuple(routes)
        self.policy = policy or AlertPolicy()

    def process(
        self, report: EndpointReport, now: datetime, *, observation_id: int | None = None
    ) -> tuple[AlertEvent, ...]:
        """Judges a report that is already recorded, in a transaction of its own.

        Prefer :meth:`record_and_process`, which commits the observation and its alerts
        together.

        Args:
            report: The report, already written by ``Store.record_report``.
            now: The evaluation time (aware UTC).
            observation_id: The report's observation, linked from the alerts it raises.

        Returns:
            The events applied.

        Raises:
            StoreError: The endpoint is not recorded, or the database failed.
        """
        with self.store.write() as connection:
            return self.process_in(connection, report, now, observation_id=observation_id)

    def record_and_process(
        self, report: EndpointReport, now: datetime, *, tags: Iterable[str] | None = None
    ) -> tuple[ObservationId, tuple[AlertEvent, ...]]:
        """Records a report and applies its alerts in one transaction.

        A crash either keeps the observation, its alerts and their queued deliveries,
        or none of them.

        Args:
            report: The scan result.
            now: The evaluation time (aware UTC).
            tags: The endpoint's labels, replacing its current ones (``None`` keeps them).

        Returns:
            The observation id and the events applied.
        """
        with self.store.write() as connection:
            observation_id = record_report(connection, report, tags=tags)
            events = self.process_in(connection, report, now, observation_id=observation_id)
            return observation_id, events

    def process_in(
        self,
        connection: Connection,
        report: EndpointReport,
        now: datetime,
        *,
        observation_id: int | None = None,
    ) -> tuple[AlertEvent, ...]:
        """Judges a recorded report inside the caller's write transaction.

        Args:
            connection: A connection inside a write transaction, after
                ``ingest.record_report`` wrote ``report``.
            report: The report.
            now: The evaluation time (aware UTC).
            observation_id: The report's observation, if known.

        Returns:
            The events applied (an event whose alert was already in that state is
            still returned; it queues nothing).

        Raises:
            StoreError: The report's endpoint is not recorded.
        """
        endpoint = find_endpoint(connection, report.target)
        if endpoint is None:
            raise StoreError(f"{report.target}: record the report before judging its alerts")
        history = load_history(
            connection,
            endpoint_id=endpoint.id,
            before_utc=observed_at(report),
            leaf_sha256=report.leaf.sha256_hex if report.leaf is not None else None,
            max_failures=self.policy.unreachable_after,
            max_revocation=self.policy.revocation_unchecked_after,
        )
        events = evaluate(report, history, self.policy, now=now)
        for event in events:
            self._apply(connection, event, endpoint.id, endpoint.tags, observation_id, now)
        return events

    def apply_unbound_in(
        self,
        connection: Connection,
        events: Iterable[AlertEvent],
        now: datetime,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Applies events that concern no endpoint (the CT watch's) in the caller's transaction.

        Their alerts have no endpoint and no tags, so only routes without a tag filter
        get them; ``details`` are merged into each alert's details.

        Args:
            connection: A connection inside a write transaction.
            events: Open, notify or resolve events.
            now: When (aware UTC).
            details: JSON-ready facts kept with each alert (certificate, log, index).
        """
        for event in events:
            self._apply(connection, event, None, (), None, now, extra=details)

    def _apply(
        self,
        connection: Connection,
        event: AlertEvent,
        endpoint_id: int | None,
        tags: Sequence[str],
        observation_id: int | None,
        now: datetime,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if event.action is EventAction.RESOLVE:
            active = box.active_alert(connection, event.dedup_key)
            if active is not None:
                _resolve(connection, active, now=now, note=event.message, routes=self.routes)
            return
        routes = [
            r.key
            for r in matching_routes(
                self.routes,
                kind=event.kind,
                severity=event.severity,
                action=event.action,
                tags=tags,
            )
        ]
        details: dict[str, Any] = {
            "message": event.message,
            "endpoint": event.endpoint,
            "tags": list(tags),
        }
        if event.threshold is not None:
            details["threshold"] = event.threshold
        if extra:
            details.update(extra)
        if event.action is EventAction.OPEN:
            box.open_alert_if_absent(
                connection,
                dedup_key=event.dedup_key,
                kind=event.kind.value,
                severity=event.severity,
                summary=event.title,
                now=now,
                endpoint_id=endpoint_id,
                certificate_sha256=event.cert_sha256,
                observation_id=observation_id,
                details=details,
                routes=routes,
            )
            return
        # A notice: recorded resolved at once (nothing to act on), delivered all the same.
        alert_id = insert_resolved_alert(
            connection,
            dedup_key=event.dedup_key,
            kind=event.kind.value,
            severity=event.severity.value,
            endpoint_id=endpoint_id,
            certificate_sha256=event.cert_sha256,
            observation_id=observation_id,
            summary=event.title,
            details=details,
            now=now,
        )
        for route in routes:
            box.enqueue_delivery(
                connection, alert_id=alert_id, event=EVENT_NOTICE, route=route, now=now
            )

    def acknowledge(
        self, alert_id: int, *, by: str, now: datetime, note: str | None = None
    ) -> AlertRecord:
        """Acknowledges an open alert: someone is on it.

        Args:
            alert_id: The alert.
            by: Who acknowledges it.
            now: When (aware UTC).
            note: A remark kept in the alert's details (``ack_note``).

        Returns:
            The alert as it now stands.

        Raises:
            UsageError: No such alert, it is resolved, or ``by`` is blank.
        """
        with self.store.write() as connection:
            return self.acknowledge_in(connection, alert_id, by=by, now=now, note=note)

    def acknowledge_in(
        self,
        connection: Connection,
        alert_id: int,
        *,
        by: str,
        now: datetime,
        note: str | None = None,
    ) -> AlertRecord:
        """:meth:`acknowledge` inside the caller's write transaction (the server logs
        a stream event in the same one)."""
        if not by.strip():
            raise UsageError("acknowledging an alert needs a name (--by)")
        alert = _existing(connection, alert_id)
        if alert.state is AlertState.RESOLVED:
            raise UsageError(f"alert {alert_id} is resolved; nothing to acknowledge")
        if alert.state is AlertState.ACKNOWLEDGED:
            when = alert.acknowledged_at_utc
            raise UsageError(
                f"alert {alert_id} was already acknowledged by {alert.acknowledged_by} "
                f"at {when.isoformat() if when else '?'}"
            )
        box.acknowledge_alert(connection, alert_id, by=by.strip(), now=now)
        if note:
            merge_alert_details(connection, alert_id, {"ack_note": note})
        return _existing(connection, alert_id)

    def resolve(
        self, alert_id: int, *, now: datetime, by: str | None = None, note: str | None = None
    ) -> AlertRecord:
        """Resolves an active alert by hand, notifying where its opening went.

        A condition that still holds opens a new alert at the next scan.

        Args:
            alert_id: The alert.
            now: When (aware UTC).
            by: Who resolved it, kept in the details (``resolved_by``).
            note: Why, kept in the details (``resolution``).

        Returns:
            The alert as it now stands.

        Raises:
            UsageError: No such alert, or it is already resolved.
        """
        with self.store.write() as connection:
            return self.resolve_in(connection, alert_id, now=now, by=by, note=note)

    def resolve_in(
        self,
        connection: Connection,
        alert_id: int,
        *,
        now: datetime,
        by: str | None = None,
        note: str | None = None,
    ) -> AlertRecord:
        """:meth:`resolve` inside the caller's write transaction."""
        alert = _existing(connection, alert_id)
        if alert.state is AlertState.RESOLVED:
            raise UsageError(f"alert {alert_id} is already resolved")
        text = note or (f"Resolved by {by}." if by else "Resolved by hand.")
        _resolve(connection, alert, now=now, note=text, routes=self.routes, by=by)
        return _existing(connection, alert_id)

    def list_alerts(
        self, *, states: Iterable[AlertState] | None = None, limit: int | None = None
    ) -> tuple[AlertRecord, ...]:
        """Alerts, newest first, optionally only in some states."""
        with self.store.read() as connection:
            return box.list_alerts(connection, states=states, limit=limit)


def _existing(connection: Connection, alert_id: int) -> AlertRecord:
    alert = box.get_alert(connection, alert_id)
    if alert is None:
        raise UsageError(f"alert {alert_id}: no such alert")
    return alert


def _resolve(
    connection: Connection,
    alert: AlertRecord,
    *,
    now: datetime,
    note: str,
    routes: Sequence[AlertRoute],
    by: str | None = None,
) -> None:
    """Resolve ``alert`` and queue a "resolved" delivery to every route told of its opening.

    A route still configured but no longer wanting resolutions is skipped; a route
    dropped from the configuration is kept (the worker records it as undeliverable).
    """
    told = routes_told(connection, alert.id, (EVENT_OPENED, EVENT_NOTICE))
    by_key = {r.key: r for r in routes}
    targets = [
        key for key in told if key not in by_key or EventAction.RESOLVE in by_key[key].actions
    ]
    extra: dict[str, Any] = {"resolution": note}
    if by:
        extra["resolved_by"] = by
    merge_alert_details(connection, alert.id, extra)
    box.resolve_alert(connection, alert.id, now=now, routes=sorted(targets))


def load_history(
    connection: Connection,
    *,
    endpoint_id: int,
    before_utc: datetime,
    leaf_sha256: str | None,
    max_failures: int,
    max_revocation: int = 3,
) -> EndpointHistory:
    """What the store knew about an endpoint before a given observation time.

    Args:
        connection: Any connection.
        endpoint_id: The endpoint.
        before_utc: Only observations strictly before this time count, so it does not
            matter whether the report being judged is already recorded.
        leaf_sha256: The leaf now served; every alert about it (in any state) is
            included, for the once-per-certificate rules.
        max_failures: Count failures in a row only up to this many (K).
        max_revocation: Count undecided revocation checks in a row up to this many.

    Returns:
        The history.
    """
    return history_of(
        read_history(
            connection,
            endpoint_id=endpoint_id,
            before_utc=before_utc,
            leaf_sha256=leaf_sha256,
            max_failures=max_failures,
            max_revocation=max_revocation,
        )
    )


def history_of(stored: StoredHistory) -> EndpointHistory:
    """The rules' view of what the store read."""
    previous = (
        LeafSummary(
            sha256_hex=stored.previous_leaf[0],
            issuer=stored.previous_leaf[1],
            not_after_utc=stored.previous_leaf[2],
        )
        if stored.previous_leaf is not None
        else None
    )
    known: list[KnownAlert] = []
    for alert in stored.alerts:
        try:
            kind = AlertKind(alert.kind)
        except ValueError:
            continue  # an alert some other part of certvigil raised (CT watch)
        known.append(
            KnownAlert(
                dedup_key=alert.dedup_key,
                kind=kind,
                severity=Severity(alert.severity),
                is_open=alert.is_open,
                cert_sha256=alert.certificate_sha256,
                threshold=alert.details.get("threshold"),
            )
        )
    undecided = 0
    for status in stored.revocation_statuses:
        if status not in UNDECIDED_REVOCATION:
            break
        undecided += 1
    return EndpointHistory(
        previous_leaf=previous,
        consecutive_failures=stored.consecutive_failures,
        alerts=tuple(known),
        previous_grade=stored.previous_grade,
        revocation_undecided=undecided,
    )
