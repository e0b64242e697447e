"""Reading the inventory: expiring certificates, deployments, endpoint history, changes.

Every function takes a Connection and returns frozen records (``store.records``); none
reads the clock: callers pass ``now``.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Row,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
)

from certvigil.analysis.changes import Change, ObservedState, changes_over
from certvigil.analysis.model import (
    CertificateFacts,
    Finding,
    KeyType,
    Severity,
    ValidationLevel,
)
from certvigil.observed.handshake import FailureKind
from certvigil.store.models import (
    CERTIFICATES,
    DEPLOYMENTS,
    ENDPOINT_TAGS,
    ENDPOINTS,
    OBSERVATIONS,
    UtcDateTime,
    current_deployment_last_seen,
    deployment_last_seen,
    still_served,
    utc_from_sqlite_text,
)
from certvigil.store.records import (
    DeploymentRecord,
    EndpointRecord,
    InventoryRow,
    ObservationRecord,
    ObservationStatus,
)
from certvigil.store.sql_lists import one_of_parameter
from certvigil.targets.target import StartTLS, Target

_CERTS = CERTIFICATES
_ENDPOINTS = ENDPOINTS
_DEPLOYMENTS = DEPLOYMENTS
_OBSERVATIONS = OBSERVATIONS
_TAGS = ENDPOINT_TAGS

_IN_CHUNK = 5000


def glob_to_like(pattern: str) -> str:
    """A shell glob (``*``, ``?``) as a SQL LIKE pattern escaped with ``\\``."""
    out = []
    for char in pattern:
        if char in "\\%_":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def target_from_columns(host: str, port: int, sni: str, starttls: str) -> Target:
    """The Target for an endpoint row's key columns."""
    return Target(
        host=host,
        port=port,
        sni=sni or None,
        starttls=StartTLS(starttls) if starttls else None,
    )


def _endpoint_target(row: Any) -> Target:
    return target_from_columns(row.host, row.port, row.sni, row.starttls)


@functools.cache
def _tags_statement(dialect_name: str) -> Select[Any]:
    return select(_TAGS.c.endpoint_id, _TAGS.c.tag).where(
        one_of_parameter(dialect_name, _TAGS.c.endpoint_id, "b_endpoint_ids")
    )


def tags_for(connection: Connection, endpoint_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Each endpoint's labels, sorted; endpoints without labels are absent."""
    ids = sorted(set(endpoint_ids))
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return {}
    statement = _tags_statement(connection.dialect.name)
    # fetchall: row-by-row fetching costs psycopg a round of bookkeeping per row.
    rows = connection.execute(statement, {"b_endpoint_ids": ids}).all()
    for endpoint_id, tag in rows:
        found[endpoint_id].append(tag)
    return {key: tuple(sorted(value)) for key, value in found.items()}


def filter_endpoints(
    statement: Select[Any], *, host_glob: str | None, tag: str | None
) -> Select[Any]:
    """Keeps endpoints whose host matches ``host_glob`` and that carry ``tag``."""
    return _where_endpoint(
        statement,
        host_like=glob_to_like(host_glob.lower()) if host_glob else None,
        tag=tag or None,
    )


WEAK_PROTOCOLS: tuple[str, ...] = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")
"""Protocols ``--weak-protocols`` looks for in an endpoint's accepted ones."""

GRADES_BEST_FIRST: tuple[str, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M")
"""Grades from best to worst (``T`` untrusted and ``M`` name mismatch below F)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckFilter:
    """Inventory filters on the latest results of the optional checks.

    Attributes:
        grade_below: Keep endpoints graded worse than this (``"B"``: C, D, ..., T, M).
        revoked: Keep endpoints whose certificate was found revoked.
        weak_protocols: Keep endpoints accepting SSLv2, SSLv3, TLS 1.0 or TLS 1.1.
    """

    grade_below: str | None = None
    revoked: bool = False
    weak_protocols: bool = False

    def __post_init__(self) -> None:
        if self.grade_below is not None and self.grade_below not in GRADES_BEST_FIRST:
            raise ValueError(
                f'grade "{self.grade_below}": choose one of {", ".join(GRADES_BEST_FIRST)}'
            )


def _where_checks(statement: Select[Any], checks: CheckFilter) -> Select[Any]:
    e = _ENDPOINTS.c
    if checks.grade_below is not None:
        worse = GRADES_BEST_FIRST[GRADES_BEST_FIRST.index(checks.grade_below) + 1 :]
        statement = statement.where(e.grade.in_(worse))
    if checks.revoked:
        statement = statement.where(e.revocation_status == "revoked")
    if checks.weak_protocols:
        # Protocols are stored comma-separated ("TLSv1.0,TLSv1.2"): a name is matched
        # whole between commas.
        padded = literal(",") + func.coalesce(e.protocols, "") + literal(",")
        statement = statement.where(or_(*(padded.like(f"%,{p},%") for p in WEAK_PROTOCOLS)))
    return statement


def _where_endpoint(statement: Select[Any], *, host_like: Any, tag: Any) -> Select[Any]:
    """Keeps endpoints whose host is LIKE ``host_like`` and that carry ``tag`` (values or
    bound parameters; ``None`` for no condition)."""
    if host_like is not None:
        statement = statement.where(_ENDPOINTS.c.host.like(host_like, escape="\\"))
    if tag is not None:
        statement = statement.where(
            exists().where(and_(_TAGS.c.endpoint_id == _ENDPOINTS.c.id, _TAGS.c.tag == tag))
        )
    return statement


def inventory(
    connection: Connection,
    *,
    now: datetime | None = None,
    expiring_within_days: float | None = None,
    host_glob: str | None = None,
    issuer: str | None = None,
    tag: str | None = None,
    include_chain: bool = False,
    limit: int | None = None,
    checks: CheckFilter | None = None,
) -> tuple[InventoryRow, ...]:
    """Certificates as currently deployed, soonest expiry first.

    Args:
        connection: Any connection.
        now: The reference time; required with ``expiring_within_days``.
        expiring_within_days: Keep only certificates whose ``not_after`` is before
            ``now`` plus this many days (already expired ones included).
        host_glob: Keep endpoints whose host matches this glob (``internal*``).
        issuer: Keep certificates whose issuer DN contains this text (any case).
        tag: Keep endpoints carrying this label.
        include_chain: Include intermediates and roots the endpoints send, not only
            leaves.
        limit: At most this many rows.
        checks: Filters on the latest grade, revocation status and protocols.

    Returns:
        One row per (endpoint, certificate) currently deployed.

    Raises:
        ValueError: ``expiring_within_days`` without ``now``.
    """
    on_sqlite = connection.dialect.name == "sqlite"
    if expiring_within_days is not None and now is None:
        raise ValueError("now must be given with expiring_within_days")
    statement = _inventory_statement(
        on_sqlite=on_sqlite,
        include_chain=include_chain,
        horizon=expiring_within_days is not None,
        issuer=bool(issuer),
        host_glob=bool(host_glob),
        tag=bool(tag),
        checks=checks or CheckFilter(),
    )
    params = inventory_params(
        now=now,
        expiring_within_days=expiring_within_days,
        issuer=issuer,
        host_glob=host_glob,
        tag=tag,
    )
    rows = inventory_records(connection, statement, params)
    rows.sort(key=_inventory_order)
    return tuple(rows if limit is None else rows[:limit])


def inventory_params(
    *,
    now: datetime | None,
    expiring_within_days: float | None,
    issuer: str | None,
    host_glob: str | None,
    tag: str | None,
) -> dict[str, Any]:
    """The bound values of the inventory statement's filters (``b_horizon`` ...)."""
    params: dict[str, Any] = {}
    if expiring_within_days is not None and now is not None:
        params["b_horizon"] = now + timedelta(days=expiring_within_days)
    if issuer:
        params["b_issuer"] = f"%{glob_to_like(issuer.lower())}%"
    if host_glob:
        params["b_host"] = glob_to_like(host_glob.lower())
    if tag:
        params["b_tag"] = tag
    return params


def inventory_records(
    connection: Connection, statement: Select[Any], params: dict[str, Any]
) -> list[InventoryRow]:
    """Runs an inventory statement (:func:`inventory_base_statement`'s columns) and maps
    its rows, in the statement's order."""
    if connection.dialect.name == "sqlite":
        # fetchall: row-by-row fetching costs a round of bookkeeping per row.
        found: Sequence[Sequence[Any]] = connection.execute(statement, params).all()
        when: Any = utc_from_sqlite_text
    else:
        # Planner settings for this statement only (restored below; a failure rolls
        # them back with the transaction). Its cost estimate is several times too
        # high (replaced deployments share the expiry range of current ones), which
        # would make PostgreSQL compile it to machine code (JIT, 30 ms and more) and
        # start parallel workers for a few thousand index probes.
        # PostgreSQL before 11 has no JIT (and no ``jit`` setting to change).
        version = connection.dialect.server_version_info or (0,)
        saved = connection.execute(_PG_PLANNER_FOR_PROBES).one() if version >= (11,) else None
        found = connection.execute(statement, params).all()
        if saved is not None:
            connection.execute(_PG_PLANNER_RESTORE, {"jit": saved[0], "workers": saved[1]})
        # psycopg gives every time of a result in the session's zone: UTC in
        # certvigil's sessions (engine.py), then the times are used as they come.
        when = _same if not found or found[0][6].tzinfo is UTC else _utc
    # Names and labels arrive as JSON text on both databases: one document for every
    # row's names and labels, one decoder call, not thousands.
    san_lists: list[Any] = json.loads("[" + ",".join(r[18] for r in found) + "]")
    tag_lists: list[Any] = [
        tuple(sorted(labels)) for labels in json.loads("[" + ",".join(r[19] for r in found) + "]")
    ]
    return [
        InventoryRow(
            endpoint_id=endpoint_id,
            target=target_from_columns(host, port, sni, starttls),
            tags=labels,
            chain_position=chain_position,
            sha256_hex=sha256_hex,
            subject=subject,
            subject_cn=subject_cn,
            issuer=issuer_dn,
            issuer_cn=issuer_cn,
            serial_hex=serial_hex,
            not_before_utc=when(not_before_utc),
            not_after_utc=when(not_after_utc),
            key_type=key_type,
            key_bits=key_bits,
            san_dns=tuple(san_dns or ()),
            deployed_since_utc=when(deployed_since_utc),
            last_seen_utc=when(last_seen_utc),
            grade=grade,
            revocation_status=revocation_status,
            protocols=protocol_list(protocols),
        )
        for (
            (
                endpoint_id,
                host,
                port,
                sni,
                starttls,
                chain_position,
                deployed_since_utc,
                last_seen_utc,
                sha256_hex,
                subject,
                subject_cn,
                issuer_dn,
                issuer_cn,
                serial_hex,
                not_before_utc,
                not_after_utc,
                key_type,
                key_bits,
                _san_dns_json,
                _labels_json,
                grade,
                revocation_status,
                protocols,
            ),
            san_dns,
            labels,
        ) in zip(found, san_lists, tag_lists, strict=True)
    ]


@functools.lru_cache(maxsize=128)
def _inventory_statement(
    *,
    on_sqlite: bool,
    include_chain: bool,
    horizon: bool,
    issuer: bool,
    host_glob: bool,
    tag: bool,
    checks: CheckFilter,
) -> Select[Any]:
    """The inventory statement for one combination of filters, built once.

    Filter values are bound parameters (``b_horizon``, ``b_issuer``, ``b_host``,
    ``b_tag``), so the statement object is reused: building it, and SQLAlchemy's
    cache key for it, cost a few milliseconds per call otherwise.
    """
    statement = inventory_base_statement(
        on_sqlite=on_sqlite,
        include_chain=include_chain,
        horizon=horizon,
        issuer=issuer,
        host_glob=host_glob,
        tag=tag,
        checks=checks,
    )
    # Expiry order is the index's order: it keeps the plan on that index.
    return statement.order_by(_DEPLOYMENTS.c.not_after_utc)


SORT_COLUMNS = {
    "not_after": DEPLOYMENTS.c.not_after_utc,
    "host": ENDPOINTS.c.host,
    "issuer": CERTIFICATES.c.issuer,
    "subject": CERTIFICATES.c.subject,
}
"""What the inventory's keyset pages sort by, on SQLite (see ``sqlite_inventory_keys``)."""


def sqlite_inventory_keys(
    *,
    field: str,
    horizon: bool,
    issuer: bool,
    host_glob: bool,
    tag: bool,
    checks: CheckFilter,
) -> tuple[Select[Any], Any, Any, Any]:
    """SQLite: ``(sort value, fingerprint, endpoint id)`` of the current leaves that pass
    the filters, in no order; and those three columns.

    The certificates are joined only when the sort or a filter reads them: every
    deployment's certificate exists (a foreign key), and without the join a sort by host
    or expiry walks an index in order and stops after the page (0.2 ms for 20,000
    endpoints, against 160 ms with a certificate looked up for each).
    """
    d, e, c = _DEPLOYMENTS.c, _ENDPOINTS.c, _CERTS.c
    source = _DEPLOYMENTS.join(_ENDPOINTS, e.id == d.endpoint_id)
    if issuer or field in ("issuer", "subject"):
        source = source.join(_CERTS, c.sha256_hex == d.certificate_sha256)
    sort_column = SORT_COLUMNS[field]
    statement: Select[Any] = (
        select(sort_column, d.certificate_sha256, e.id)
        .select_from(source)
        # A literal 0, not a bound one: only then does SQLite's planner see that an
        # index in the sort's order (endpoints by host) can end the scan after a page.
        .where(d.is_current.is_(True), d.chain_position == literal_column("0"))
    )
    if horizon:
        statement = statement.where(d.not_after_utc <= bindparam("b_horizon"))
    if issuer:
        statement = statement.where(
            func.lower(c.issuer).like(bindparam("b_issuer", type_=String), escape="\\")
        )
    statement = _where_endpoint(
        statement,
        host_like=bindparam("b_host", type_=String) if host_glob else None,
        tag=bindparam("b_tag", type_=String) if tag else None,
    )
    return _where_checks(statement, checks), sort_column, d.certificate_sha256, e.id


def inventory_base_statement(
    *,
    on_sqlite: bool,
    include_chain: bool,
    horizon: bool,
    issuer: bool,
    host_glob: bool,
    tag: bool,
    checks: CheckFilter,
) -> Select[Any]:
    """The inventory's filtered select, in no order (callers add order and limit).

    Its columns are those :func:`inventory_records` maps: endpoint id (0), host (1),
    port, SNI, STARTTLS, chain position, deployed since, last seen, fingerprint (8),
    subject (9), subject CN, issuer (11), ...; the filters' values are the bound
    parameters of :func:`inventory_params`.
    """
    d, c = _DEPLOYMENTS.c, _CERTS.c
    issuer_clause = (
        func.lower(c.issuer).like(bindparam("b_issuer", type_=String), escape="\\")
        if issuer
        else None
    )
    host_like = bindparam("b_host", type_=String) if host_glob else None
    tag_value = bindparam("b_tag", type_=String) if tag else None
    if on_sqlite:
        statement = _sqlite_inventory_select(
            issuer_clause, host_like=host_like, tag=tag_value, checks=checks
        )
    else:
        statement = _postgresql_inventory_select(
            issuer_clause, host_like=host_like, tag=tag_value, checks=checks
        )
    statement = statement.where(d.is_current.is_(True))
    if not include_chain:
        statement = statement.where(d.chain_position == 0)
    if horizon:
        # The deployment's copy of the expiry (see models.Deployment).
        statement = statement.where(d.not_after_utc <= bindparam("b_horizon"))
    return statement


_PG_PLANNER_FOR_PROBES = text(
    "SELECT saved.jit, saved.workers, set_config('jit', 'off', true), "
    "set_config('max_parallel_workers_per_gather', '0', true) "
    "FROM (SELECT current_setting('jit') AS jit, "
    "current_setting('max_parallel_workers_per_gather') AS workers OFFSET 0) AS saved"
)
"""PostgreSQL: no JIT and no parallel workers for the rest of the transaction; returns
the settings it replaced (the subquery is evaluated before the outer ``set_config``)."""

_PG_PLANNER_RESTORE = text(
    "SELECT set_config('jit', :jit, true), "
    "set_config('max_parallel_workers_per_gather', :workers, true)"
)


def _inventory_certificate_columns(certificates: Any, *, as_text: Any) -> tuple[Any, ...]:
    """Positions 9 to 18 of an inventory row: the certificate's facts, names as JSON text."""
    c = certificates
    return (
        c.subject,
        c.subject_cn,
        c.issuer,
        c.issuer_cn,
        c.serial_hex,
        as_text(c.not_before_utc),
        as_text(c.not_after_utc),
        c.key_type,
        c.key_bits,
        as_text(c.san_dns),
    )


def _sqlite_inventory_select(
    issuer_clause: Any, *, host_like: Any, tag: Any, checks: CheckFilter
) -> Select[Any]:
    """SQLite: current deployments joined to endpoints and certificates.

    Times and JSON come back as the stored text, converted in one pass rather than by
    SQLAlchemy's per-value result processors. Each endpoint's labels come as a JSON
    array from their primary-key index, in the same statement (faster than a second
    query for thousands of endpoints).
    """
    d, e, c = _DEPLOYMENTS.c, _ENDPOINTS.c, _CERTS.c

    def as_text(column: Any) -> Any:
        return type_coerce(column, String)

    labels = (
        select(func.json_group_array(_TAGS.c.tag))
        .where(_TAGS.c.endpoint_id == e.id)
        .scalar_subquery()
    )
    statement = (
        select(
            e.id,
            e.host,
            e.port,
            e.sni,
            e.starttls,
            d.chain_position,
            as_text(d.first_seen_utc),
            as_text(current_deployment_last_seen(e.last_ok_utc, d.last_seen_utc)),
            d.certificate_sha256,
            *_inventory_certificate_columns(c, as_text=as_text),
            labels,
            e.grade,
            e.revocation_status,
            e.protocols,
        )
        .select_from(_DEPLOYMENTS.join(_ENDPOINTS, e.id == d.endpoint_id))
        .join(_CERTS, c.sha256_hex == d.certificate_sha256)
    )
    if issuer_clause is not None:
        statement = statement.where(issuer_clause)
    return _where_checks(_where_endpoint(statement, host_like=host_like, tag=tag), checks)


def _postgresql_inventory_select(
    issuer_clause: Any, *, host_like: Any, tag: Any, checks: CheckFilter
) -> Select[Any]:
    """PostgreSQL: current deployments from their index, each endpoint and certificate by key.

    The endpoint, its labels (a JSON array from their primary-key index) and the
    certificate come from one LATERAL subquery with ``LIMIT 1`` (one row by primary
    keys), which PostgreSQL cannot flatten into a join: it must look each up by key
    from the deployments, in index order. As a join, its planner, which expects
    several times more current deployments than there are, hashes every endpoint
    (or every certificate) instead. Names come as JSON text; times untouched
    (psycopg makes them aware, in UTC with the session's zone).
    """
    d, e, c = _DEPLOYMENTS.c, _ENDPOINTS.c, _CERTS.c
    labels = func.coalesce(
        select(cast(func.json_agg(_TAGS.c.tag), Text))
        .where(_TAGS.c.endpoint_id == e.id)
        .scalar_subquery(),
        "[]",
    )
    by_key = (
        select(
            e.id,
            e.host,
            e.port,
            e.sni,
            e.starttls,
            *_inventory_certificate_columns(c, as_text=_same),
            type_coerce(labels, String).label("labels"),
            e.grade,
            e.revocation_status,
            e.protocols,
            e.last_ok_utc,
        )
        .select_from(_ENDPOINTS.join(_CERTS, c.sha256_hex == d.certificate_sha256))
        .where(e.id == d.endpoint_id)
    )
    if issuer_clause is not None:
        by_key = by_key.where(issuer_clause)
    by_key = _where_checks(_where_endpoint(by_key, host_like=host_like, tag=tag), checks)
    found = by_key.limit(1).lateral("found")

    def as_text(column: Any) -> Any:
        if isinstance(column.type, UtcDateTime):
            return type_coerce(column, DateTime(timezone=True))
        return type_coerce(cast(column, Text), String)

    f = found.c
    return select(
        f.id,
        f.host,
        f.port,
        f.sni,
        f.starttls,
        d.chain_position,
        as_text(d.first_seen_utc),
        as_text(current_deployment_last_seen(f.last_ok_utc, d.last_seen_utc)),
        d.certificate_sha256,
        *_inventory_certificate_columns(f, as_text=as_text),
        f.labels,
        f.grade,
        f.revocation_status,
        f.protocols,
    ).select_from(_DEPLOYMENTS.join(found, true()))


def _inventory_order(row: InventoryRow) -> tuple[datetime, str, int, int]:
    return (row.not_after_utc, row.target.host, row.target.port, row.chain_position)


def _same(value: Any) -> Any:
    return value


def _utc(value: datetime) -> datetime:
    """An aware time in UTC (itself when psycopg already gave UTC, as in certvigil's sessions)."""
    return value.astimezone(UTC)


def expiring_certificates(
    connection: Connection,
    *,
    now: datetime,
    within_days: float,
    host_glob: str | None = None,
    issuer: str | None = None,
    tag: str | None = None,
    include_chain: bool = False,
) -> tuple[InventoryRow, ...]:
    """Deployed certificates that expire within ``within_days`` of ``now`` (or already have).

    See :func:`inventory` for the filters.
    """
    return inventory(
        connection,
        now=now,
        expiring_within_days=within_days,
        host_glob=host_glob,
        issuer=issuer,
        tag=tag,
        include_chain=include_chain,
    )


def certificate_deployments(
    connection: Connection, sha256_hex: str, *, current_only: bool = False
) -> tuple[DeploymentRecord, ...]:
    """Where a certificate is (or was) served, most recently seen first.

    Args:
        connection: Any connection.
        sha256_hex: The certificate's SHA-256 fingerprint (any case, colons allowed).
        current_only: Only endpoints still serving it.

    Returns:
        One record per endpoint that served it.
    """
    d, e = _DEPLOYMENTS.c, _ENDPOINTS.c
    last_seen = deployment_last_seen(d, e).label("last_seen_utc")
    statement = (
        select(
            e.id,
            e.host,
            e.port,
            e.sni,
            e.starttls,
            d.chain_position,
            d.first_seen_utc,
            last_seen,
            d.is_current,
        )
        .select_from(_DEPLOYMENTS.join(_ENDPOINTS, e.id == d.endpoint_id))
        .where(d.certificate_sha256 == normalise_fingerprint(sha256_hex))
        .order_by(last_seen.desc(), e.host, e.port)
    )
    if current_only:
        statement = statement.where(still_served(d.is_current))
    return tuple(
        DeploymentRecord(
            endpoint_id=r.id,
            target=_endpoint_target(r),
            chain_position=r.chain_position,
            first_seen_utc=r.first_seen_utc,
            last_seen_utc=r.last_seen_utc,
            is_current=bool(r.is_current),
        )
        for r in connection.execute(statement)
    )


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as stored: lower-case hex without colons or spaces."""
    return text.replace(":", "").replace(" ", "").strip().lower()


def _endpoint_record(row: Any, tags: tuple[str, ...]) -> EndpointRecord:
    return EndpointRecord(
        id=row.id,
        target=_endpoint_target(row),
        tags=tags,
        first_seen_utc=row.first_seen_utc,
        last_seen_utc=row.last_seen_utc,
        last_ok_utc=row.last_ok_utc,
        last_status=ObservationStatus(row.last_status),
        consecutive_failures=row.consecutive_failures,
        current_certificate_sha256=row.current_certificate_sha256,
        last_observation_id=row.last_observation_id,
    )


def endpoint_records(connection: Connection, rows: Sequence[Any]) -> tuple[EndpointRecord, ...]:
    """Rows of ``endpoints`` as records, with their labels (one query for all)."""
    tags = tags_for(connection, (r.id for r in rows))
    return tuple(_endpoint_record(r, tags.get(r.id, ())) for r in rows)


def find_endpoint(connection: Connection, target: Target) -> EndpointRecord | None:
    """The endpoint with exactly this (host, port, SNI, STARTTLS), ``None`` if unknown."""
    e = _ENDPOINTS.c
    row = connection.execute(
        select(_ENDPOINTS).where(
            and_(
                e.host == target.host,
                e.port == target.port,
                e.sni == (target.sni or ""),
                e.starttls == (target.starttls.value if target.starttls else ""),
            )
        )
    ).first()
    if row is None:
        return None
    return _endpoint_record(row, tags_for(connection, [row.id]).get(row.id, ()))


def list_endpoints(
    connection: Connection,
    *,
    host: str | None = None,
    port: int | None = None,
    host_glob: str | None = None,
    tag: str | None = None,
) -> tuple[EndpointRecord, ...]:
    """Known endpoints, by host and port, optionally filtered.

    Args:
        connection: Any connection.
        host: Exactly this host.
        port: Exactly this port.
        host_glob: Hosts matching this glob.
        tag: Endpoints carrying this label.

    Returns:
        The endpoints, ordered by host, port, SNI and STARTTLS.
    """
    e = _ENDPOINTS.c
    statement = select(_ENDPOINTS)
    if host is not None:
        statement = statement.where(e.host == host)
    if port is not None:
        statement = statement.where(e.port == port)
    statement = filter_endpoints(statement, host_glob=host_glob, tag=tag)
    rows = connection.execute(statement.order_by(e.host, e.port, e.sni, e.starttls)).all()
    tags = tags_for(connection, (r.id for r in rows))
    return tuple(_endpoint_record(r, tags.get(r.id, ())) for r in rows)


def _observation_select() -> Select[Any]:
    o, e, c = _OBSERVATIONS.c, _ENDPOINTS.c, _CERTS.c
    return (
        select(
            # Everything but the stored observation itself: history and changes read
            # many rows and never the document (store.observations reads it).
            *(column for column in _OBSERVATIONS.c if column.name != "observation_z"),
            e.host,
            e.port,
            e.sni,
            e.starttls,
            c.issuer.label("leaf_issuer"),
            c.not_after_utc.label("leaf_not_after_utc"),
        )
        .select_from(_OBSERVATIONS.join(_ENDPOINTS, e.id == o.endpoint_id))
        .outerjoin(_CERTS, c.sha256_hex == o.leaf_sha256)
    )


def observation_record(row: Row[Any]) -> ObservationRecord:
    """Maps a row of :func:`_observation_select` to a record."""
    return ObservationRecord(
        id=row.id,
        endpoint_id=row.endpoint_id,
        target=_endpoint_target(row),
        observed_at_utc=row.observed_at_utc,
        evaluated_at_utc=row.evaluated_at_utc,
        status=ObservationStatus(row.status),
        failure_kind=FailureKind(row.failure_kind) if row.failure_kind else None,
        failure_detail=row.failure_detail,
        tls_alert=row.tls_alert,
        peer_address=row.peer_address,
        protocol=row.protocol,
        cipher=row.cipher,
        alpn=row.alpn,
        leaf_sha256=row.leaf_sha256,
        leaf_issuer=row.leaf_issuer,
        leaf_not_after_utc=row.leaf_not_after_utc,
        chain_sha256=tuple(row.chain_sha256 or ()),
        is_trusted=row.is_trusted,
        chain_error=row.chain_error,
        hostname_matches=row.hostname_matches,
        verdict=Severity(row.verdict),
        findings=tuple(
            Finding(
                code=f["code"],
                severity=Severity(f["severity"]),
                message=f["message"],
                cert_index=f.get("cert_index"),
            )
            for f in row.findings or ()
        ),
        connect_s=row.connect_s,
        handshake_s=row.handshake_s,
        checks=row.checks,
        grade=row.grade,
        protocols=protocol_list(row.protocols),
        revocation_status=row.revocation_status,
    )


def protocol_list(text: str | None) -> tuple[str, ...] | None:
    """Protocols stored comma-separated; ``""`` when none was accepted, ``None`` unprobed."""
    if text is None:
        return None
    return tuple(text.split(",")) if text else ()


def get_observation(connection: Connection, observation_id: int) -> ObservationRecord | None:
    """One observation by id, ``None`` when it does not exist (or was pruned)."""
    row = connection.execute(
        _observation_select().where(_OBSERVATIONS.c.id == observation_id)
    ).first()
    return observation_record(row) if row is not None else None


def endpoint_history(
    connection: Connection,
    endpoint_id: int,
    *,
    limit: int | None = 100,
    since_utc: datetime | None = None,
    before_id: int | None = None,
) -> tuple[ObservationRecord, ...]:
    """An endpoint's observations, newest first.

    Args:
        connection: Any connection.
        endpoint_id: The endpoint.
        limit: At most this many (``None`` for all).
        since_utc: Only observations at or after this time.
        before_id: Only observations with a lower id (a page's cursor).

    Returns:
        The observations, newest first.
    """
    o = _OBSERVATIONS.c
    statement = _observation_select().where(o.endpoint_id == endpoint_id)
    if since_utc is not None:
        statement = statement.where(o.observed_at_utc >= since_utc)
    if before_id is not None:
        statement = statement.where(o.id < before_id)
    statement = statement.order_by(o.observed_at_utc.desc(), o.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return tuple(observation_record(r) for r in connection.execute(statement))


def observed_state(record: ObservationRecord) -> ObservedState:
    """The change-relevant facts of a stored observation."""
    return ObservedState(
        observed_at_utc=record.observed_at_utc,
        is_ok=record.status is ObservationStatus.OK,
        failure_kind=record.failure_kind.value if record.failure_kind else None,
        leaf_sha256=record.leaf_sha256,
        leaf_issuer=record.leaf_issuer,
        protocol=record.protocol,
        chain_sha256=record.chain_sha256,
        is_trusted=record.is_trusted,
        hostname_matches=record.hostname_matches,
        grade=record.grade,
        protocols=record.protocols,
        revocation_status=record.revocation_status,
    )


def endpoint_changes(
    connection: Connection, endpoint_id: int, *, since_utc: datetime | None = None
) -> tuple[Change, ...]:
    """What changed at an endpoint, oldest first.

    Args:
        connection: Any connection.
        endpoint_id: The endpoint.
        since_utc: Only changes seen at or after this time; the last observations
            before it (the latest one, and the latest successful one) serve as the
            baseline.

    Returns:
        The changes between consecutive observations (see
        ``certvigil.analysis.changes.changes_over``).
    """
    o = _OBSERVATIONS.c
    baseline: list[ObservationRecord] = []
    statement = _observation_select().where(o.endpoint_id == endpoint_id)
    if since_utc is not None:
        before = statement.where(o.observed_at_utc < since_utc).order_by(
            o.observed_at_utc.desc(), o.id.desc()
        )
        last = connection.execute(before.limit(1)).first()
        last_ok = connection.execute(
            before.where(o.status == ObservationStatus.OK.value).limit(1)
        ).first()
        for row in (last_ok, last):
            if row is not None and all(b.id != row.id for b in baseline):
                baseline.append(observation_record(row))
        statement = statement.where(o.observed_at_utc >= since_utc)
    records = baseline + [
        observation_record(r)
        for r in connection.execute(statement.order_by(o.observed_at_utc, o.id))
    ]
    changes = changes_over(observed_state(r) for r in records)
    if since_utc is None:
        return changes
    return tuple(ch for ch in changes if ch.observed_at_utc >= since_utc)


def changes_since(
    connection: Connection,
    since_utc: datetime,
    *,
    host_glob: str | None = None,
    tag: str | None = None,
) -> tuple[tuple[EndpointRecord, tuple[Change, ...]], ...]:
    """What changed anywhere since a time: each endpoint with changes, and its changes.

    Args:
        connection: Any connection.
        since_utc: The start of the period.
        host_glob: Only endpoints whose host matches.
        tag: Only endpoints carrying this label.

    Returns:
        (endpoint, changes) pairs, by host and port; endpoints without changes omitted.
    """
    e = _ENDPOINTS.c
    statement = filter_endpoints(
        select(_ENDPOINTS).where(e.last_seen_utc >= since_utc), host_glob=host_glob, tag=tag
    ).order_by(e.host, e.port, e.sni, e.starttls)
    rows = connection.execute(statement).all()
    tags = tags_for(connection, (r.id for r in rows))
    result = []
    for row in rows:
        changes = endpoint_changes(connection, row.id, since_utc=since_utc)
        if changes:
            result.append((_endpoint_record(row, tags.get(row.id, ())), changes))
    return tuple(result)


def facts_from_json(data: dict[str, Any]) -> CertificateFacts:
    """Rebuilds CertificateFacts from the JSON the store keeps (see ``ingest.facts_to_json``).

    Raises:
        ValueError: The JSON is not a complete set of facts.
    """
    values: dict[str, Any] = {}
    for name in CertificateFacts.__dataclass_fields__:
        if name not in data:
            continue
        value = data[name]
        if name.endswith("_utc") and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif name == "key_type":
            value = KeyType(value)
        elif name == "validation_level":
            value = ValidationLevel(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return CertificateFacts(**values)
    except TypeError as exc:
        raise ValueError(f"stored certificate facts are incomplete: {exc}") from exc


def fingerprints_with_prefix(
    connection: Connection, prefix: str, *, limit: int = 11
) -> tuple[str, ...]:
    """The stored certificates' fingerprints that start with ``prefix``, in order.

    Args:
        connection: Any connection.
        prefix: Hex digits (any case, colons allowed).
        limit: At most this many are returned (enough to tell "ambiguous" and list some).

    Returns:
        The matching fingerprints, lower-case hex, sorted.
    """
    text = normalise_fingerprint(prefix)
    if not text or any(c not in "0123456789abcdef" for c in text):
        return ()
    column = _CERTS.c.sha256_hex
    # LIKE 'prefix%' (hex digits need no escaping): right under any collation; an
    # interactive lookup can afford the scan of one narrow column.
    statement = select(column).where(column.startswith(text)).order_by(column).limit(limit)
    return tuple(str(row) for row in connection.execute(statement).scalars())


def get_certificate(connection: Connection, sha256_hex: str) -> CertificateFacts | None:
    """A stored certificate's facts, ``None`` when unknown."""
    data = connection.execute(
        select(_CERTS.c.facts).where(_CERTS.c.sha256_hex == normalise_fingerprint(sha256_hex))
    ).scalar_one_or_none()
    return facts_from_json(data) if data is not None else None


def get_certificates(
    connection: Connection, sha256_hexes: Iterable[str]
) -> dict[str, CertificateFacts]:
    """Stored certificates' facts by fingerprint (one query); unknown ones are absent."""
    wanted = sorted({normalise_fingerprint(h) for h in sha256_hexes})
    found: dict[str, CertificateFacts] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        rows = connection.execute(
            select(_CERTS.c.sha256_hex, _CERTS.c.facts).where(_CERTS.c.sha256_hex.in_(chunk))
        ).all()
        found |= {str(sha): facts_from_json(facts) for sha, facts in rows}
    return found


def certificate_der(connection: Connection, sha256_hex: str) -> bytes | None:
    """The DER of a stored certificate, ``None`` when unknown or not kept."""
    der: bytes | None = connection.execute(
        select(_CERTS.c.der).where(_CERTS.c.sha256_hex == normalise_fingerprint(sha256_hex))
    ).scalar_one_or_none()
    return der


def latest_observations(
    connection: Connection, endpoint_ids: Sequence[int]
) -> dict[int, ObservationRecord]:
    """Each endpoint's latest kept observation."""
    e = _ENDPOINTS.c
    out: dict[int, ObservationRecord] = {}
    ids = sorted(set(endpoint_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        latest = select(e.last_observation_id).where(e.id.in_(chunk))
        for row in connection.execute(_observation_select().where(_OBSERVATIONS.c.id.in_(latest))):
            record = observation_record(row)
            out[record.endpoint_id] = record
    return out
