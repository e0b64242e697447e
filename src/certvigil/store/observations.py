"""Reading stored observations back whole (for ``certvigil rejudge``) and writing a new
judgement of one onto its row.

The observation is kept as compressed JSON (``observations.observation_z``,
``store.packing``) with its CRLs in ``revocation_documents`` and its chain's
certificates in ``certificates``, once each (docs/store.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, select, update

from certvigil.analysis.model import EndpointReport
from certvigil.errors import ObservationFormatError
from certvigil.observed.endpoint import EndpointObservation
from certvigil.store.ingest import (
    MAX_STORED_OBSERVATION_BYTES,
    CheckColumns,
    finding_to_json,
    unpack_observation,
)
from certvigil.store.models import CERTIFICATES, ENDPOINTS, OBSERVATIONS
from certvigil.store.packing import PackingError, unpack
from certvigil.store.revocation_models import OBSERVATION_DOCUMENTS, REVOCATION_DOCUMENTS
from certvigil.targets.target import StartTLS, Target


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObservation:
    """One endpoint's latest observation as stored.

    Attributes:
        observation_id: Its row.
        endpoint_id: The endpoint's row.
        target: The endpoint.
        observation: What the probes saw, read back whole; ``None`` when it could not be
            read (``problem`` says why).
        problem: Why the stored observation could not be read, ``None`` when it was.
        previous_verdict: The verdict stored with it (``ok``, ``warning``, ``critical``).
        previous_trusted: The chain verdict stored with it.
    """

    observation_id: int
    endpoint_id: int
    target: Target
    observation: EndpointObservation | None
    problem: str | None
    previous_verdict: str
    previous_trusted: bool | None


def latest_observations(connection: Connection) -> Iterator[StoredObservation]:
    """Each endpoint's latest observation that was kept whole, in endpoint order.

    Endpoints whose latest observation predates revision 0007 (nothing kept to re-judge)
    are left out.
    """
    e, o = ENDPOINTS.c, OBSERVATIONS.c
    rows = connection.execute(
        select(
            o.id,
            e.id.label("endpoint_id"),
            e.host,
            e.port,
            e.sni,
            e.starttls,
            o.observation_z,
            o.chain_sha256,
            o.verdict,
            o.is_trusted,
        )
        .join(OBSERVATIONS, o.id == e.last_observation_id)
        .where(o.observation_z.is_not(None))
        .order_by(e.id)
    ).all()
    for row in rows:
        target = Target(
            host=row.host,
            port=row.port,
            sni=row.sni or None,
            starttls=StartTLS(row.starttls) if row.starttls else None,
        )
        crls = _crls_of(connection, row.id)
        certificates = _certificates_of(connection, row.chain_sha256 or [])
        try:
            observation: EndpointObservation | None = unpack_observation(
                row.observation_z, crls, certificates
            )
            problem = None
        except ObservationFormatError as exc:
            observation, problem = None, str(exc)
        yield StoredObservation(
            observation_id=row.id,
            endpoint_id=row.endpoint_id,
            target=target,
            observation=observation,
            problem=problem,
            previous_verdict=row.verdict,
            previous_trusted=row.is_trusted,
        )


def _crls_of(connection: Connection, observation_id: int) -> dict[str, bytes]:
    d, link = REVOCATION_DOCUMENTS.c, OBSERVATION_DOCUMENTS.c
    rows = connection.execute(
        select(d.sha256_hex, d.der_z)
        .join(OBSERVATION_DOCUMENTS, link.document_sha256 == d.sha256_hex)
        .where(link.observation_id == observation_id)
    ).all()
    crls: dict[str, bytes] = {}
    for row in rows:
        try:
            crls[row.sha256_hex] = unpack(row.der_z, MAX_STORED_OBSERVATION_BYTES)
        except PackingError:
            # Left out: the observation that refers to it is then reported unreadable,
            # naming the CRL it lacks.
            continue
    return crls


def _certificates_of(connection: Connection, shas: Sequence[str]) -> dict[str, bytes]:
    """The bytes of the stored certificates among ``shas`` (an observation's chain): the
    ones its stored document names by reference."""
    if not shas:
        return {}
    c = CERTIFICATES.c
    rows = connection.execute(
        select(c.sha256_hex, c.der).where(c.sha256_hex.in_(list(shas)), c.der.is_not(None))
    ).all()
    return {row.sha256_hex: row.der for row in rows}


def count_documents(connection: Connection) -> tuple[int, int]:
    """(revocation documents stored, references to them) — what sharing saves."""
    documents = connection.execute(select(REVOCATION_DOCUMENTS.c.sha256_hex)).all()
    links = connection.execute(select(OBSERVATION_DOCUMENTS.c.observation_id)).all()
    return len(documents), len(links)


def record_judgement(
    connection: Connection, observation_id: int, endpoint_id: int, report: EndpointReport
) -> None:
    """Stores ``report`` as the judgement of an existing observation (``rejudge``).

    The observation's facts stay; its verdict, chain verdict, hostname match, findings,
    grade and revocation status become the report's, and the endpoint's latest grade
    and revocation status follow.
    """
    checks = CheckColumns.of(report)
    chain = report.chain
    connection.execute(
        update(OBSERVATIONS)
        .where(OBSERVATIONS.c.id == observation_id)
        .values(
            evaluated_at_utc=report.evaluated_at_utc,
            is_trusted=chain.is_trusted if chain is not None else None,
            chain_error=chain.error if chain is not None else None,
            hostname_matches=report.hostname_matches,
            verdict=report.verdict.value,
            findings=[finding_to_json(f) for f in report.findings],
            grade=checks.grade,
            revocation_status=checks.revocation_status,
        )
    )
    values: dict[str, object] = {}
    if checks.grade is not None:
        values["grade"] = checks.grade
    if checks.revocation_status is not None:
        values["revocation_status"] = checks.revocation_status
    if values:
        connection.execute(
            update(ENDPOINTS)
            .where(
                and_(
                    ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.last_observation_id == observation_id
                )
            )
            .values(**values)
        )


def observed_at_of(connection: Connection, observation_ids: Sequence[int]) -> dict[int, datetime]:
    """When each observation was made."""
    o = OBSERVATIONS.c
    return dict(
        connection.execute(select(o.id, o.observed_at_utc).where(o.id.in_(list(observation_ids))))
        .tuples()
        .all()
    )
