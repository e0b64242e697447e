"""Reading the inventory: expiring certificates, deployments, endpoint history, changes.

Every function takes a Connection and returns frozen records (``store.records``); none
reads the clock: callers pass ``now``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    exists,
    func,
    select,
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
from certvigil.store.models import CERTIFICATES, DEPLOYMENTS, ENDPOINT_TAGS, ENDPOINTS, OBSERVATIONS
from certvigil.store.records import (
    DeploymentRecord,
    EndpointRecord,
    InventoryRow,
    ObservationRecord,
    ObservationStatus,
)
from certvigil.target import StartTLS, Target

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


def tags_for(connection: Connection, endpoint_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Each endpoint's labels, sorted; endpoints without labels are absent."""
    ids = sorted(set(endpoint_ids))
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return {}
    statement = select(_TAGS.c.endpoint_id, _TAGS.c.tag).where(
        _in_list(connection, _TAGS.c.endpoint_id, "b_ids", Integer)
    )
    # fetchall: row-by-row fetching costs psycopg a round of bookkeeping per row.
    rows = connection.execute(statement, {"b_ids": _list_param(connection, ids)}).all()
    for endpoint_id, tag in rows:
        found[endpoint_id].append(tag)
    return {key: tuple(sorted(value)) for key, value in found.items()}


def _in_list(connection: Connection, column: Any, name: str, item_type: Any) -> Any:
    """``column IN <one parameter holding a list>``, so the statement compiles once.

    A plain ``IN (...)`` with thousands of values is a new statement each time, and
    compiling it costs more than running it.
    """
    if connection.dialect.name == "postgresql":
        return column == func.any(bindparam(name, type_=ARRAY(item_type)))
    return column.in_(select(column_valued_json_each(name)))


def column_valued_json_each(name: str) -> Any:
    """SQLite: the values of a JSON array parameter, as a one-column table."""
    return func.json_each(bindparam(name, type_=String)).table_valued("value").c.value


def _list_param(connection: Connection, values: Sequence[Any]) -> Any:
    if connection.dialect.name == "postgresql":
        return list(values)
    return json.dumps(list(values))


def _filter_endpoints(
    statement: Select[Any], *, host_glob: str | None, tag: str | None
) -> Select[Any]:
    if host_glob:
        statement = statement.where(
            _ENDPOINTS.c.host.like(glob_to_like(host_glob.lower()), escape="\\")
        )
    if tag:
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

    Returns:
        One row per (endpoint, certificate) currently deployed.

    Raises:
        ValueError: ``expiring_within_days`` without ``now``.
    """
    d, e, c = _DEPLOYMENTS.c, _ENDPOINTS.c, _CERTS.c
    on_sqlite = connection.dialect.name == "sqlite"

    def raw(column: Any) -> Any:
        # SQLite: times and JSON as the stored text, converted below in one pass
        # rather than by SQLAlchemy's per-value result processors.
        return type_coerce(column, String) if on_sqlite else column

    deployment_columns = (
        e.id,
        e.host,
        e.port,
        e.sni,
        e.starttls,
        d.chain_position,
        raw(d.first_seen_utc),
        raw(d.last_seen_utc),
        d.certificate_sha256,
    )
    certificate_columns = (
        c.subject,
        c.subject_cn,
        c.issuer,
        c.issuer_cn,
        c.serial_hex,
        raw(c.not_before_utc),
        raw(c.not_after_utc),
        c.key_type,
        c.key_bits,
        raw(c.san_dns),
    )
    issuer_clause = (
        func.lower(c.issuer).like(f"%{glob_to_like(issuer.lower())}%", escape="\\")
        if issuer
        else None
    )
    # PostgreSQL misjudges how few current deployments match (replaced ones share the
    # expiry range) and would scan every certificate for a join: there, fetch the
    # deployments through their index, then their certificates by key.
    split = not on_sqlite
    # SQLite: each endpoint's labels as a JSON array from its primary-key index, in
    # the same statement (faster than a second query for thousands of endpoints).
    tag_arrays = (
        select(func.json_group_array(_TAGS.c.tag))
        .where(_TAGS.c.endpoint_id == e.id)
        .scalar_subquery()
    )
    columns = (
        deployment_columns if split else deployment_columns + certificate_columns + (tag_arrays,)
    )
    statement: Select[Any] = (
        select(*columns)
        .select_from(_DEPLOYMENTS.join(_ENDPOINTS, e.id == d.endpoint_id))
        .where(d.is_current.is_(True))
    )
    if not split:
        statement = statement.join(_CERTS, c.sha256_hex == d.certificate_sha256)
        if issuer_clause is not None:
            statement = statement.where(issuer_clause)
    if not include_chain:
        statement = statement.where(d.chain_position == 0)
    if expiring_within_days is not None:
        if now is None:
            raise ValueError("now must be given with expiring_within_days")
        # The deployment's copy of the expiry (see models.Deployment).
        statement = statement.where(d.not_after_utc <= now + timedelta(days=expiring_within_days))
    statement = _filter_endpoints(statement, host_glob=host_glob, tag=tag)
    # Expiry order is the index's order: it keeps the plan on that index.
    statement = statement.order_by(d.not_after_utc)
    found: Sequence[Sequence[Any]] = connection.execute(statement).all()
    if split and found:
        certificates: dict[str, tuple[Any, ...]] = {}
        by_key = select(c.sha256_hex, *certificate_columns).where(
            c.sha256_hex == func.any(bindparam("b_sha256s", type_=ARRAY(String)))
        )
        if issuer_clause is not None:
            by_key = by_key.where(issuer_clause)
        for row in connection.execute(by_key, {"b_sha256s": sorted({r[8] for r in found})}).all():
            certificates[row[0]] = tuple(row[1:])
        found = [tuple(r) + certificates[r[8]] for r in found if r[8] in certificates]
    if on_sqlite:
        # One JSON document for every row's names and labels: one decoder call, not
        # thousands.
        san_lists: list[Any] = json.loads("[" + ",".join(r[18] for r in found) + "]")
        tag_lists: list[Any] = [
            tuple(sorted(labels))
            for labels in json.loads("[" + ",".join(r[19] for r in found) + "]")
        ]
        when: Any = _utc_from_sqlite_text
    else:
        san_lists = [r[18] for r in found]
        tags = tags_for(connection, {r[0] for r in found})
        tag_lists = [tags.get(r[0], ()) for r in found]
        when = _same
    rows = [
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
                *_,
            ),
            san_dns,
            labels,
        ) in zip(found, san_lists, tag_lists, strict=True)
    ]
    rows.sort(key=_inventory_order)
    return tuple(rows if limit is None else rows[:limit])


def _inventory_order(row: InventoryRow) -> tuple[datetime, str, int, int]:
    return (row.not_after_utc, row.target.host, row.target.port, row.chain_position)


def _utc_from_sqlite_text(value: str) -> datetime:
    """Parses SQLite's stored UTC text (see ``models.sqlite_utc_text``) to an aware time."""
    return datetime.fromisoformat(value + "+00:00")


def _same(value: Any) -> Any:
    return value


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
    statement = (
        select(
            e.id,
            e.host,
            e.port,
            e.sni,
            e.starttls,
            d.chain_position,
            d.first_seen_utc,
            d.last_seen_utc,
            d.is_current,
        )
        .select_from(_DEPLOYMENTS.join(_ENDPOINTS, e.id == d.endpoint_id))
        .where(d.certificate_sha256 == normalise_fingerprint(sha256_hex))
        .order_by(d.last_seen_utc.desc(), e.host, e.port)
    )
    if current_only:
        statement = statement.where(d.is_current.is_(True))
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
    statement = _filter_endpoints(statement, host_glob=host_glob, tag=tag)
    rows = connection.execute(statement.order_by(e.host, e.port, e.sni, e.starttls)).all()
    tags = tags_for(connection, (r.id for r in rows))
    return tuple(_endpoint_record(r, tags.get(r.id, ())) for r in rows)


def _observation_select() -> Select[Any]:
    o, e, c = _OBSERVATIONS.c, _ENDPOINTS.c, _CERTS.c
    return (
        select(
            _OBSERVATIONS,
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
    )


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
) -> tuple[ObservationRecord, ...]:
    """An endpoint's observations, newest first.

    Args:
        connection: Any connection.
        endpoint_id: The endpoint.
        limit: At most this many (``None`` for all).
        since_utc: Only observations at or after this time.

    Returns:
        The observations, newest first.
    """
    o = _OBSERVATIONS.c
    statement = _observation_select().where(o.endpoint_id == endpoint_id)
    if since_utc is not None:
        statement = statement.where(o.observed_at_utc >= since_utc)
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
    statement = _filter_endpoints(
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


def get_certificate(connection: Connection, sha256_hex: str) -> CertificateFacts | None:
    """A stored certificate's facts, ``None`` when unknown."""
    data = connection.execute(
        select(_CERTS.c.facts).where(_CERTS.c.sha256_hex == normalise_fingerprint(sha256_hex))
    ).scalar_one_or_none()
    return facts_from_json(data) if data is not None else None


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
