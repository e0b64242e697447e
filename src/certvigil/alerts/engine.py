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

A batch of recorded reports (:meth:`AlertEngine.judge_many_in`) gives the same events,
alerts and deliveries as judging the reports one by one in order, with a handful of
statements for the whole batch instead of about seven per report: the history before
the batch is read for all its endpoints at once, and the batch's own reports and alert
changes are carried forward in memory. An endpoint with an observation outside the
batch that is not older than its first report in the batch (an agent's outbox can send
old reports late), or whose reports in the batch are not in time order, is judged
report by report with the exact per-endpoint queries instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
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
    BatchEndpoint,
    PriorHistory,
    StoredAlert,
    StoredHistory,
    batch_endpoints,
    certificate_summaries,
    endpoint_alerts,
    enqueue_deliveries,
    insert_open_alert,
    insert_resolved_alert,
    merge_alert_details,
    read_history,
    read_prior_histories,
    resolve_alert_noting,
    routes_told,
    routes_told_many,
)
from certvigil.store.ingest import CheckColumns, endpoint_key_tuple, observed_at, record_report
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


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert row a judged report changed.

    Attributes:
        alert_id: The alert.
        event: :data:`EVENT_OPENED` (opened), :data:`EVENT_NOTICE` (an informational
            alert recorded already resolved) or :data:`EVENT_RESOLVED` (resolved).
    """

    alert_id: int
    event: str


@dataclass(frozen=True, slots=True)
class JudgedReport:
    """What judging one report of a batch did.

    Attributes:
        events: The events the rules returned, as :meth:`AlertEngine.process_in` does
            (an event whose alert was already in that state is still listed).
        changes: The alert rows it opened, recorded or resolved, in the order done.
    """

    events: tuple[AlertEvent, ...]
    changes: tuple[AlertChange, ...] = ()


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

    def process_many_in(
        self,
        connection: Connection,
        reports: Sequence[EndpointReport],
        observation_ids: Sequence[int | None],
        now: datetime,
        *,
        endpoints: Mapping[tuple[str, int, str, str], BatchEndpoint] | None = None,
    ) -> list[tuple[AlertEvent, ...]]:
        """Judges recorded reports inside the caller's write transaction, in order.

        Gives the same events, alerts and deliveries as calling :meth:`process_in` on
        each report in turn (several reports of one endpoint included), with a few
        statements for the whole batch.

        Args:
            connection: A connection inside a write transaction, after
                ``ingest.record_reports`` wrote ``reports``.
            reports: The reports, in the order they are to be judged.
            observation_ids: Each report's observation (``None`` when unknown).
            now: The evaluation time (aware UTC).

        Returns:
            Each report's events, in the order of ``reports``.

        Raises:
            StoreError: A report's endpoint is not recorded.
        """
        return [
            judged.events
            for judged in self.judge_many_in(
                connection, reports, observation_ids, now, endpoints=endpoints
            )
        ]

    def judge_many_in(
        self,
        connection: Connection,
        reports: Sequence[EndpointReport],
        observation_ids: Sequence[int | None],
        now: datetime,
        *,
        endpoints: Mapping[tuple[str, int, str, str], BatchEndpoint] | None = None,
    ) -> list[JudgedReport]:
        """:meth:`process_many_in`, also saying which alert rows each report changed.

        Args:
            endpoints: The reports' endpoints (ids and labels as stored), by key, when
                the caller knows them all (it has just recorded the reports and set
                their labels); read otherwise.

        Raises:
            StoreError: A report's endpoint is not recorded.
            ValueError: ``observation_ids`` is not as long as ``reports``.
        """
        if len(observation_ids) != len(reports):
            raise ValueError(
                f"{len(observation_ids)} observation ids given for {len(reports)} reports"
            )
        if not reports:
            return []
        keys = [endpoint_key_tuple(report.target) for report in reports]
        if endpoints is None:
            endpoints = batch_endpoints(connection, (report.target for report in reports))
        for report, key in zip(reports, keys, strict=True):
            if key not in endpoints:
                raise StoreError(f"{report.target}: record the report before judging its alerts")
        batch = _Batch(self, connection, now)
        batch.read(reports, keys, observation_ids, endpoints)
        return [
            batch.judge(report, endpoints[key], observation_id)
            for report, key, observation_id in zip(reports, keys, observation_ids, strict=True)
        ]

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


@dataclass(slots=True)
class _Running:
    """An endpoint's history carried through a batch: what the store held before the
    batch, advanced by each of the batch's reports judged so far."""

    statuses: list[str]
    revocation_statuses: list[str]
    leaf_sha256: str | None
    grade: str | None
    alerts: list[StoredAlert]
    leaves: set[str] = field(default_factory=set)


_NO_HISTORY = PriorHistory(
    newest_utc=None,
    statuses=(),
    previous_leaf_sha256=None,
    previous_grade=None,
    revocation_statuses=(),
)
"""The history of an endpoint with nothing stored before the batch."""


class _Batch:
    """The state of one :meth:`AlertEngine.judge_many_in` call."""

    def __init__(self, engine: AlertEngine, connection: Connection, now: datetime) -> None:
        self.engine = engine
        self.connection = connection
        self.now = now
        self.policy = engine.policy
        self.running: dict[int, _Running] = {}
        self.summaries: dict[str, tuple[str, str, datetime]] = {}
        self.told: dict[int, list[str]] = {}
        self.routes = {route.key: route for route in engine.routes}

    def read(
        self,
        reports: Sequence[EndpointReport],
        keys: Sequence[tuple[str, int, str, str]],
        observation_ids: Sequence[int | None],
        endpoints: Mapping[tuple[str, int, str, str], BatchEndpoint],
    ) -> None:
        """Reads the history before the batch of every endpoint that can be carried
        forward in memory; the others stay out of ``running`` and are read exactly."""
        by_endpoint: dict[int, list[tuple[EndpointReport, int | None]]] = {}
        for report, key, observation_id in zip(reports, keys, observation_ids, strict=True):
            by_endpoint.setdefault(endpoints[key].endpoint_id, []).append((report, observation_id))
        candidates: dict[int, datetime] = {}
        for endpoint_id, items in by_endpoint.items():
            times = [observed_at(report) for report, _ in items]
            in_order = all(a < b for a, b in pairwise(times))
            if in_order and all(observation_id is not None for _, observation_id in items):
                candidates[endpoint_id] = times[0]
        if not candidates:
            return
        # An endpoint the batch recorded first has nothing stored before it: its
        # history and alerts are known to be empty and are not read.
        new = {e.endpoint_id for e in endpoints.values() if e.is_new} & candidates.keys()
        stored = [endpoint_id for endpoint_id in candidates if endpoint_id not in new]
        priors = read_prior_histories(
            self.connection,
            {
                endpoint_id: [i for _, i in by_endpoint[endpoint_id] if i is not None]
                for endpoint_id in stored
            },
            max_failures=self.policy.unreachable_after,
            max_revocation=self.policy.revocation_unchecked_after,
        )
        priors.update((endpoint_id, _NO_HISTORY) for endpoint_id in new)
        usable: dict[int, PriorHistory] = {
            endpoint_id: prior
            for endpoint_id, prior in priors.items()
            if prior.newest_utc is None or prior.newest_utc < candidates[endpoint_id]
        }
        leaves = {
            endpoint_id: {
                report.leaf.sha256_hex for report, _ in by_endpoint[endpoint_id] if report.leaf
            }
            for endpoint_id in usable
        }
        alerts = endpoint_alerts(
            self.connection, {e: found for e, found in leaves.items() if e not in new}
        )
        # The batch's own leaves are summarised from the reports' facts, which are
        # what their rows were written from; only leaves served before are read. An
        # endpoint still serving its previous leaf (most of them) reads nothing.
        self.summaries = {
            report.leaf.sha256_hex: (
                report.leaf.sha256_hex,
                report.leaf.issuer,
                report.leaf.not_after_utc,
            )
            for report in reports
            if report.leaf is not None
        }
        earlier = {
            p.previous_leaf_sha256
            for p in usable.values()
            if p.previous_leaf_sha256 and p.previous_leaf_sha256 not in self.summaries
        }
        if earlier:
            self.summaries.update(certificate_summaries(self.connection, earlier))
        self.told = routes_told_many(
            self.connection,
            (a.alert_id for found in alerts.values() for a in found if a.is_open),
            (EVENT_OPENED, EVENT_NOTICE),
        )
        for endpoint_id, prior in usable.items():
            self.running[endpoint_id] = _Running(
                statuses=list(prior.statuses),
                revocation_statuses=list(prior.revocation_statuses),
                leaf_sha256=prior.previous_leaf_sha256,
                grade=prior.previous_grade,
                alerts=alerts.get(endpoint_id, []),
                leaves=leaves[endpoint_id],
            )

    def judge(
        self, report: EndpointReport, endpoint: BatchEndpoint, observation_id: int | None
    ) -> JudgedReport:
        """Judges one report against its endpoint's history and applies the events."""
        leaf_sha = report.leaf.sha256_hex if report.leaf is not None else None
        running = self.running.get(endpoint.endpoint_id)
        if running is None:
            stored = read_history(
                self.connection,
                endpoint_id=endpoint.endpoint_id,
                before_utc=observed_at(report),
                leaf_sha256=leaf_sha,
                max_failures=self.policy.unreachable_after,
                max_revocation=self.policy.revocation_unchecked_after,
            )
        else:
            stored = self._stored(running, leaf_sha)
        events = evaluate(report, history_of(stored), self.policy, now=self.now)
        open_alerts = {a.dedup_key: a for a in stored.alerts if a.is_open}
        changes: list[AlertChange] = []
        for event in events:
            change = self._apply(event, endpoint, observation_id, open_alerts, running)
            if change is not None:
                changes.append(change)
        if running is not None:
            self._advance(running, report)
        return JudgedReport(events=events, changes=tuple(changes))

    def _stored(self, running: _Running, leaf_sha: str | None) -> StoredHistory:
        failures = 0
        for status in running.statuses:
            if status == "ok":
                break
            failures += 1
        return StoredHistory(
            consecutive_failures=failures,
            previous_leaf=(
                self.summaries.get(running.leaf_sha256) if running.leaf_sha256 else None
            ),
            alerts=tuple(
                a
                for a in running.alerts
                if a.is_open or (leaf_sha is not None and a.certificate_sha256 == leaf_sha)
            ),
            previous_grade=running.grade,
            revocation_statuses=tuple(running.revocation_statuses),
        )

    def _advance(self, running: _Running, report: EndpointReport) -> None:
        """Carries the history forward past ``report``, as its observation row reads."""
        is_ok = report.observation is not None
        running.statuses.insert(0, "ok" if is_ok else "failed")
        del running.statuses[self.policy.unreachable_after :]
        if is_ok and report.leaf is not None:
            running.leaf_sha256 = report.leaf.sha256_hex
        checks = CheckColumns.of(report)
        if checks.grade is not None:
            running.grade = checks.grade
        if checks.revocation_status is not None:
            running.revocation_statuses.insert(0, checks.revocation_status)
            del running.revocation_statuses[self.policy.revocation_unchecked_after :]

    def _apply(
        self,
        event: AlertEvent,
        endpoint: BatchEndpoint,
        observation_id: int | None,
        open_alerts: Mapping[str, StoredAlert],
        running: _Running | None,
    ) -> AlertChange | None:
        """Applies one event as :meth:`AlertEngine._apply` does, with fewer statements:
        the alert a resolve closes and the routes told of it are known already."""
        connection, now = self.connection, self.now
        if event.action is EventAction.RESOLVE:
            # The rules resolve only alerts the history holds open, and at most one
            # alert per dedup key is active: the one the history names.
            alert = open_alerts.get(event.dedup_key)
            if alert is None:
                return None
            told = self.told.get(alert.alert_id)
            if told is None:
                told = routes_told(connection, alert.alert_id, (EVENT_OPENED, EVENT_NOTICE))
            targets = sorted(
                key
                for key in set(told)
                if key not in self.routes or EventAction.RESOLVE in self.routes[key].actions
            )
            done = resolve_alert_noting(
                connection,
                alert.alert_id,
                extra={"resolution": event.message},
                now=now,
                routes=targets,
            )
            if running is not None:
                running.alerts = [
                    _closed(a) if a.alert_id == alert.alert_id else a for a in running.alerts
                ]
            return AlertChange(alert.alert_id, EVENT_RESOLVED) if done else None
        routes = [
            r.key
            for r in matching_routes(
                self.engine.routes,
                kind=event.kind,
                severity=event.severity,
                action=event.action,
                tags=endpoint.tags,
            )
        ]
        details: dict[str, Any] = {
            "message": event.message,
            "endpoint": event.endpoint,
            "tags": list(endpoint.tags),
        }
        if event.threshold is not None:
            details["threshold"] = event.threshold
        row: dict[str, Any] = {
            "dedup_key": event.dedup_key,
            "kind": event.kind.value,
            "severity": event.severity.value,
            "endpoint_id": endpoint.endpoint_id,
            "certificate_sha256": event.cert_sha256,
            "observation_id": observation_id,
            "summary": event.title,
            "details": details,
            "now": now,
        }
        if event.action is EventAction.OPEN:
            alert_id = insert_open_alert(connection, **row)
            if alert_id is None:
                return None  # one is active already (under another endpoint)
            change = EVENT_OPENED
        else:
            alert_id = insert_resolved_alert(connection, **row)
            change = EVENT_NOTICE
        unique_routes = list(dict.fromkeys(routes))
        enqueue_deliveries(
            connection, alert_id=alert_id, event=change, routes=unique_routes, now=now
        )
        self.told[alert_id] = unique_routes
        if running is not None:
            running.alerts.append(
                StoredAlert(
                    alert_id=alert_id,
                    dedup_key=event.dedup_key,
                    kind=event.kind.value,
                    severity=event.severity.value,
                    is_open=change == EVENT_OPENED,
                    certificate_sha256=event.cert_sha256,
                    details=details,
                )
            )
        return AlertChange(alert_id, change)


def _closed(alert: StoredAlert) -> StoredAlert:
    return StoredAlert(
        alert_id=alert.alert_id,
        dedup_key=alert.dedup_key,
        kind=alert.kind,
        severity=alert.severity,
        is_open=False,
        certificate_sha256=alert.certificate_sha256,
        details=alert.details,
    )


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
