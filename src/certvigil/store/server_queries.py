"""The central server's reads and writes: API keys, agents, report ids, the alert event log.

Every function takes a connection inside the caller's transaction (``Store.read`` or
``Store.write``), so that, for instance, an acknowledgement and its stream event commit
together. The server itself issues no SQL.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from certvigil.analysis.model import Severity
from certvigil.store.models import ALERTS, DELIVERIES, ENDPOINTS, OBSERVATIONS
from certvigil.store.outbox import _alert_record, _alert_select
from certvigil.store.queries import CheckFilter, inventory, list_endpoints
from certvigil.store.records import (
    AlertRecord,
    AlertState,
    DeliveryStatus,
    EndpointRecord,
    InventoryRow,
)
from certvigil.store.server_models import AGENTS, ALERT_EVENTS, API_KEYS, RECEIVED_REPORTS

EVENT_LOCK_KEY = 0x63766B65
"""PostgreSQL advisory lock taken before appending an alert event (see ``AlertEventRow``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRecord:
    """A stored API key (never the token).

    Attributes:
        id: Row id.
        name: The operator's name for it, unique.
        scope: ``agent``, ``read`` or ``admin``.
        lookup: The public part of the token that finds the row.
        key_hash: SHA-256 of the whole token, hex.
        created_at_utc: When it was made.
        revoked_at_utc: When it was revoked, ``None`` while valid.
    """

    id: int
    name: str
    scope: str
    lookup: str
    key_hash: str
    created_at_utc: datetime
    revoked_at_utc: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRecord:
    """An agent as the server last heard from it.

    Attributes:
        id: Row id.
        name: The agent's name (unique).
        version: The certvigil version it runs.
        tags: The tags it announced (targets assigned by tag reach it).
        interval_s: Its scan interval: silence past three of them raises an alert.
        targets: How many endpoints it scans.
        backlog: Reports waiting in its outbox at the last contact.
        first_contact_utc: Its first report or target fetch.
        last_contact_utc: Its latest one.
    """

    id: int
    name: str
    version: str
    tags: tuple[str, ...]
    interval_s: int
    targets: int
    backlog: int
    first_contact_utc: datetime
    last_contact_utc: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertEventRecord:
    """One entry of the alert event log.

    Attributes:
        id: Position in the log; ids only grow.
        alert_id: The alert it concerns.
        event: ``opened``, ``acknowledged``, ``resolved`` or ``delivery_failed``.
        created_at_utc: When it happened.
        payload: The alert as it stood then (JSON-ready).
        detail: Extra text (a delivery error), ``None`` when none.
    """

    id: int
    alert_id: int
    event: str
    created_at_utc: datetime
    payload: dict[str, Any]
    detail: str | None


# API keys ---------------------------------------------------------------------------


def _key_record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        scope=row.scope,
        lookup=row.lookup,
        key_hash=row.key_hash,
        created_at_utc=row.created_at_utc,
        revoked_at_utc=row.revoked_at_utc,
    )


def insert_api_key(
    connection: Connection, *, name: str, scope: str, lookup: str, key_hash: str, now: datetime
) -> int:
    """Stores a new key's hash; returns its id (the name must be new)."""
    key_id: int = connection.execute(
        API_KEYS.insert()
        .values(name=name, scope=scope, lookup=lookup, key_hash=key_hash, created_at_utc=now)
        .returning(API_KEYS.c.id)
    ).scalar_one()
    return key_id


def api_key_by_lookup(connection: Connection, lookup: str) -> ApiKeyRecord | None:
    """The key whose token carries ``lookup``, revoked or not."""
    row = connection.execute(select(API_KEYS).where(API_KEYS.c.lookup == lookup)).first()
    return None if row is None else _key_record(row)


def api_key_by_name(connection: Connection, name: str) -> ApiKeyRecord | None:
    """The key called ``name``."""
    row = connection.execute(select(API_KEYS).where(API_KEYS.c.name == name)).first()
    return None if row is None else _key_record(row)


def list_api_keys(connection: Connection) -> tuple[ApiKeyRecord, ...]:
    """Every key, oldest first."""
    rows = connection.execute(select(API_KEYS).order_by(API_KEYS.c.id)).all()
    return tuple(_key_record(r) for r in rows)


def revoke_api_key(connection: Connection, name: str, *, now: datetime) -> bool:
    """Revokes the key called ``name``; ``False`` when none is valid by that name."""
    result = connection.execute(
        update(API_KEYS)
        .where(API_KEYS.c.name == name, API_KEYS.c.revoked_at_utc.is_(None))
        .values(revoked_at_utc=now)
    )
    return bool(result.rowcount)


# Agents -----------------------------------------------------------------------------


def _agent_record(row: Any) -> AgentRecord:
    return AgentRecord(
        id=row.id,
        name=row.name,
        version=row.version,
        tags=tuple(row.tags or ()),
        interval_s=row.interval_s,
        targets=row.targets,
        backlog=row.backlog,
        first_contact_utc=row.first_contact_utc,
        last_contact_utc=row.last_contact_utc,
    )


def record_agent_contact(
    connection: Connection,
    *,
    name: str,
    api_key_id: int | None,
    version: str,
    tags: Sequence[str],
    interval_s: int,
    targets: int,
    backlog: int,
    now: datetime,
) -> AgentRecord:
    """Notes that an agent got in touch (creating its row the first time)."""
    a = AGENTS.c
    values = {
        "api_key_id": api_key_id,
        "version": version,
        "tags": list(tags),
        "interval_s": interval_s,
        "targets": targets,
        "backlog": backlog,
        "last_contact_utc": now,
    }
    updated = connection.execute(update(AGENTS).where(a.name == name).values(**values))
    if not updated.rowcount:
        connection.execute(AGENTS.insert().values(name=name, first_contact_utc=now, **values))
    row = connection.execute(select(AGENTS).where(a.name == name)).one()
    return _agent_record(row)


def list_agents(
    connection: Connection, *, after_name: str | None = None, limit: int | None = None
) -> tuple[AgentRecord, ...]:
    """Agents by name, after ``after_name`` (a page's cursor)."""
    statement = select(AGENTS).order_by(AGENTS.c.name)
    if after_name is not None:
        statement = statement.where(AGENTS.c.name > after_name)
    if limit is not None:
        statement = statement.limit(limit)
    return tuple(_agent_record(r) for r in connection.execute(statement))


def silent_agents(
    connection: Connection, *, now: datetime, intervals: int = 3
) -> tuple[AgentRecord, ...]:
    """Agents not heard from for longer than ``intervals`` of their own scan interval."""
    return tuple(
        agent
        for agent in list_agents(connection)
        if now - agent.last_contact_utc > timedelta(seconds=agent.interval_s * intervals)
    )


# Received reports -------------------------------------------------------------------


def received_report(connection: Connection, report_id: str) -> tuple[int, list[Any]] | None:
    """``(accepted, rejected)`` of a batch already stored under ``report_id``, else ``None``."""
    row = connection.execute(
        select(RECEIVED_REPORTS.c.accepted, RECEIVED_REPORTS.c.rejected).where(
            RECEIVED_REPORTS.c.report_id == report_id
        )
    ).first()
    return None if row is None else (int(row.accepted), list(row.rejected or ()))


def record_received_report(
    connection: Connection,
    *,
    report_id: str,
    agent_name: str,
    accepted: int,
    rejected: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    """Remembers a stored batch, in the transaction that stored its observations."""
    connection.execute(
        RECEIVED_REPORTS.insert().values(
            report_id=report_id,
            agent_name=agent_name,
            received_at_utc=now,
            accepted=accepted,
            rejected=list(rejected),
        )
    )


def count_received_reports(connection: Connection) -> int:
    """How many batches were stored."""
    return int(connection.execute(select(func.count()).select_from(RECEIVED_REPORTS)).scalar_one())


# Alert events -----------------------------------------------------------------------


def append_alert_event(
    connection: Connection,
    *,
    alert_id: int,
    event: str,
    now: datetime,
    payload: dict[str, Any],
    detail: str | None = None,
    delivery_id: int | None = None,
) -> int:
    """Appends an event in the caller's write transaction; returns its id.

    On PostgreSQL a transaction-scoped advisory lock orders the appends, so ids become
    visible in increasing order (sequence values alone can commit out of order).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK_KEY})
    event_id: int = connection.execute(
        ALERT_EVENTS.insert()
        .values(
            alert_id=alert_id,
            event=event,
            created_at_utc=now,
            payload=payload,
            detail=detail,
            delivery_id=delivery_id,
        )
        .returning(ALERT_EVENTS.c.id)
    ).scalar_one()
    return event_id


def failed_deliveries_untold(connection: Connection, *, limit: int = 100) -> tuple[Any, ...]:
    """Deliveries given up on that no ``delivery_failed`` event tells of yet:
    ``(delivery id, alert id, route, last error)`` rows, oldest first."""
    e = ALERT_EVENTS.c
    d = DELIVERIES.c
    told = select(e.id).where(e.delivery_id == d.id).exists()
    rows = connection.execute(
        select(d.id, d.alert_id, d.route, d.last_error)
        .where(d.status == DeliveryStatus.FAILED.value, ~told)
        .order_by(d.id)
        .limit(limit)
    ).all()
    return tuple(rows)


def alert_events_after(
    connection: Connection, after_id: int, *, limit: int = 500
) -> tuple[AlertEventRecord, ...]:
    """Events with an id above ``after_id``, oldest first."""
    e = ALERT_EVENTS.c
    rows = connection.execute(
        select(ALERT_EVENTS).where(e.id > after_id).order_by(e.id).limit(limit)
    ).all()
    return tuple(
        AlertEventRecord(
            id=r.id,
            alert_id=r.alert_id,
            event=r.event,
            created_at_utc=r.created_at_utc,
            payload=dict(r.payload or {}),
            detail=r.detail,
        )
        for r in rows
    )


def last_alert_event_id(connection: Connection) -> int:
    """The newest event's id, 0 when the log is empty."""
    value = connection.execute(select(func.max(ALERT_EVENTS.c.id))).scalar_one()
    return int(value or 0)


# Alerts, paged ----------------------------------------------------------------------


def alerts_page(
    connection: Connection,
    *,
    states: Iterable[AlertState] | None = None,
    severities: Iterable[Severity] | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> tuple[AlertRecord, ...]:
    """Alerts, newest (highest id) first, below ``before_id`` (a page's cursor)."""
    statement = _alert_select()
    c = ALERTS.c
    if states is not None:
        statement = statement.where(c.state.in_([s.value for s in states]))
    if severities is not None:
        statement = statement.where(c.severity.in_([s.value for s in severities]))
    if before_id is not None:
        statement = statement.where(c.id < before_id)
    statement = statement.order_by(c.id.desc()).limit(limit)
    return tuple(_alert_record(r) for r in connection.execute(statement))


def max_alert_id(connection: Connection) -> int:
    """The highest alert id, 0 when none."""
    return int(connection.execute(select(func.max(ALERTS.c.id))).scalar_one() or 0)


def alerts_above(connection: Connection, above_id: int) -> tuple[tuple[int, str], ...]:
    """``(id, state)`` of alerts made after ``above_id``, in id order."""
    rows = connection.execute(
        select(ALERTS.c.id, ALERTS.c.state).where(ALERTS.c.id > above_id).order_by(ALERTS.c.id)
    ).all()
    return tuple((int(r.id), str(r.state)) for r in rows)


def alert_ids_resolved_at(connection: Connection, at: datetime, *, at_most: int) -> tuple[int, ...]:
    """Ids (up to ``at_most``) of alerts resolved exactly at ``at``, in order."""
    rows = connection.execute(
        select(ALERTS.c.id)
        .where(
            ALERTS.c.id <= at_most,
            ALERTS.c.state == AlertState.RESOLVED.value,
            ALERTS.c.resolved_at_utc == at,
        )
        .order_by(ALERTS.c.id)
    ).all()
    return tuple(int(r.id) for r in rows)


def inventory_version(connection: Connection) -> int:
    """Changes whenever an observation is recorded (what the inventory is built from)."""
    value = connection.execute(select(func.max(OBSERVATIONS.c.id))).scalar_one()
    return int(value or 0)


def alerts_with_ids(connection: Connection, ids: Iterable[int]) -> tuple[AlertRecord, ...]:
    """The alerts with these ids, by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return ()
    statement = _alert_select().where(ALERTS.c.id.in_(wanted)).order_by(ALERTS.c.id)
    return tuple(_alert_record(r) for r in connection.execute(statement))


# Certificates, paged ----------------------------------------------------------------

CERTIFICATE_SORTS = ("not_after", "host", "issuer", "subject")
"""Fields the certificate list sorts by (``-field`` for descending)."""


def _sort_value(row: InventoryRow, field: str) -> str:
    if field == "host":
        return row.target.host.lower()
    if field == "issuer":
        return row.issuer
    if field == "subject":
        return row.subject
    return row.not_after_utc.isoformat()


def certificate_page(
    connection: Connection,
    *,
    now: datetime,
    expiring_within_days: float | None = None,
    host_glob: str | None = None,
    issuer: str | None = None,
    tag: str | None = None,
    grade_below: str | None = None,
    sort: str = "not_after",
    after: Sequence[Any] | None = None,
    limit: int = 100,
) -> tuple[tuple[InventoryRow, ...], list[Any] | None]:
    """Deployed leaf certificates, filtered, sorted and cut into pages.

    Args:
        connection: Any connection.
        now: Reference time of ``expiring_within_days``.
        expiring_within_days: Only those expiring before ``now`` plus this many days.
        host_glob: Only endpoints whose host matches this glob.
        issuer: Only issuers whose DN contains this text (any case).
        tag: Only endpoints with this label.
        grade_below: Only endpoints whose latest grade is worse than this one.
        sort: A field of :data:`CERTIFICATE_SORTS`, ``-`` in front for descending.
        after: The previous page's last key (the cursor), ``None`` for the first page.
        limit: Page size.

    Returns:
        The page and the key to pass as ``after`` for the next one (``None`` at the end).

    Raises:
        ValueError: An unknown sort field or a malformed ``after``.
    """
    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field not in CERTIFICATE_SORTS:
        raise ValueError(f"sort: one of {', '.join(CERTIFICATE_SORTS)} (- for descending)")
    rows = inventory(
        connection,
        now=now,
        expiring_within_days=expiring_within_days,
        host_glob=host_glob,
        issuer=issuer,
        tag=tag,
        checks=CheckFilter(grade_below=grade_below),
    )

    def key(row: InventoryRow) -> tuple[str, str, int]:
        return (_sort_value(row, field), row.sha256_hex, row.endpoint_id)

    ordered = sorted(rows, key=key, reverse=descending)
    start = 0
    if after is not None:
        if (
            not isinstance(after, list | tuple)
            or len(after) != 3
            or not isinstance(after[0], str)
            or not isinstance(after[1], str)
            or not isinstance(after[2], int)
        ):
            raise ValueError("cursor: not one this list made")
        mark = (after[0], after[1], after[2])
        keys = [key(r) for r in ordered]
        if descending:
            start = next((i for i, k in enumerate(keys) if k < mark), len(keys))
        else:
            start = bisect_right(keys, mark)
    chunk = tuple(ordered[start : start + limit])
    more = start + limit < len(ordered)
    return chunk, (list(key(chunk[-1])) if more and chunk else None)


def endpoints_page(
    connection: Connection,
    *,
    host_glob: str | None = None,
    tag: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> tuple[EndpointRecord, ...]:
    """Endpoints by id, above ``after_id`` (a page's cursor)."""
    found = list_endpoints(connection, host_glob=host_glob, tag=tag)
    ordered = sorted(found, key=lambda e: e.id)
    if after_id is not None:
        ordered = [e for e in ordered if e.id > after_id]
    return tuple(ordered[:limit])


def endpoint_exists(connection: Connection, endpoint_id: int) -> bool:
    """Whether an endpoint with this id is recorded."""
    row = connection.execute(select(ENDPOINTS.c.id).where(ENDPOINTS.c.id == endpoint_id)).first()
    return row is not None
