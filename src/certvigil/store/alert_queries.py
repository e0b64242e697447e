"""The alert engine's queries: an endpoint's history before a report, alert details,
the routes told of an alert, informational alerts recorded resolved.

The engine (``certvigil.alerts.engine``) holds no SQL of its own; it turns these rows
into the pure rules' ``EndpointHistory``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from certvigil.store.models import ALERTS, CERTIFICATES, DELIVERIES, OBSERVATIONS
from certvigil.store.records import AlertState


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlert:
    """An alert row as the rules need it.

    Attributes:
        dedup_key: Its dedup key.
        kind: Its kind string.
        severity: Its severity string.
        is_open: Open or acknowledged.
        certificate_sha256: The certificate it concerns, ``None`` for none.
        details: Its details object.
    """

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
    o = OBSERVATIONS.c
    earlier = and_(o.endpoint_id == endpoint_id, o.observed_at_utc < before_utc)
    newest_first = (o.observed_at_utc.desc(), o.id.desc())
    recent = connection.execute(
        select(o.status).where(earlier).order_by(*newest_first).limit(max_failures)
    ).scalars()
    failures = 0
    for status in recent:
        if status == "ok":
            break
        failures += 1
    previous_sha = connection.execute(
        select(o.leaf_sha256)
        .where(and_(earlier, o.status == "ok", o.leaf_sha256.is_not(None)))
        .order_by(*newest_first)
        .limit(1)
    ).scalar()
    previous: tuple[str, str, datetime] | None = None
    if previous_sha is not None:
        c = CERTIFICATES.c
        row = connection.execute(
            select(c.sha256_hex, c.issuer, c.not_after_utc).where(c.sha256_hex == previous_sha)
        ).first()
        if row is not None:
            previous = (row.sha256_hex, row.issuer, row.not_after_utc)
    previous_grade = connection.execute(
        select(o.grade).where(and_(earlier, o.grade.is_not(None))).order_by(*newest_first).limit(1)
    ).scalar()
    revocation = tuple(
        connection.execute(
            select(o.revocation_status)
            .where(and_(earlier, o.revocation_status.is_not(None)))
            .order_by(*newest_first)
            .limit(max_revocation)
        ).scalars()
    )
    a = ALERTS.c
    condition = a.state != AlertState.RESOLVED.value
    if leaf_sha256 is not None:
        condition = or_(condition, a.certificate_sha256 == leaf_sha256)
    alerts = tuple(
        StoredAlert(
            dedup_key=row.dedup_key,
            kind=row.kind,
            severity=row.severity,
            is_open=row.state != AlertState.RESOLVED.value,
            certificate_sha256=row.certificate_sha256,
            details=row.details or {},
        )
        for row in connection.execute(
            select(a.dedup_key, a.kind, a.severity, a.state, a.certificate_sha256, a.details).where(
                and_(a.endpoint_id == endpoint_id, condition)
            )
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
    alert_id: int = connection.execute(
        ALERTS.insert()
        .values(
            dedup_key=dedup_key,
            kind=kind,
            severity=severity,
            state=AlertState.RESOLVED.value,
            endpoint_id=endpoint_id,
            certificate_sha256=certificate_sha256,
            observation_id=observation_id,
            summary=summary,
            details=details,
            opened_at_utc=now,
            resolved_at_utc=now,
        )
        .returning(ALERTS.c.id)
    ).scalar_one()
    return alert_id


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
