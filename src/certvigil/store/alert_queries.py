"""The alert engine's queries: an endpoint's history before a report, alert details,
the routes told of an alert, informational alerts recorded resolved.

The engine (``certvigil.alerts.engine``) holds no SQL of its own; it turns these rows
into the pure rules' ``EndpointHistory``. A batch of reports reads the history of all
its endpoints in a handful of statements (:func:`read_batch_histories`) instead of five
per report.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Select,
    and_,
    case,
    null,
    or_,
    select,
    text,
    update,
)

from certvigil.analysis.model import EndpointReport
from certvigil.store.driver import (
    DriverStatement,
    json_text,
    positional_dialect,
    statements_for,
    time_binder,
)
from certvigil.store.ingest import (
    PreparedReports,
    RecordedEndpoint,
    endpoint_key_tuple,
    insert_for,
    record_reports,
)
from certvigil.store.models import ALERTS, CERTIFICATES, DELIVERIES, ENDPOINTS, OBSERVATIONS
from certvigil.store.queries import tags_for
from certvigil.store.records import AlertState, DeliveryStatus, ObservationId
from certvigil.store.sql_lists import CHUNK, chunks, none_of_parameter, one_of, one_of_parameter
from certvigil.targets.target import Target

_ACTIVE = text("state != 'resolved'")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlert:
    """An alert row as the rules need it.

    Attributes:
        alert_id: Its id.
        dedup_key: Its dedup key.
        kind: Its kind string.
        severity: Its severity string.
        is_open: Open or acknowledged.
        certificate_sha256: The certificate it concerns, ``None`` for none.
        details: Its details object.
    """

    alert_id: int
    dedup_key: str
    kind: str
    severity: str
    is_open: bool
    certificate_sha256: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredHistory:
    """What the store knew about an endpoint before an observation time.

    Attributes:
        consecutive_failures: Failed observations in a row just before (up to the cap).
        previous_leaf: (SHA-256, issuer DN, notAfter) of the last successfully
            observed leaf, ``None`` if none.
        alerts: The endpoint's open alerts and every alert about ``leaf_sha256``.
        previous_grade: The grade of the last graded observation, ``None`` if none.
        revocation_statuses: The revocation statuses of the last observations that
            checked revocation, newest first (up to the cap).
    """

    consecutive_failures: int
    previous_leaf: tuple[str, str, datetime] | None
    alerts: tuple[StoredAlert, ...]
    previous_grade: str | None
    revocation_statuses: tuple[str, ...]


_ALERT_COLUMNS = (
    ALERTS.c.id,
    ALERTS.c.dedup_key,
    ALERTS.c.kind,
    ALERTS.c.severity,
    ALERTS.c.state,
    ALERTS.c.certificate_sha256,
    ALERTS.c.details,
)


def read_history(
    connection: Connection,
    *,
    endpoint_id: int,
    before_utc: datetime,
    leaf_sha256: str | None,
    max_failures: int,
    max_revocation: int,
) -> StoredHistory:
    """An endpoint's history strictly before ``before_utc``.

    Args:
        connection: Any connection.
        endpoint_id: The endpoint.
        before_utc: Only observations strictly before this time count, so it does not
            matter whether the report being judged is already recorded.
        leaf_sha256: The leaf now served; every alert about it (in any state) is
            included, for the once-per-certificate rules.
        max_failures: Count failures in a row only up to this many.
        max_revocation: Read at most this many earlier revocation statuses.
    """
    o, e = OBSERVATIONS.c, ENDPOINTS.c
    earlier = and_(o.endpoint_id == endpoint_id, o.observed_at_utc < before_utc)
    newest_first = (o.observed_at_utc.desc(), o.id.desc())
    # What the endpoint row says was ever stored: a fact never stored is not searched
    # for through the whole history (see _prior_statement).
    ever = connection.execute(
        select(e.last_ok_utc, e.grade, e.revocation_status).where(e.id == endpoint_id)
    ).first()
    ever_ok, ever_graded, ever_checked = (
        (False, False, False) if ever is None else (value is not None for value in ever)
    )
    recent = connection.execute(
        select(o.status).where(earlier).order_by(*newest_first).limit(max_failures)
    ).scalars()
    failures = 0
    for status in recent:
        if status == "ok":
            break
        failures += 1
    previous_sha = (
        connection.execute(
            select(o.leaf_sha256)
            .where(and_(earlier, o.status == "ok", o.leaf_sha256.is_not(None)))
            .order_by(*newest_first)
            .limit(1)
        ).scalar()
        if ever_ok
        else None
    )
    previous: tuple[str, str, datetime] | None = None
    if previous_sha is not None:
        c = CERTIFICATES.c
        row = connection.execute(
            select(c.sha256_hex, c.issuer, c.not_after_utc).where(c.sha256_hex == previous_sha)
        ).first()
        if row is not None:
            previous = (row.sha256_hex, row.issuer, row.not_after_utc)
    previous_grade = (
        connection.execute(
            select(o.grade)
            .where(and_(earlier, o.grade.is_not(None)))
            .order_by(*newest_first)
            .limit(1)
        ).scalar()
        if ever_graded
        else None
    )
    revocation = (
        tuple(
            connection.execute(
                select(o.revocation_status)
                .where(and_(earlier, o.revocation_status.is_not(None)))
                .order_by(*newest_first)
                .limit(max_revocation)
            ).scalars()
        )
        if ever_checked
        else ()
    )
    a = ALERTS.c
    condition = a.state != AlertState.RESOLVED.value
    if leaf_sha256 is not None:
        condition = or_(condition, a.certificate_sha256 == leaf_sha256)
    alerts = tuple(
        StoredAlert(
            alert_id=row.id,
            dedup_key=row.dedup_key,
            kind=row.kind,
            severity=row.severity,
            is_open=row.state != AlertState.RESOLVED.value,
            certificate_sha256=row.certificate_sha256,
            details=row.details or {},
        )
        for row in connection.execute(
            select(*_ALERT_COLUMNS)
            .where(and_(a.endpoint_id == endpoint_id, condition))
            .order_by(a.id)
        ).all()
    )
    return StoredHistory(
        consecutive_failures=failures,
        previous_leaf=previous,
        alerts=alerts,
        previous_grade=previous_grade,
        revocation_statuses=revocation,
    )


def merge_alert_details(connection: Connection, alert_id: int, extra: dict[str, Any]) -> None:
    """Adds ``extra`` to an alert's details (its keys win)."""
    current = connection.execute(select(ALERTS.c.details).where(ALERTS.c.id == alert_id)).scalar()
    merged = {**(current or {}), **extra}
    connection.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(details=merged))


def routes_told(connection: Connection, alert_id: int, events: Iterable[str]) -> list[str]:
    """The routes a delivery of one of ``events`` was queued to for the alert."""
    return list(
        connection.execute(
            select(DELIVERIES.c.route)
            .where(and_(DELIVERIES.c.alert_id == alert_id, DELIVERIES.c.event.in_(list(events))))
            .distinct()
        ).scalars()
    )


def insert_resolved_alert(
    connection: Connection,
    *,
    dedup_key: str,
    kind: str,
    severity: str,
    endpoint_id: int | None,
    certificate_sha256: str | None,
    observation_id: int | None,
    summary: str,
    details: dict[str, Any],
    now: datetime,
) -> int:
    """Records an informational alert already resolved; returns its id."""
    statements = _write_statements(connection)
    alert_id: int = statements.resolved_alert.run_one(
        connection,
        _alert_values(
            statements,
            dedup_key=dedup_key,
            kind=kind,
            severity=severity,
            state=AlertState.RESOLVED,
            endpoint_id=endpoint_id,
            certificate_sha256=certificate_sha256,
            observation_id=observation_id,
            summary=summary,
            details=details,
            now=now,
        ),
    ).scalar_one()
    return alert_id


_ALERT_COLUMNS_WRITTEN = (
    "dedup_key",
    "kind",
    "severity",
    "state",
    "endpoint_id",
    "certificate_sha256",
    "observation_id",
    "summary",
    "details",
    "opened_at_utc",
    "acknowledged_at_utc",
    "acknowledged_by",
    "resolved_at_utc",
)


def _alert_values(
    statements: _WriteStatements,
    *,
    dedup_key: str,
    kind: str,
    severity: str,
    state: AlertState,
    endpoint_id: int | None,
    certificate_sha256: str | None,
    observation_id: int | None,
    summary: str,
    details: dict[str, Any],
    now: datetime,
) -> tuple[Any, ...]:
    """A new alert row in ``_ALERT_COLUMNS_WRITTEN`` order, opened at ``now`` (and
    resolved then too when ``state`` is resolved), bound for the driver."""
    opened = statements.when(now)
    return (
        dedup_key,
        kind,
        severity,
        state.value,
        endpoint_id,
        certificate_sha256,
        observation_id,
        summary,
        json_text(details),
        opened,
        None,
        None,
        opened if state is AlertState.RESOLVED else None,
    )


def last_check_runs(connection: Connection) -> dict[tuple[str, int, str, str], dict[str, datetime]]:
    """When each endpoint last ran each optional check (from ``observations.checks``).

    Returns:
        Per endpoint key (host, port, SNI, STARTTLS as stored), check name to the
        latest observation time that ran it; endpoints never checked are absent.
    """
    from sqlalchemy import case, func

    from certvigil.store.models import ENDPOINTS

    o, e = OBSERVATIONS.c, ENDPOINTS.c
    names = ("revocation", "protocols", "grade")
    latest = [
        func.max(case((o.checks.like(f"%{name}%"), o.observed_at_utc), else_=None)).label(name)
        for name in names
    ]
    inner = (
        select(o.endpoint_id, *latest)
        .where(o.checks.is_not(None))
        .group_by(o.endpoint_id)
        .subquery()
    )
    rows = connection.execute(
        select(e.host, e.port, e.sni, e.starttls, *(inner.c[name] for name in names)).join(
            inner, inner.c.endpoint_id == e.id
        )
    ).all()
    found: dict[tuple[str, int, str, str], dict[str, datetime]] = {}
    for row in rows:
        runs = {name: when for name, when in zip(names, row[4:], strict=True) if when is not None}
        if runs:
            found[(row.host, row.port, row.sni, row.starttls)] = runs
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchEndpoint:
    """An endpoint of a batch as the alert engine needs it.

    Attributes:
        endpoint_id: Its id.
        tags: Its labels, sorted.
        is_new: Recorded for the first time by the batch being judged: it has no
            history and no alerts before it, and none are read.
    """

    endpoint_id: int
    tags: tuple[str, ...]
    is_new: bool = False


def batch_endpoints(
    connection: Connection, targets: Iterable[Target]
) -> dict[tuple[str, int, str, str], BatchEndpoint]:
    """The recorded endpoints of ``targets`` with their labels, by key (two statements).

    Returns:
        Per endpoint key (as :func:`certvigil.store.ingest.endpoint_key_tuple`), its id
        and labels; targets never recorded are absent.
    """
    keys = {endpoint_key_tuple(target) for target in targets}
    hosts = sorted({key[0] for key in keys})
    e = ENDPOINTS.c
    ids: dict[tuple[str, int, str, str], int] = {}
    for chunk in chunks(hosts):
        for endpoint_id, host, port, sni, starttls in connection.execute(
            select(e.id, e.host, e.port, e.sni, e.starttls).where(
                one_of(connection.dialect.name, e.host, chunk)
            )
        ).all():
            key = (host, port, sni, starttls)
            if key in keys:
                ids[key] = endpoint_id
    labels = tags_for(connection, ids.values())
    return {
        key: BatchEndpoint(endpoint_id=endpoint_id, tags=labels.get(endpoint_id, ()))
        for key, endpoint_id in ids.items()
    }


def record_for_judging(
    connection: Connection,
    reports: Sequence[EndpointReport] | PreparedReports,
    *,
    tags: Mapping[Target, Iterable[str]] | None = None,
) -> tuple[tuple[ObservationId, ...], dict[tuple[str, int, str, str], BatchEndpoint]]:
    """``record_reports``, also giving the reports' endpoints as the alert engine needs
    them (``judge_many_in(..., endpoints=)``): ids from the recording, labels as it set
    them, and only labels it left alone read (one statement, when there are any).

    Returns:
        The new observations' ids, in the order of ``reports``, and the endpoints by key.
    """
    recorded: dict[tuple[str, int, str, str], RecordedEndpoint] = {}
    observation_ids = record_reports(connection, reports, tags=tags, endpoints=recorded)
    # A new endpoint whose labels the batch did not set has none.
    unknown = [e.endpoint_id for e in recorded.values() if e.labels is None and not e.is_new]
    read = tags_for(connection, unknown) if unknown else {}
    endpoints = {
        key: BatchEndpoint(
            endpoint_id=e.endpoint_id,
            tags=e.labels if e.labels is not None else read.get(e.endpoint_id, ()),
            is_new=e.is_new,
        )
        for key, e in recorded.items()
    }
    return observation_ids, endpoints


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorHistory:
    """What the store holds about an endpoint outside a batch of observations.

    Attributes:
        newest_utc: The time of its newest observation outside the batch, ``None``
            when it has none. When it is earlier than each of the batch's observations
            of the endpoint, the rest describes the history before all of them.
        statuses: The statuses of its newest observations outside the batch, newest
            first (up to the cap).
        previous_leaf_sha256: The leaf of its newest successful observation outside the
            batch that recorded one, ``None`` if none.
        previous_grade: The grade of its newest graded observation outside the batch.
        revocation_statuses: The revocation statuses of its newest observations outside
            the batch that checked revocation, newest first (up to the cap).
    """

    newest_utc: datetime | None
    statuses: tuple[str, ...]
    previous_leaf_sha256: str | None
    previous_grade: str | None
    revocation_statuses: tuple[str, ...]


_PRIOR_STATEMENTS: dict[tuple[str, int, int], Any] = {}


def _prior_statement(dialect_name: str, max_failures: int, max_revocation: int) -> Any:
    """One row per endpoint: a scalar subquery per fact, each an index probe on
    ``(endpoint_id, observed_at_utc)`` that stops at the row it wants.

    The previous leaf, grade and revocation statuses are the newest rows that have
    one, which may lie far back or nowhere: an endpoint never graded (no daily checks
    configured) or never reached would have its whole history read, for every
    report, growing with retention (400 days of hourly scans: 9,600 rows). Each of
    those subqueries runs only when the endpoint row says such a row exists: its
    latest grade, revocation status and last success are kept across observations
    without them (``models``), and are ``NULL`` only while none was ever stored.
    """
    known = _PRIOR_STATEMENTS.get((dialect_name, max_failures, max_revocation))
    if known is not None:
        return known
    e = ENDPOINTS.c
    o = OBSERVATIONS.alias("o")
    outside = and_(o.c.endpoint_id == e.id, none_of_parameter(dialect_name, o.c.id, "b_batch_ids"))
    newest_first = (o.c.observed_at_utc.desc(), o.c.id.desc())

    def nth(column: Any, condition: Any, offset: int, label: str, *, if_any: Any = None) -> Any:
        found = (
            select(column)
            .where(condition)
            .order_by(*newest_first)
            .limit(1)
            .offset(offset)
            .correlate(ENDPOINTS)
            .scalar_subquery()
        )
        if if_any is None:
            return found.label(label)
        return case((if_any.is_(None), null()), else_=found).label(label)

    columns = [
        e.id,
        nth(o.c.observed_at_utc, outside, 0, "newest"),
        *(nth(o.c.status, outside, i, f"status_{i}") for i in range(max_failures)),
        *(
            nth(
                o.c.revocation_status,
                and_(outside, o.c.revocation_status.is_not(None)),
                i,
                f"revocation_{i}",
                if_any=e.revocation_status,
            )
            for i in range(max_revocation)
        ),
        nth(
            o.c.leaf_sha256,
            and_(outside, o.c.status == "ok", o.c.leaf_sha256.is_not(None)),
            0,
            "leaf",
            if_any=e.last_ok_utc,
        ),
        nth(o.c.grade, and_(outside, o.c.grade.is_not(None)), 0, "grade", if_any=e.grade),
    ]
    statement = select(*columns).where(one_of_parameter(dialect_name, e.id, "b_endpoint_ids"))
    _PRIOR_STATEMENTS[(dialect_name, max_failures, max_revocation)] = statement
    return statement


def read_prior_histories(
    connection: Connection,
    batch_observation_ids: Mapping[int, Sequence[int]],
    *,
    max_failures: int,
    max_revocation: int,
) -> dict[int, PriorHistory]:
    """Each endpoint's history outside a batch of observations, in one statement (or a
    few, for a large batch).

    Args:
        connection: Any connection.
        batch_observation_ids: Per endpoint id, its observations in the batch, which
            are left out.
        max_failures: Read at most this many statuses.
        max_revocation: Read at most this many revocation statuses.

    Returns:
        Per endpoint id, its history outside the batch; an endpoint with more
        observations in the batch than one statement can bind is left out.
    """
    statement = _prior_statement(connection.dialect.name, max_failures, max_revocation)
    # The excluded ids are bound once per subquery: keep each statement's parameters
    # well below SQLite's 32,766 (and PostgreSQL's 65,535).
    most_ids = max(1, 24_000 // (3 + max_failures + max_revocation))
    found: dict[int, PriorHistory] = {}
    groups: list[tuple[list[int], list[int]]] = []
    for endpoint_id in sorted(batch_observation_ids):
        ids = list(batch_observation_ids[endpoint_id])
        if len(ids) > most_ids:
            continue  # left out: the caller reads this endpoint's history per report
        if not groups or len(groups[-1][0]) >= CHUNK or len(groups[-1][1]) + len(ids) > most_ids:
            groups.append(([], []))
        groups[-1][0].append(endpoint_id)
        groups[-1][1].extend(ids)
    for endpoint_ids, excluded in groups:
        for row in connection.execute(
            statement, {"b_endpoint_ids": endpoint_ids, "b_batch_ids": sorted(excluded)}
        ).all():
            values = tuple(row)
            statuses = values[2 : 2 + max_failures]
            revocation = values[2 + max_failures : 2 + max_failures + max_revocation]
            found[values[0]] = PriorHistory(
                newest_utc=values[1],
                statuses=tuple(s for s in statuses if s is not None),
                revocation_statuses=tuple(s for s in revocation if s is not None),
                previous_leaf_sha256=values[-2],
                previous_grade=values[-1],
            )
    return found


@functools.cache
def _summaries_statement(dialect_name: str) -> Select[Any]:
    c = CERTIFICATES.c
    return select(c.sha256_hex, c.issuer, c.not_after_utc).where(
        one_of_parameter(dialect_name, c.sha256_hex, "b_shas")
    )


def certificate_summaries(
    connection: Connection, sha256_hexes: Iterable[str]
) -> dict[str, tuple[str, str, datetime]]:
    """(SHA-256, issuer DN, notAfter) of stored certificates, by SHA-256."""
    statement = _summaries_statement(connection.dialect.name)
    found: dict[str, tuple[str, str, datetime]] = {}
    for chunk in chunks(sorted(set(sha256_hexes))):
        for sha, issuer, not_after in connection.execute(statement, {"b_shas": chunk}).all():
            found[sha] = (sha, issuer, not_after)
    return found


@functools.cache
def _endpoint_alerts_statement(dialect_name: str) -> Select[Any]:
    """The alerts of the endpoints bound to ``b_endpoint_ids`` that are open or about
    one of the certificates bound to ``b_shas``, in id order. Built once: building it
    per batch cost SQLAlchemy more than SQLite took to answer it."""
    a = ALERTS.c
    return (
        select(a.endpoint_id, *_ALERT_COLUMNS)
        .where(
            and_(
                one_of_parameter(dialect_name, a.endpoint_id, "b_endpoint_ids"),
                or_(
                    a.state != AlertState.RESOLVED.value,
                    one_of_parameter(dialect_name, a.certificate_sha256, "b_shas"),
                ),
            )
        )
        .order_by(a.id)
    )


def endpoint_alerts(
    connection: Connection, leaves: Mapping[int, set[str]]
) -> dict[int, list[StoredAlert]]:
    """Per endpoint, its open alerts and every alert about one of its given leaves, by id.

    Args:
        connection: Any connection.
        leaves: Per endpoint id, the leaves whose alerts (in any state) are wanted.
    """
    statement = _endpoint_alerts_statement(connection.dialect.name)
    found: dict[int, list[StoredAlert]] = {endpoint_id: [] for endpoint_id in leaves}
    for chunk in chunks(sorted(leaves)):
        shas = sorted({sha for endpoint_id in chunk for sha in leaves[endpoint_id]})
        for row in connection.execute(
            statement, {"b_endpoint_ids": list(chunk), "b_shas": shas}
        ).all():
            alert = StoredAlert(
                alert_id=row.id,
                dedup_key=row.dedup_key,
                kind=row.kind,
                severity=row.severity,
                is_open=row.state != AlertState.RESOLVED.value,
                certificate_sha256=row.certificate_sha256,
                details=row.details or {},
            )
            if alert.is_open or alert.certificate_sha256 in leaves[row.endpoint_id]:
                found[row.endpoint_id].append(alert)
    return found


@functools.cache
def _routes_told_statement(dialect_name: str) -> Select[Any]:
    d = DELIVERIES.c
    return select(d.alert_id, d.route).where(
        and_(
            one_of_parameter(dialect_name, d.alert_id, "b_alert_ids"),
            one_of_parameter(dialect_name, d.event, "b_events"),
        )
    )


def routes_told_many(
    connection: Connection, alert_ids: Iterable[int], events: Iterable[str]
) -> dict[int, list[str]]:
    """Per alert, the routes a delivery of one of ``events`` was queued to (sorted)."""
    statement = _routes_told_statement(connection.dialect.name)
    wanted = list(events)
    found: dict[int, set[str]] = {}
    for chunk in chunks(sorted(set(alert_ids))):
        for alert_id, route in connection.execute(
            statement, {"b_alert_ids": list(chunk), "b_events": wanted}
        ).all():
            found.setdefault(alert_id, set()).add(route)
    return {alert_id: sorted(routes) for alert_id, routes in found.items()}


class _WriteStatements:
    """The engine's insert statements for one database, compiled once for the driver:
    building a statement with ``.values(...)`` and SQLAlchemy's per-row conversions
    cost more than running it (``store/driver.py``)."""

    def __init__(self, dialect: Dialect) -> None:
        positional = positional_dialect(dialect)
        insert = functools.partial(insert_for, dialect.name)

        self.when = time_binder(dialect.name)
        self.deliveries = DriverStatement(
            insert(DELIVERIES).on_conflict_do_nothing(
                index_elements=["alert_id", "event", "route"]
            ),
            positional,
            _DELIVERY_COLUMNS_WRITTEN,
        )
        self.open_alert = DriverStatement(
            insert(ALERTS)
            .on_conflict_do_nothing(index_elements=["dedup_key"], index_where=_ACTIVE)
            .returning(ALERTS.c.id),
            positional,
            _ALERT_COLUMNS_WRITTEN,
        )
        self.resolved_alert = DriverStatement(
            ALERTS.insert().returning(ALERTS.c.id), positional, _ALERT_COLUMNS_WRITTEN
        )


_DELIVERY_COLUMNS_WRITTEN = (
    "alert_id",
    "event",
    "route",
    "status",
    "attempts",
    "created_at_utc",
    "next_attempt_at_utc",
    "idempotency_key",
)
_WRITE_STATEMENTS: dict[str, _WriteStatements] = {}


def _write_statements(connection: Connection) -> _WriteStatements:
    return statements_for(connection, _WRITE_STATEMENTS, _WriteStatements)


def enqueue_deliveries(
    connection: Connection, *, alert_id: int, event: str, routes: Sequence[str], now: datetime
) -> None:
    """Queues one notification per route in one statement, skipping any already queued
    (as ``outbox.enqueue_delivery`` does one at a time)."""
    if not routes:
        return
    statements = _write_statements(connection)
    at = statements.when(now)
    pending = DeliveryStatus.PENDING.value
    statements.deliveries.run(
        connection,
        [
            (alert_id, event, route, pending, 0, at, at, f"certvigil-{uuid.uuid4()}")
            for route in routes
        ],
    )


def insert_open_alert(
    connection: Connection,
    *,
    dedup_key: str,
    kind: str,
    severity: str,
    endpoint_id: int | None,
    certificate_sha256: str | None,
    observation_id: int | None,
    summary: str,
    details: dict[str, Any],
    now: datetime,
) -> int | None:
    """Opens an alert unless one with its dedup key is active; returns the new id or
    ``None`` (the partial unique index decides, as in ``outbox.open_alert_if_absent``)."""
    statements = _write_statements(connection)
    new_id: int | None = statements.open_alert.run_one(
        connection,
        _alert_values(
            statements,
            dedup_key=dedup_key,
            kind=kind,
            severity=severity,
            state=AlertState.OPEN,
            endpoint_id=endpoint_id,
            certificate_sha256=certificate_sha256,
            observation_id=observation_id,
            summary=summary,
            details=details,
            now=now,
        ),
    ).scalar_one_or_none()
    return new_id


def resolve_alert_noting(
    connection: Connection,
    alert_id: int,
    *,
    extra: dict[str, Any],
    now: datetime,
    routes: Sequence[str],
) -> bool:
    """Adds ``extra`` to an alert's details and resolves it, queuing a "resolved"
    delivery per route when it was active.

    Returns:
        Whether it was active (and is now resolved).
    """
    current = connection.execute(select(ALERTS.c.details).where(ALERTS.c.id == alert_id)).scalar()
    merged = {**(current or {}), **extra}
    active = connection.execute(
        update(ALERTS)
        .where(and_(ALERTS.c.id == alert_id, ALERTS.c.state != AlertState.RESOLVED.value))
        .values(details=merged, state=AlertState.RESOLVED.value, resolved_at_utc=now)
    )
    if active.rowcount != 1:
        connection.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(details=merged))
        return False
    enqueue_deliveries(connection, alert_id=alert_id, event="resolved", routes=routes, now=now)
    return True
