"""Writing scan results: one EndpointReport becomes one observation, in one transaction.

Certificates are upserted by SHA-256 (one row wherever they are deployed), the
endpoint is upserted by (host, port, SNI, STARTTLS), and the deployments of the
served chain are brought up to date. The functions here take a Connection inside a
transaction the caller owns, so several reports (or a report and its alerts) can
commit together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from certvigil.analysis.model import CertificateFacts, EndpointReport, Finding
from certvigil.store.models import CERTIFICATES, DEPLOYMENTS, ENDPOINT_TAGS, ENDPOINTS, OBSERVATIONS
from certvigil.store.records import ObservationId, ObservationStatus
from certvigil.target import Target

_CERTS = CERTIFICATES
_ENDPOINTS = ENDPOINTS
_DEPLOYMENTS = DEPLOYMENTS
_OBSERVATIONS = OBSERVATIONS
_TAGS = ENDPOINT_TAGS


def dialect_insert(connection: Connection, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the connection's database."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def endpoint_key(target: Target) -> dict[str, Any]:
    """The endpoint's unique key columns; absent SNI/STARTTLS are stored as ``""``."""
    return {
        "host": target.host,
        "port": target.port,
        "sni": target.sni or "",
        "starttls": target.starttls.value if target.starttls is not None else "",
    }


def observed_at(report: EndpointReport) -> datetime:
    """When the report's handshake or failure happened (its evaluation time otherwise)."""
    if report.observation is not None:
        return report.observation.observed_at_utc
    if report.failure is not None:
        return report.failure.observed_at_utc
    return report.evaluated_at_utc


def certificate_row(
    facts: CertificateFacts, der: bytes | None, seen_utc: datetime
) -> dict[str, Any]:
    """The ``certificates`` row for one certificate's facts."""
    return {
        "sha256_hex": facts.sha256_hex,
        "subject": facts.subject,
        "subject_cn": facts.subject_cn,
        "issuer": facts.issuer,
        "issuer_cn": facts.issuer_cn,
        "serial_hex": facts.serial_hex,
        "not_before_utc": facts.not_before_utc,
        "not_after_utc": facts.not_after_utc,
        "key_type": facts.key_type.value,
        "key_bits": facts.key_bits,
        "signature_algorithm": facts.signature_algorithm,
        "is_ca": facts.is_ca,
        "is_self_signed": facts.is_self_signed,
        "san_dns": list(facts.san_dns),
        "facts": facts_to_json(facts),
        "der": der,
        "first_seen_utc": seen_utc,
    }


def facts_to_json(facts: CertificateFacts) -> dict[str, Any]:
    """CertificateFacts as JSON-ready values (datetimes as ISO 8601, tuples as lists)."""
    out: dict[str, Any] = {}
    for key, value in asdict(facts).items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """A finding as a JSON object."""
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "cert_index": finding.cert_index,
    }


def record_report(
    connection: Connection, report: EndpointReport, *, tags: Iterable[str] | None = None
) -> ObservationId:
    """Writes one report as one observation; the caller commits.

    Args:
        connection: A connection inside a write transaction.
        report: The scan result.
        tags: The endpoint's labels, replacing any it had; ``None`` leaves them as
            they are.

    Returns:
        The new observation's id.
    """
    seen = observed_at(report)
    is_ok = report.observation is not None
    status = ObservationStatus.OK if is_ok else ObservationStatus.FAILED
    leaf = report.leaf
    chain = _unique_chain(report)
    if chain:
        ders = report.observation.chain_der if report.observation is not None else ()
        rows = [
            certificate_row(facts, ders[i] if i < len(ders) else None, seen) for i, facts in chain
        ]
        connection.execute(
            dialect_insert(connection, _CERTS).on_conflict_do_nothing(
                index_elements=["sha256_hex"]
            ),
            rows,
        )
    endpoint_id = _upsert_endpoint(connection, report.target, seen, status, leaf)
    observation = report.observation
    failure = report.failure
    observation_id: int = connection.execute(
        _OBSERVATIONS.insert().returning(_OBSERVATIONS.c.id),
        {
            "endpoint_id": endpoint_id,
            "observed_at_utc": seen,
            "evaluated_at_utc": report.evaluated_at_utc,
            "status": status.value,
            "failure_kind": failure.kind.value if failure is not None else None,
            "failure_detail": failure.detail if failure is not None else None,
            "tls_alert": failure.tls_alert if failure is not None else None,
            "peer_address": (
                observation.peer_address
                if observation is not None
                else failure.peer_address
                if failure is not None
                else None
            ),
            "protocol": observation.protocol if observation is not None else None,
            "cipher": observation.cipher if observation is not None else None,
            "alpn": observation.alpn if observation is not None else None,
            "leaf_sha256": leaf.sha256_hex if leaf is not None else None,
            "chain_sha256": [c.sha256_hex for c in report.certificates],
            "is_trusted": report.chain.is_trusted if report.chain is not None else None,
            "chain_error": report.chain.error if report.chain is not None else None,
            "hostname_matches": report.hostname_matches,
            "verdict": report.verdict.value,
            "findings": [finding_to_json(f) for f in report.findings],
            "connect_s": observation.connect_s if observation is not None else None,
            "handshake_s": observation.handshake_s if observation is not None else None,
        },
    ).scalar_one()
    connection.execute(
        update(_ENDPOINTS)
        .where(_ENDPOINTS.c.id == endpoint_id)
        .values(last_observation_id=observation_id)
    )
    if is_ok and chain:
        _update_deployments(connection, endpoint_id, chain, seen)
    if tags is not None:
        set_tags(connection, endpoint_id, tags)
    return observation_id


def _unique_chain(report: EndpointReport) -> list[tuple[int, CertificateFacts]]:
    seen: set[str] = set()
    chain: list[tuple[int, CertificateFacts]] = []
    for index, facts in enumerate(report.certificates):
        if facts.sha256_hex not in seen:
            seen.add(facts.sha256_hex)
            chain.append((index, facts))
    return chain


def _upsert_endpoint(
    connection: Connection,
    target: Target,
    seen: datetime,
    status: ObservationStatus,
    leaf: CertificateFacts | None,
) -> int:
    key = endpoint_key(target)
    is_ok = status is ObservationStatus.OK
    insert = dialect_insert(connection, _ENDPOINTS).values(
        **key,
        first_seen_utc=seen,
        last_seen_utc=seen,
        last_ok_utc=seen if is_ok else None,
        last_status=status.value,
        consecutive_failures=0 if is_ok else 1,
        current_certificate_sha256=leaf.sha256_hex if is_ok and leaf is not None else None,
    )
    changes: dict[str, Any] = {
        "last_seen_utc": insert.excluded.last_seen_utc,
        "last_status": insert.excluded.last_status,
    }
    if is_ok:
        changes["last_ok_utc"] = insert.excluded.last_ok_utc
        changes["consecutive_failures"] = 0
        if leaf is not None:
            changes["current_certificate_sha256"] = insert.excluded.current_certificate_sha256
    else:
        changes["consecutive_failures"] = _ENDPOINTS.c.consecutive_failures + 1
    statement = insert.on_conflict_do_update(
        index_elements=["host", "port", "sni", "starttls"], set_=changes
    ).returning(_ENDPOINTS.c.id)
    endpoint_id: int = connection.execute(statement).scalar_one()
    return endpoint_id


def _update_deployments(
    connection: Connection,
    endpoint_id: int,
    chain: list[tuple[int, CertificateFacts]],
    seen: datetime,
) -> None:
    insert = dialect_insert(connection, _DEPLOYMENTS)
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["endpoint_id", "certificate_sha256"],
            set_={
                "last_seen_utc": insert.excluded.last_seen_utc,
                "chain_position": insert.excluded.chain_position,
                "is_current": True,
            },
        ),
        [
            {
                "endpoint_id": endpoint_id,
                "certificate_sha256": facts.sha256_hex,
                "chain_position": index,
                "first_seen_utc": seen,
                "last_seen_utc": seen,
                "is_current": True,
            }
            for index, facts in chain
        ],
    )
    served = [facts.sha256_hex for _, facts in chain]
    connection.execute(
        update(_DEPLOYMENTS)
        .where(
            and_(
                _DEPLOYMENTS.c.endpoint_id == endpoint_id,
                _DEPLOYMENTS.c.is_current.is_(True),
                _DEPLOYMENTS.c.certificate_sha256.not_in(served),
            )
        )
        .values(is_current=False)
    )


def set_tags(connection: Connection, endpoint_id: int, tags: Iterable[str]) -> None:
    """Makes an endpoint's labels exactly ``tags``.

    Args:
        connection: A connection inside a write transaction.
        endpoint_id: The endpoint.
        tags: The labels; blanks are dropped and duplicates merged.
    """
    wanted = sorted({t.strip() for t in tags if t.strip()})
    current = set(
        connection.execute(select(_TAGS.c.tag).where(_TAGS.c.endpoint_id == endpoint_id))
        .scalars()
        .all()
    )
    if current == set(wanted):
        return
    stale = current.difference(wanted)
    if stale:
        connection.execute(
            delete(_TAGS).where(and_(_TAGS.c.endpoint_id == endpoint_id, _TAGS.c.tag.in_(stale)))
        )
    new = [t for t in wanted if t not in current]
    if new:
        connection.execute(
            _TAGS.insert(), [{"endpoint_id": endpoint_id, "tag": tag} for tag in new]
        )
