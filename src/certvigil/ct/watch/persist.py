"""The CT watch's rows: log states, findings, sightings, known names, authorised CAs.

Every function takes the caller's connection, so that the watch commits one batch's
findings, sightings, alerts and the log's new position in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select

from certvigil.ct.fetch.tail import TailState
from certvigil.ct.judge import CertFacts, ca_identity
from certvigil.ct.log_list import CtLog
from certvigil.store.ct_models import (
    CT_AUTHORIZED_CAS,
    CT_FINDINGS,
    CT_ISSUERS,
    CT_KNOWN_NAMES,
    CT_LOG_STATES,
    CT_SIGHTINGS,
)
from certvigil.store.ingest import dialect_insert


class Relation:
    """How a sighting relates to its finding (``ct_sightings.relation``)."""

    FIRST = "first"
    SAME_CERTIFICATE = "same_certificate"
    PRECERT_PAIR = "precertificate_pair"
    RENEWAL = "renewal"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLog:
    """A log's row: its tail state and what ``ct status`` shows besides.

    Attributes:
        log_id: The LogID, base64.
        description: The log's description.
        url: Where it is read.
        state: Where its tail stands.
        last_entry_timestamp_ms: The timestamp of the last entry processed.
        errors_total: Passes that ended in a fault, so far.
        last_error_utc: When the last fault happened.
        entries_per_second: The last pass's rate.
        updated_at_utc: When the row was last written.
    """

    log_id: str
    description: str
    url: str
    state: TailState
    last_entry_timestamp_ms: int | None
    errors_total: int
    last_error_utc: datetime | None
    entries_per_second: float | None
    updated_at_utc: datetime


def _stored(row: Any) -> StoredLog:
    frontier = None if row.frontier is None else tuple(bytes.fromhex(h) for h in row.frontier)
    return StoredLog(
        log_id=row.log_id,
        description=row.description,
        url=row.url,
        state=TailState(
            position=row.position,
            tree_size=row.tree_size,
            root_hash=row.root_hash,
            head_timestamp=row.head_timestamp_ms,
            last_success=row.last_success_utc,
            last_error=row.last_error,
            malformed=row.malformed,
            frontier=frontier,
        ),
        last_entry_timestamp_ms=row.last_entry_timestamp_ms,
        errors_total=row.errors_total,
        last_error_utc=row.last_error_utc,
        entries_per_second=row.entries_per_second,
        updated_at_utc=row.updated_at_utc,
    )


def load_log(connection: Connection, log_id_b64: str) -> StoredLog | None:
    """The stored state of one log, ``None`` for a log never read."""
    row = connection.execute(
        select(CT_LOG_STATES).where(CT_LOG_STATES.c.log_id == log_id_b64)
    ).first()
    return None if row is None else _stored(row)


def list_logs(connection: Connection) -> tuple[StoredLog, ...]:
    """Every log's stored state, by description."""
    rows = connection.execute(select(CT_LOG_STATES).order_by(CT_LOG_STATES.c.description))
    return tuple(_stored(row) for row in rows)


def save_log(
    connection: Connection,
    log: CtLog,
    state: TailState,
    *,
    now: datetime,
    last_entry_timestamp_ms: int | None,
    errors_total: int,
    last_error_utc: datetime | None,
    entries_per_second: float | None,
) -> None:
    """Insert or update a log's row."""
    values: dict[str, Any] = {
        "description": log.description,
        "url": log.url,
        "position": state.position,
        "tree_size": state.tree_size,
        "root_hash": state.root_hash,
        "head_timestamp_ms": state.head_timestamp,
        "last_entry_timestamp_ms": last_entry_timestamp_ms,
        "last_success_utc": state.last_success,
        "last_error": state.last_error,
        "last_error_utc": last_error_utc,
        "errors_total": errors_total,
        "malformed": state.malformed,
        "entries_per_second": entries_per_second,
        "frontier": None if state.frontier is None else [h.hex() for h in state.frontier],
        "updated_at_utc": now,
    }
    insert = dialect_insert(connection, CT_LOG_STATES).values(log_id=log.log_id_b64, **values)
    connection.execute(insert.on_conflict_do_update(index_elements=["log_id"], set_=values))


def known_names(connection: Connection) -> set[str]:
    """Every name known not to be new."""
    return set(connection.execute(select(CT_KNOWN_NAMES.c.name)).scalars())


def add_known_names(
    connection: Connection, names: Mapping[str, str], *, source: str, now: datetime
) -> None:
    """Record names (name → watched domain) as known; a name known already is kept."""
    for name, domain in names.items():
        connection.execute(
            dialect_insert(connection, CT_KNOWN_NAMES)
            .values(name=name, domain=domain, source=source, first_seen_utc=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )


def load_issuers(connection: Connection, limit: int) -> dict[bytes, bytes]:
    """Up to ``limit`` kept issuer certificates, by SHA-256 (oldest first)."""
    i = CT_ISSUERS.c
    rows = connection.execute(
        select(i.sha256_hex, i.der).order_by(i.first_seen_utc, i.sha256_hex).limit(limit)
    )
    return {bytes.fromhex(row.sha256_hex): row.der for row in rows}


def save_issuers(connection: Connection, issuers: Mapping[bytes, bytes], now: datetime) -> None:
    """Keep issuer certificates (fetched and checked against their SHA-256); a kept row
    with the same key gets these bytes (it could only differ by being damaged)."""
    for fingerprint, der in issuers.items():
        connection.execute(
            dialect_insert(connection, CT_ISSUERS)
            .values(sha256_hex=fingerprint.hex(), der=der, first_seen_utc=now)
            .on_conflict_do_update(index_elements=["sha256_hex"], set_={"der": der})
        )


def authorized_cas(connection: Connection) -> dict[str, set[str]]:
    """The stored authorised CAs by watched domain, each as ``ca_identity`` gives it."""
    found: dict[str, set[str]] = {}
    for domain, ca in connection.execute(
        select(CT_AUTHORIZED_CAS.c.domain, CT_AUTHORIZED_CAS.c.ca)
    ):
        found.setdefault(domain, set()).add(ca_identity(ca))
    return found


def list_authorized_cas(connection: Connection) -> list[tuple[str, str, str, datetime]]:
    """Every stored authorised CA: (domain, CA, source, added)."""
    c = CT_AUTHORIZED_CAS.c
    rows = connection.execute(
        select(c.domain, c.ca, c.source, c.added_at_utc).order_by(c.domain, c.ca)
    )
    return [(r.domain, r.ca, r.source, r.added_at_utc) for r in rows]


def add_authorized_ca(
    connection: Connection, *, domain: str, ca: str, source: str, now: datetime
) -> bool:
    """Authorise ``ca`` for ``domain``; returns whether it was new."""
    result = connection.execute(
        dialect_insert(connection, CT_AUTHORIZED_CAS)
        .values(domain=domain, ca=ca, source=source, added_at_utc=now)
        .on_conflict_do_nothing(index_elements=["domain", "ca"])
    )
    return bool(result.rowcount)


_F = CT_FINDINGS.c
_SAME_CERTIFICATE = (
    select(_F.id, _F.is_precert)
    .where(or_(_F.issuer_serial_key == bindparam("serial_key"), _F.tbs_key == bindparam("tbs_key")))
    .limit(1)
)
_RENEWAL = select(_F.id).where(_F.renewal_key == bindparam("renewal_key")).order_by(_F.id).limit(1)
_INSERT_FINDING = CT_FINDINGS.insert().returning(_F.id)
_INSERT_SIGHTING = CT_SIGHTINGS.insert()


def existing_finding(connection: Connection, facts: CertFacts) -> tuple[int, str] | None:
    """The finding this certificate is a later sighting of, and how; ``None`` if new."""
    row = connection.execute(
        _SAME_CERTIFICATE, {"serial_key": facts.issuer_serial_key, "tbs_key": facts.tbs_key}
    ).first()
    if row is not None:
        if row.is_precert != facts.is_precert:
            return row.id, Relation.PRECERT_PAIR
        return row.id, Relation.SAME_CERTIFICATE
    renewed = connection.execute(_RENEWAL, {"renewal_key": facts.renewal_key}).scalar()
    return None if renewed is None else (renewed, Relation.RENEWAL)


def insert_finding(
    connection: Connection,
    facts: CertFacts,
    *,
    watched: Iterable[str],
    kinds: Iterable[str],
    details: Mapping[str, Any],
    log: CtLog,
    index: int,
    now: datetime,
) -> int:
    """Record a new finding and its first sighting; returns the finding's id."""
    # Statements built once, parameters passed apart: SQLAlchemy then reuses the
    # compiled form instead of computing a cache key from every value.
    finding_id: int = connection.execute(
        _INSERT_FINDING,
        dict(
            sha256_hex=facts.sha256_hex,
            issuer_serial_key=facts.issuer_serial_key,
            tbs_key=facts.tbs_key,
            renewal_key=facts.renewal_key,
            serial_hex=facts.serial_hex,
            issuer=facts.issuer,
            issuer_spki_sha256=facts.issuer_spki_sha256,
            names=list(facts.names),
            watched=sorted(set(watched)),
            kinds=list(dict.fromkeys(kinds)),
            details=dict(details),
            is_precert=facts.is_precert,
            not_before_utc=facts.not_before_utc,
            not_after_utc=facts.not_after_utc,
            log_id=log.log_id_b64,
            log_description=log.description,
            entry_index=index,
            logged_at_utc=facts.logged_at_utc,
            found_at_utc=now,
        ),
    ).scalar_one()
    insert_sighting(
        connection, finding_id, facts, log=log, index=index, relation=Relation.FIRST, now=now
    )
    return finding_id


def insert_sighting(
    connection: Connection,
    finding_id: int,
    facts: CertFacts,
    *,
    log: CtLog,
    index: int,
    relation: str,
    now: datetime,
) -> None:
    """Record that entry ``index`` of ``log`` is a sighting of a finding."""
    connection.execute(
        _INSERT_SIGHTING,
        dict(
            finding_id=finding_id,
            log_id=log.log_id_b64,
            entry_index=index,
            is_precert=facts.is_precert,
            sha256_hex=facts.sha256_hex,
            relation=relation,
            seen_at_utc=now,
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingRecord:
    """A stored finding, for ``ct findings``.

    Attributes mirror ``ct_findings``; ``sightings`` lists the later sightings as
    (log description or LogID, index, relation).
    """

    id: int
    sha256_hex: str
    serial_hex: str
    issuer: str
    names: tuple[str, ...]
    watched: tuple[str, ...]
    kinds: tuple[str, ...]
    is_precert: bool
    not_before_utc: datetime | None
    not_after_utc: datetime | None
    log_id: str
    log_description: str
    entry_index: int
    logged_at_utc: datetime
    found_at_utc: datetime
    sightings: tuple[tuple[str, int, str], ...]


def list_findings(
    connection: Connection,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> tuple[FindingRecord, ...]:
    """Findings, oldest first (or newest first), optionally only those found at or after
    ``since``; ``limit`` keeps the first ones in that order."""
    f = CT_FINDINGS.c
    order = (f.found_at_utc.desc(), f.id.desc()) if newest_first else (f.found_at_utc, f.id)
    query = select(CT_FINDINGS).order_by(*order)
    if since is not None:
        query = query.where(f.found_at_utc >= since)
    if limit is not None:
        query = query.limit(limit)
    rows = connection.execute(query).all()
    later: dict[int, list[tuple[str, int, str]]] = {}
    if rows:
        s = CT_SIGHTINGS.c
        names = {
            r.log_id: r.description
            for r in connection.execute(select(CT_LOG_STATES.c.log_id, CT_LOG_STATES.c.description))
        }
        for sighting in connection.execute(
            select(s.finding_id, s.log_id, s.entry_index, s.relation)
            .where(s.finding_id.in_([r.id for r in rows]), s.relation != Relation.FIRST)
            .order_by(s.id)
        ):
            later.setdefault(sighting.finding_id, []).append(
                (
                    names.get(sighting.log_id, sighting.log_id),
                    sighting.entry_index,
                    sighting.relation,
                )
            )
    return tuple(
        FindingRecord(
            id=r.id,
            sha256_hex=r.sha256_hex,
            serial_hex=r.serial_hex,
            issuer=r.issuer,
            names=tuple(r.names),
            watched=tuple(r.watched),
            kinds=tuple(r.kinds),
            is_precert=r.is_precert,
            not_before_utc=r.not_before_utc,
            not_after_utc=r.not_after_utc,
            log_id=r.log_id,
            log_description=r.log_description,
            entry_index=r.entry_index,
            logged_at_utc=r.logged_at_utc,
            found_at_utc=r.found_at_utc,
            sightings=tuple(later.get(r.id, ())),
        )
        for r in rows
    )


def sighting_entries(connection: Connection) -> list[tuple[str, int]]:
    """Every (LogID, index) seen, in the order they were recorded (tests, diagnostics)."""
    s = CT_SIGHTINGS.c
    rows = connection.execute(select(s.log_id, s.entry_index).order_by(s.id))
    return [(r.log_id, r.entry_index) for r in rows]
