"""Reading the store in pages for exports and reports: observations since a time, leaves' facts.

Every function takes a Connection and returns frozen records; none reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from certvigil.analysis.model import CertificateFacts
from certvigil.store.models import CERTIFICATES, OBSERVATIONS
from certvigil.store.queries import (
    _observation_select,
    facts_from_json,
    latest_observations,
    list_endpoints,
    observation_record,
    tags_for,
)
from certvigil.store.records import EndpointRecord, ObservationRecord

_CHUNK = 1000


def observations_page(
    connection: Connection, *, since_utc: datetime, after_id: int = 0, limit: int = 1000
) -> tuple[ObservationRecord, ...]:
    """Observations made at or after ``since_utc`` with an id above ``after_id``, by id.

    Call again with the last id returned until the page comes back empty: each page is
    one short query, so an export of millions of observations holds one page at a time.

    Args:
        connection: Any connection.
        since_utc: The start of the period.
        after_id: The last id of the previous page (0 for the first).
        limit: At most this many.
    """
    o = OBSERVATIONS.c
    statement = (
        _observation_select()
        .where(o.observed_at_utc >= since_utc, o.id > after_id)
        .order_by(o.id)
        .limit(limit)
    )
    return tuple(observation_record(row) for row in connection.execute(statement))


def certificate_facts(
    connection: Connection, sha256s: Iterable[str]
) -> dict[str, CertificateFacts]:
    """The stored facts of each certificate named (unknown fingerprints are absent)."""
    keys = sorted(set(sha256s))
    found: dict[str, CertificateFacts] = {}
    column = CERTIFICATES.c.sha256_hex
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        statement = select(column, CERTIFICATES.c.facts).where(column.in_(chunk))
        for sha256_hex, facts in connection.execute(statement):
            found[sha256_hex] = facts_from_json(facts)
    return found


def endpoint_tags(
    connection: Connection, endpoint_ids: Iterable[int]
) -> dict[int, tuple[str, ...]]:
    """Each endpoint's labels, sorted; endpoints without labels are absent."""
    return tags_for(connection, endpoint_ids)


def current_state(
    connection: Connection, *, host_glob: str | None = None, tag: str | None = None
) -> tuple[tuple[EndpointRecord, ObservationRecord], ...]:
    """Every endpoint with its latest kept observation, by host and port.

    Endpoints whose observations were all pruned are left out.
    """
    endpoints = list_endpoints(connection, host_glob=host_glob, tag=tag)
    latest = latest_observations(connection, [e.id for e in endpoints])
    return tuple((e, latest[e.id]) for e in endpoints if e.id in latest)
