"""Retention: drop old observations, keeping each endpoint's latest and any an alert needs.

Certificates are never dropped (they are small, and stored observations name them by
digest): ``store/stored_certificates.py`` counts on a certificate stored with its bytes
staying so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, select

from certvigil.store.models import ALERTS, ENDPOINTS, OBSERVATIONS
from certvigil.store.records import AlertState
from certvigil.store.revocation_models import OBSERVATION_DOCUMENTS, REVOCATION_DOCUMENTS

_OBSERVATIONS = OBSERVATIONS
_ENDPOINTS = ENDPOINTS
_ALERTS = ALERTS

DEFAULT_RETENTION_DAYS = 400
"""Observations older than this are pruned unless configured otherwise (over a year,
so a yearly certificate's previous rotation is still in the history)."""


def prune_observations(
    connection: Connection, *, now: datetime, keep_days: float, batch_size: int = 5_000
) -> int:
    """Deletes observations older than ``keep_days`` before ``now``.

    Never deletes an endpoint's latest observation, nor one referenced by an open or
    acknowledged alert. Works in batches, each its own statement, so a large prune
    does not build one enormous statement; the caller's transaction covers them all.

    Args:
        connection: A connection inside a write transaction.
        now: The current time.
        keep_days: How many days of observations to keep; must be positive.
        batch_size: Rows deleted per statement.

    Returns:
        How many observations were deleted.

    Raises:
        ValueError: ``keep_days`` is not positive.
    """
    if keep_days <= 0:
        raise ValueError(f"keep_days must be positive, not {keep_days}")
    cutoff = now - timedelta(days=keep_days)
    o = _OBSERVATIONS.c
    latest = select(_ENDPOINTS.c.last_observation_id).where(
        _ENDPOINTS.c.last_observation_id.is_not(None)
    )
    alerted = select(_ALERTS.c.observation_id).where(
        and_(
            _ALERTS.c.observation_id.is_not(None),
            _ALERTS.c.state != AlertState.RESOLVED.value,
        )
    )
    candidates = (
        select(o.id)
        .where(and_(o.observed_at_utc < cutoff, o.id.not_in(latest), o.id.not_in(alerted)))
        .limit(batch_size)
    )
    deleted = 0
    while True:
        ids = connection.execute(candidates).scalars().all()
        if not ids:
            break
        # The references go with their observations (explicitly: SQLite enforces
        # ON DELETE CASCADE only with its foreign keys on).
        connection.execute(
            delete(OBSERVATION_DOCUMENTS).where(OBSERVATION_DOCUMENTS.c.observation_id.in_(ids))
        )
        connection.execute(delete(_OBSERVATIONS).where(o.id.in_(ids)))
        deleted += len(ids)
    if deleted:
        # A CRL no kept observation refers to any more goes too.
        used = select(OBSERVATION_DOCUMENTS.c.document_sha256)
        connection.execute(
            delete(REVOCATION_DOCUMENTS).where(REVOCATION_DOCUMENTS.c.sha256_hex.not_in(used))
        )
    return deleted
