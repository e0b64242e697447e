"""The central server's reads and writes: API keys, agents, report ids, the alert event log.

Every function takes a connection inside the caller's transaction (``Store.read`` or
``Store.write``), so that, for instance, an acknowledgement and its stream event commit
together. The server itself issues no SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Dialect,
    Integer,
    Select,
    String,
    bindparam,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)

from certvigil.analysis.changes import Change
from certvigil.analysis.model import Severity
from certvigil.store.driver import (
    DriverStatement,
    json_text,
    positional_dialect,
    statements_for,
    time_binder,
)
from certvigil.store.ingest import insert_for
from certvigil.store.models import ALERTS, DELIVERIES, DEPLOYMENTS, ENDPOINTS, OBSERVATIONS
from certvigil.store.outbox import _alert_record, _alert_select
from certvigil.store.queries import (
    CheckFilter,
    endpoint_changes,
    endpoint_records,
    filter_endpoints,
    inventory_base_statement,
    inventory_params,
    inventory_records,
    sqlite_inventory_keys,
)
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
) -> None:
    """Notes that an agent got in touch (creating its row the first time).

    Every report batch does this: one update through the driver, and an insert only
    the first time (an upsert would take a new id from PostgreSQL's sequence on every
    contact)."""
    statements = statements_for(connection, _STATEMENTS, _ReportStatements)
    when = statements.when(now)
    labels = json_text(list(tags))
    contact = (api_key_id, version, labels, interval_s, targets, backlog)
    if not statements.agent_contact.run_one(connection, (*contact, when, name)).rowcount:
        # The first contact is the last one too.
        statements.first_contact.run_one(connection, (name, *contact, when, when))


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
    statement = statements_for(connection, _STATEMENTS, _ReportStatements).received
    row = connection.exec_driver_sql(statement, (report_id,)).first()
    if row is None:
        return None
    accepted, rejected = row
    # Through the driver a JSON column is text on SQLite, parsed already by psycopg.
    if isinstance(rejected, str | bytes):
        rejected = orjson.loads(rejected)
    return int(accepted), list(rejected or ())


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
    statements = statements_for(connection, _STATEMENTS, _ReportStatements)
    statements.record_received.run_one(
        connection,
        (report_id, agent_name, statements.when(now), accepted, json_text(list(rejected))),
    )


_AGENT_CONTACT_COLUMNS = (
    "api_key_id",
    "version",
    "tags",
    "interval_s",
    "targets",
    "backlog",
    "last_contact_utc",
)
_RECEIVED_COLUMNS = ("report_id", "agent_name", "received_at_utc", "accepted", "rejected")


class _ReportStatements:
    """The statements each report batch runs besides its observations, built once per
    database: building them per batch cost SQLAlchemy several times what running them
    costs (``store/driver.py``)."""

    def __init__(self, dialect: Dialect) -> None:
        positional = positional_dialect(dialect)
        a = AGENTS.c
        self.agent_contact = DriverStatement(
            update(AGENTS)
            .where(a.name == bindparam("b_name"))
            .values({column: bindparam(f"b_{column}") for column in _AGENT_CONTACT_COLUMNS}),
            positional,
            [f"b_{column}" for column in _AGENT_CONTACT_COLUMNS] + ["b_name"],
        )
        # Two first contacts at once: the second finds the row made and writes nothing.
        first = insert_for(dialect.name, AGENTS)
        self.first_contact = DriverStatement(
            first.on_conflict_do_nothing(index_elements=["name"]),
            positional,
            ("name", *_AGENT_CONTACT_COLUMNS[:-1], "first_contact_utc", "last_contact_utc"),
        )
        self.record_received = DriverStatement(
            RECEIVED_REPORTS.insert(), positional, _RECEIVED_COLUMNS
        )
        r = RECEIVED_REPORTS.c
        self.received = str(
            select(r.accepted, r.rejected)
            .where(r.report_id == bindparam("b_report_id"))
            .compile(dialect=positional)
        )
        self.when = time_binder(dialect.name)


_STATEMENTS: dict[str, _ReportStatements] = {}


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


def append_alert_events(connection: Connection, events: Sequence[dict[str, Any]]) -> list[int]:
    """Appends several events in the caller's write transaction, in the order given;
    returns their ids in that order.

    Each event is a mapping of ``alert_id``, ``event``, ``created_at_utc``, ``payload``,
    ``detail`` and ``delivery_id``. One statement for all of them, under the same
    advisory lock as :func:`append_alert_event` on PostgreSQL.
    """
    if not events:
        return []
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK_KEY})
    rows = connection.execute(
        ALERT_EVENTS.insert().returning(ALERT_EVENTS.c.id, sort_by_parameter_order=True),
        list(events),
    ).all()
    return [int(row.id) for row in rows]


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

MAX_CURSOR_ID = 2**62
"""Largest row id a cursor may carry (SQLite's integers are 64-bit signed)."""


def _sort_value(row: InventoryRow, field: str) -> str:
    """The value of the sort field that a page's cursor carries."""
    if field == "host":
        return row.target.host
    if field == "issuer":
        return row.issuer
    if field == "subject":
        return row.subject
    return row.not_after_utc.isoformat()


def cursor_text(value: Any) -> str:
    """A cursor's text value, checked to be one the database can take.

    Raises:
        ValueError: Not a string, or not encodable (a lone surrogate from JSON).
    """
    if not isinstance(value, str) or len(value) > 1000:
        raise ValueError("cursor: not one this list made")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("cursor: not one this list made") from None
    return value


def cursor_id(value: Any) -> int:
    """A cursor's row id, checked to be one the database can take.

    Raises:
        ValueError: Not an integer (``true`` is not one) or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CURSOR_ID:
        raise ValueError("cursor: not one this list made")
    return value


def _certificate_cursor(after: Any, field: str) -> tuple[Any, str, int]:
    """``after`` checked and its first value as the sort column holds it."""
    if not isinstance(after, list | tuple) or len(after) != 3:
        raise ValueError("cursor: not one this list made")
    value = cursor_text(after[0])
    sha = cursor_text(after[1])
    endpoint_id = cursor_id(after[2])
    if field != "not_after":
        return value, sha, endpoint_id
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("cursor: not one this list made") from None
    if when.tzinfo is None:
        raise ValueError("cursor: not one this list made")
    return when, sha, endpoint_id


@functools.lru_cache(maxsize=256)
def _certificate_page_statement(
    *,
    on_sqlite: bool,
    horizon: bool,
    issuer: bool,
    host_glob: bool,
    tag: bool,
    grade_below: str | None,
    field: str,
    descending: bool,
    has_after: bool,
) -> tuple[Select[Any], Select[Any]]:
    """The page's statements for one combination of filters and order, built once: the
    keys of the page (sort value, fingerprint, endpoint id) and the rows of given
    endpoints.

    Keyset paging: rows after the cursor's (sort value, fingerprint, endpoint id), in
    that order, ``LIMIT :b_limit``. The condition repeats the sort column alone
    (``value >= :cursor``) beside the exact row comparison, so that the database can
    start in its index (expiry: the covering index of current deployments) at the
    cursor rather than filter every row before it.
    """
    statement = inventory_base_statement(
        on_sqlite=on_sqlite,
        include_chain=False,
        horizon=horizon,
        issuer=issuer,
        host_glob=host_glob,
        tag=tag,
        checks=CheckFilter(grade_below=grade_below),
    )
    columns = statement.selected_columns
    endpoint_column: Any = columns[0]
    sha_column: Any = DEPLOYMENTS.c.certificate_sha256
    sort_column: Any
    if field == "host":
        # As stored: lower case, IDNs as A-labels (see Target), so no lower() is
        # needed, and none whose idea of case differs between Python and the database.
        sort_column = columns[1]
    elif field == "issuer":
        sort_column = columns[11]
    elif field == "subject":
        sort_column = columns[9]
    else:
        sort_column = DEPLOYMENTS.c.not_after_utc
    if not on_sqlite and field != "not_after":
        # Byte order, as on SQLite, whatever the database's collation.
        sort_column = sort_column.collate("C")
    # Two statements: the page's keys first, from as few columns as the filters and the
    # order need (the sort runs over every matching row, and a narrow row is a cheap
    # one: no certificate facts, no labels), then the full rows of those keys alone.
    rows = statement.where(DEPLOYMENTS.c.endpoint_id.in_(bindparam("b_page_ids", expanding=True)))
    keys: Select[Any]
    if on_sqlite:
        keys, sort_column, sha_column, endpoint_column = sqlite_inventory_keys(
            field=field,
            horizon=horizon,
            issuer=issuer,
            host_glob=host_glob,
            tag=tag,
            checks=CheckFilter(grade_below=grade_below),
        )
        keys = _after(keys, sort_column, sha_column, endpoint_column, has_after, descending)
    else:
        narrow: Select[Any] = _after(
            statement, sort_column, sha_column, endpoint_column, has_after, descending
        ).with_only_columns(sort_column, sha_column, endpoint_column)
        keys = narrow
    order = [sort_column, sha_column, endpoint_column]
    if descending:
        order = [column.desc() for column in order]
    keys = keys.order_by(*order).limit(bindparam("b_limit", type_=Integer))
    return keys, rows


def _after(
    statement: Select[Any],
    sort_column: Any,
    sha_column: Any,
    endpoint_column: Any,
    has_after: bool,
    descending: bool,
) -> Select[Any]:
    """Keeps the rows after the cursor (``b_after_value``, ``b_after_sha``,
    ``b_after_id``) in the page order."""
    if not has_after:
        return statement
    value = bindparam("b_after_value", type_=sort_column.type)
    sha = bindparam("b_after_sha", type_=String)
    endpoint_id = bindparam("b_after_id", type_=Integer)
    if descending:
        return statement.where(
            sort_column <= value,
            or_(
                sort_column < value, tuple_(sha_column, endpoint_column) < tuple_(sha, endpoint_id)
            ),
        )
    return statement.where(
        sort_column >= value,
        or_(sort_column > value, tuple_(sha_column, endpoint_column) > tuple_(sha, endpoint_id)),
    )


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
    """Deployed leaf certificates, filtered, sorted and cut into pages, in the database.

    Rows are ordered by (sort value, fingerprint, endpoint id), the key a cursor
    carries: the host, issuer or subject DN as stored (byte order), the expiry as
    ISO 8601.

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
        ValueError: An unknown sort field or grade, or a malformed ``after``.
    """
    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field not in CERTIFICATE_SORTS:
        raise ValueError(f"sort: one of {', '.join(CERTIFICATE_SORTS)} (- for descending)")
    if limit < 1:
        raise ValueError("limit: at least 1")
    CheckFilter(grade_below=grade_below)  # refuses an unknown grade
    keys_statement, rows_statement = _certificate_page_statement(
        on_sqlite=connection.dialect.name == "sqlite",
        horizon=expiring_within_days is not None,
        issuer=bool(issuer),
        host_glob=bool(host_glob),
        tag=bool(tag),
        grade_below=grade_below,
        field=field,
        descending=descending,
        has_after=after is not None,
    )
    params = inventory_params(
        now=now,
        expiring_within_days=expiring_within_days,
        issuer=issuer,
        host_glob=host_glob,
        tag=tag,
    )
    params["b_limit"] = limit + 1
    if after is not None:
        value, sha, endpoint_id = _certificate_cursor(after, field)
        params |= {"b_after_value": value, "b_after_sha": sha, "b_after_id": endpoint_id}
    keys = [
        (str(sha), int(endpoint_id))
        for _value, sha, endpoint_id in connection.execute(keys_statement, params)
    ]
    more = len(keys) > limit
    keys = keys[:limit]
    if not keys:
        return (), None
    params["b_page_ids"] = sorted({endpoint_id for _sha, endpoint_id in keys})
    found = {
        (r.sha256_hex, r.endpoint_id): r
        for r in inventory_records(connection, rows_statement, params)
    }
    chunk = tuple(found[key] for key in keys if key in found)
    if not more or not chunk:
        return chunk, None
    last = chunk[-1]
    return chunk, [_sort_value(last, field), last.sha256_hex, last.endpoint_id]


def endpoints_page(
    connection: Connection,
    *,
    host_glob: str | None = None,
    tag: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> tuple[EndpointRecord, ...]:
    """Endpoints by id, above ``after_id`` (a page's cursor), at most ``limit``."""
    e = ENDPOINTS.c
    statement = filter_endpoints(select(ENDPOINTS), host_glob=host_glob, tag=tag)
    if after_id is not None:
        statement = statement.where(e.id > after_id)
    rows = connection.execute(statement.order_by(e.id).limit(limit)).all()
    return endpoint_records(connection, rows)


def changes_page(
    connection: Connection,
    since_utc: datetime,
    *,
    host_glob: str | None = None,
    tag: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> tuple[tuple[tuple[EndpointRecord, tuple[Change, ...]], ...], bool]:
    """Endpoints with changes since ``since_utc`` and their changes, by endpoint id.

    Endpoints seen since then are read in id order, above ``after_id``, a batch at a
    time, until ``limit`` of them have changes (or none is left).

    Returns:
        The page's (endpoint, changes) pairs, and whether more follow.
    """
    e = ENDPOINTS.c
    base = filter_endpoints(
        select(ENDPOINTS).where(e.last_seen_utc >= since_utc), host_glob=host_glob, tag=tag
    ).order_by(e.id)
    found: list[tuple[EndpointRecord, tuple[Change, ...]]] = []
    batch = max(limit + 1, 50)
    while True:
        statement = base if after_id is None else base.where(e.id > after_id)
        rows = connection.execute(statement.limit(batch)).all()
        for record in endpoint_records(connection, rows):
            changes = endpoint_changes(connection, record.id, since_utc=since_utc)
            if not changes:
                continue
            if len(found) == limit:
                return tuple(found), True
            found.append((record, changes))
        if len(rows) < batch:
            return tuple(found), False
        after_id = rows[-1].id


def endpoint_exists(connection: Connection, endpoint_id: int) -> bool:
    """Whether an endpoint with this id is recorded."""
    row = connection.execute(select(ENDPOINTS.c.id).where(ENDPOINTS.c.id == endpoint_id)).first()
    return row is not None
