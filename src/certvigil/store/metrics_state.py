"""The inventory's latest state for monitoring: one row per endpoint plus alert and outbox counts.

:func:`inventory_state` reads, in one snapshot, what a Prometheus ``/metrics`` scrape (or
a Zabbix discovery) needs: each endpoint's key, its latest observation's verdict
(trust, name, findings, failure kind) and the expiry of what it serves now, then the
active alerts by severity and state and the outbox by status and route. Six
statements whatever the inventory's size; nothing reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from certvigil.store.models import ALERTS, CERTIFICATES, DELIVERIES, DEPLOYMENTS, ENDPOINTS
from certvigil.store.models import OBSERVATIONS as _OBS
from certvigil.store.outbox import count_failing
from certvigil.store.records import AlertState, DeliveryStatus, ObservationStatus

__all__ = ["EndpointState", "InventoryState", "inventory_state"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointState:
    """One endpoint as its latest observation left it.

    Attributes:
        host: The host name or address.
        port: The TCP port.
        sni: The SNI sent, ``""`` for the default (the host name).
        starttls: The STARTTLS protocol, ``""`` for direct TLS.
        status: The latest observation's status.
        consecutive_failures: Failed observations since the last successful one.
        observed_at_utc: When it was last observed, ``None`` if its observations were
            pruned.
        leaf_not_after_utc: Expiry of the leaf served at the last successful
            observation (kept while the endpoint fails), ``None`` if never served.
        earliest_not_after_utc: Earliest expiry over the current served chain,
            ``None`` if nothing was ever served.
        failure_kind: Why the latest observation failed, ``None`` if it did not.
        is_trusted: The latest chain verdict, ``None`` when nothing was served.
        hostname_matches: The latest name check, ``None`` when nothing was served.
        verdict: The latest observation's worst severity (``ok`` … ``critical``).
        protocol: The protocol negotiated (``TLSv1.3``), ``None`` on failure.
        findings: The latest observation's findings as ``(code, severity)`` pairs.
        grade: The latest grade (``A+`` … ``F``, ``T``, ``M``), ``None`` until graded.
    """

    host: str
    port: int
    sni: str
    starttls: str
    status: ObservationStatus
    consecutive_failures: int
    observed_at_utc: datetime | None
    leaf_not_after_utc: datetime | None
    earliest_not_after_utc: datetime | None
    failure_kind: str | None
    is_trusted: bool | None
    hostname_matches: bool | None
    verdict: str | None
    protocol: str | None
    findings: tuple[tuple[str, str], ...]
    grade: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryState:
    """The whole inventory for monitoring.

    Attributes:
        endpoints: Every endpoint, ordered by host, port, SNI and STARTTLS.
        active_alerts: Alerts not resolved, counted by (severity, state).
        deliveries: Outbox rows counted by status.
        failed_deliveries_by_route: Deliveries given up on, counted by route.
        retrying_deliveries: Deliveries pending again after a failed attempt.
    """

    endpoints: tuple[EndpointState, ...]
    active_alerts: Mapping[tuple[str, str], int]
    deliveries: Mapping[str, int]
    failed_deliveries_by_route: Mapping[str, int]
    retrying_deliveries: int


def _findings(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        return ()
    pairs: list[tuple[str, str]] = []
    for item in raw:
        if isinstance(item, dict):
            code, severity = item.get("code"), item.get("severity")
            if isinstance(code, str) and isinstance(severity, str):
                pairs.append((code, severity))
    return tuple(pairs)


def inventory_state(connection: Connection) -> InventoryState:
    """Read the inventory's latest state (see the module docstring).

    Args:
        connection: A connection, ideally in a read transaction so the parts agree.

    Returns:
        The state; empty collections for an empty database.
    """
    e, o, c, d = ENDPOINTS.c, _OBS.c, CERTIFICATES.c, DEPLOYMENTS.c
    earliest = dict(
        connection.execute(
            select(d.endpoint_id, func.min(d.not_after_utc))
            .where(d.is_current.is_(True))
            .group_by(d.endpoint_id)
        ).all()
    )
    statement = (
        select(
            e.id,
            e.host,
            e.port,
            e.sni,
            e.starttls,
            e.last_status,
            e.consecutive_failures,
            e.grade,
            c.not_after_utc,
            o.observed_at_utc,
            o.failure_kind,
            o.is_trusted,
            o.hostname_matches,
            o.verdict,
            o.protocol,
            o.findings,
        )
        .select_from(ENDPOINTS)
        .outerjoin(_OBS, o.id == e.last_observation_id)
        .outerjoin(CERTIFICATES, c.sha256_hex == e.current_certificate_sha256)
        .order_by(e.host, e.port, e.sni, e.starttls)
    )
    endpoints = tuple(
        EndpointState(
            host=row.host,
            port=row.port,
            sni=row.sni,
            starttls=row.starttls,
            status=ObservationStatus(row.last_status),
            consecutive_failures=row.consecutive_failures,
            observed_at_utc=row.observed_at_utc,
            leaf_not_after_utc=row.not_after_utc,
            earliest_not_after_utc=earliest.get(row.id),
            failure_kind=row.failure_kind,
            is_trusted=row.is_trusted,
            hostname_matches=row.hostname_matches,
            verdict=row.verdict,
            protocol=row.protocol,
            findings=_findings(row.findings),
            grade=row.grade,
        )
        for row in connection.execute(statement).all()
    )
    a = ALERTS.c
    alerts = {
        (severity, state): count
        for severity, state, count in connection.execute(
            select(a.severity, a.state, func.count())
            .where(a.state != AlertState.RESOLVED.value)
            .group_by(a.severity, a.state)
        ).all()
    }
    q = DELIVERIES.c
    deliveries: dict[str, int] = {
        status: count
        for status, count in connection.execute(
            select(q.status, func.count()).group_by(q.status)
        ).all()
    }
    failed: dict[str, int] = {
        route: count
        for route, count in connection.execute(
            select(q.route, func.count())
            .where(q.status == DeliveryStatus.FAILED.value)
            .group_by(q.route)
        ).all()
    }
    return InventoryState(
        endpoints=endpoints,
        active_alerts=alerts,
        deliveries=deliveries,
        failed_deliveries_by_route=failed,
        retrying_deliveries=count_failing(connection),
    )
