"""Alert rows and the delivery outbox: idempotent opening and queuing, safe claiming.

The guarantees rest on the database, not on the process:

* ``open_alert_if_absent`` inserts under a partial unique index (one active alert per
  dedup key), so repeating it after a crash never opens a second alert;
* ``enqueue_delivery`` inserts under ``UNIQUE (alert_id, event, route)``, so an event
  is queued at most once per route;
* ``claim_due_deliveries`` moves due rows to ``sending`` with a lease and the claiming
  worker's name (``claimed_by``) in one UPDATE (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL; SQLite's write lock on SQLite), so two senders never claim the same row;
  a sender that dies leaves a lease that lapses, after which the row is due again;
* ``mark_delivered`` and ``mark_failed`` change a row only while its claim is still the
  caller's, and ``release_claims`` releases only the caller's own claims or those of a
  process on this host that no longer runs: a second worker never takes a live
  worker's claims.

A notification sent but not yet marked delivered when its sender died is claimed
again once its lease lapses: delivery is at least once. Every delivery carries an
idempotency key, the same on every attempt, so receivers can drop repeats.

All functions take a Connection inside a transaction the caller owns, so an alert
and its deliveries (or a report and its alerts) commit together.
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, text, update

from certvigil.analysis.model import Severity
from certvigil.store.ingest import dialect_insert
from certvigil.store.models import ALERTS, DELIVERIES, ENDPOINTS
from certvigil.store.queries import target_from_columns
from certvigil.store.records import AlertRecord, AlertState, DeliveryRecord, DeliveryStatus

_ALERTS = ALERTS
_DELIVERIES = DELIVERIES
_ENDPOINTS = ENDPOINTS

DEFAULT_LEASE_S = 300.0
"""How long a claimed delivery stays reserved for its sender."""

_ACTIVE = text("state != 'resolved'")


@dataclass(frozen=True, slots=True)
class WorkerId:
    """Who holds a claim or a lock: host, process id and a nonce drawn at start.

    ``host`` is the host name and, where there is one, the process-id namespace
    (:func:`host_identity`).

    The nonce tells apart two processes that got the same id on one host (a restart
    after a reboot), so a claim is never mistaken for the current process's own.
    """

    host: str
    pid: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"

    @classmethod
    def parse(cls, text: str | None) -> WorkerId | None:
        """The id written by ``str()``, ``None`` for anything else (rows of older versions)."""
        if not text:
            return None
        host, sep, rest = text.rpartition(":")
        host, sep2, pid = host.rpartition(":")
        if not (sep and sep2 and pid.isdigit()):
            return None
        return cls(host=host, pid=int(pid), nonce=rest)

    def is_gone(self) -> bool:
        """Whether this worker surely no longer runs: same host, and no such process.

        A worker on another host, or a process id now used by another process, is
        not known to be gone: its claims wait for their lease.
        """
        if self.host != host_identity() or self.pid <= 0:
            return False
        if self.pid == os.getpid():
            # This process's id: gone unless one of this process's workers holds it
            # (then it is an earlier process that had the same id, before a restart).
            return self not in _WORKERS
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


@cache
def host_identity() -> str:
    """The host name, with the process-id namespace where there is one (``vm/4026531836``).

    Two containers can share a host name (host networking) while each numbers its own
    processes: a process id means something only within one namespace.
    """
    name = socket.gethostname()
    try:
        return f"{name}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return name


_WORKERS: set[WorkerId] = set()
"""Every worker id this process drew."""


@cache
def this_worker() -> WorkerId:
    """This process's worker id (the nonce is drawn once per process)."""
    return new_worker_id()


def new_worker_id() -> WorkerId:
    """A further worker id for this process (tests run several workers in one process)."""
    worker = WorkerId(host=host_identity(), pid=os.getpid(), nonce=secrets.token_hex(4))
    _WORKERS.add(worker)
    return worker


def _alert_select() -> Any:
    e = _ENDPOINTS.c
    return select(_ALERTS, e.host, e.port, e.sni, e.starttls).select_from(
        _ALERTS.outerjoin(_ENDPOINTS, e.id == _ALERTS.c.endpoint_id)
    )


def _alert_record(row: Any) -> AlertRecord:
    target = (
        target_from_columns(row.host, row.port, row.sni, row.starttls)
        if row.host is not None
        else None
    )
    return AlertRecord(
        id=row.id,
        dedup_key=row.dedup_key,
        kind=row.kind,
        severity=Severity(row.severity),
        state=AlertState(row.state),
        endpoint_id=row.endpoint_id,
        target=target,
        certificate_sha256=row.certificate_sha256,
        observation_id=row.observation_id,
        summary=row.summary,
        details=dict(row.details or {}),
        opened_at_utc=row.opened_at_utc,
        acknowledged_at_utc=row.acknowledged_at_utc,
        acknowledged_by=row.acknowledged_by,
        resolved_at_utc=row.resolved_at_utc,
    )


def get_alert(connection: Connection, alert_id: int) -> AlertRecord | None:
    """One alert by id, ``None`` when there is none."""
    row = connection.execute(_alert_select().where(_ALERTS.c.id == alert_id)).first()
    return _alert_record(row) if row is not None else None


def get_alerts(connection: Connection, alert_ids: Iterable[int]) -> dict[int, AlertRecord]:
    """Alerts by id (ids with no alert are absent), read 500 at a time."""
    wanted = sorted(set(alert_ids))
    found: dict[int, AlertRecord] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(
            _alert_select().where(_ALERTS.c.id.in_(wanted[start : start + 500]))
        ).all()
        for row in rows:
            found[row.id] = _alert_record(row)
    return found


def active_alert(connection: Connection, dedup_key: str) -> AlertRecord | None:
    """The open or acknowledged alert with this dedup key, ``None`` when there is none."""
    row = connection.execute(
        _alert_select().where(
            and_(
                _ALERTS.c.dedup_key == dedup_key,
                _ALERTS.c.state != AlertState.RESOLVED.value,
            )
        )
    ).first()
    return _alert_record(row) if row is not None else None


def list_alerts(
    connection: Connection,
    *,
    states: Iterable[AlertState] | None = None,
    endpoint_id: int | None = None,
    certificate_sha256: str | None = None,
    limit: int | None = None,
) -> tuple[AlertRecord, ...]:
    """Alerts, newest first.

    Args:
        connection: Any connection.
        states: Only alerts in these states (all when ``None``).
        endpoint_id: Only alerts about this endpoint.
        certificate_sha256: Only alerts about this certificate.
        limit: At most this many.

    Returns:
        The alerts.
    """
    a = _ALERTS.c
    statement = _alert_select()
    if states is not None:
        statement = statement.where(a.state.in_([s.value for s in states]))
    if endpoint_id is not None:
        statement = statement.where(a.endpoint_id == endpoint_id)
    if certificate_sha256 is not None:
        statement = statement.where(a.certificate_sha256 == certificate_sha256)
    statement = statement.order_by(a.opened_at_utc.desc(), a.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return tuple(_alert_record(r) for r in connection.execute(statement))


def open_alert_if_absent(
    connection: Connection,
    *,
    dedup_key: str,
    kind: str,
    severity: Severity,
    summary: str,
    now: datetime,
    endpoint_id: int | None = None,
    certificate_sha256: str | None = None,
    observation_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    routes: Iterable[str] = (),
) -> tuple[AlertRecord, bool]:
    """Opens an alert unless one with this dedup key is already active.

    When it opens one, it also queues an ``"opened"`` delivery for each route, in the
    same transaction.

    Args:
        connection: A connection inside a write transaction.
        dedup_key: What identifies the condition (``"expiry:30:<sha256>"``).
        kind: The rule that raises it.
        severity: How much it matters.
        summary: One human sentence.
        now: The opening time.
        endpoint_id: The endpoint concerned, if any.
        certificate_sha256: The certificate concerned, if any (must be stored).
        observation_id: The observation that raised it, if any.
        details: JSON-ready details.
        routes: Routes to queue the ``"opened"`` event on when it is created.

    Returns:
        The active alert and whether this call created it.
    """
    insert = (
        dialect_insert(connection, _ALERTS)
        .values(
            dedup_key=dedup_key,
            kind=kind,
            severity=severity.value,
            state=AlertState.OPEN.value,
            endpoint_id=endpoint_id,
            certificate_sha256=certificate_sha256,
            observation_id=observation_id,
            summary=summary,
            details=dict(details or {}),
            opened_at_utc=now,
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"], index_where=_ACTIVE)
        .returning(_ALERTS.c.id)
    )
    new_id = connection.execute(insert).scalar_one_or_none()
    if new_id is None:
        existing = active_alert(connection, dedup_key)
        if existing is None:
            raise RuntimeError(f"alert {dedup_key!r} conflicted but is not active")
        return existing, False
    for route in routes:
        enqueue_delivery(connection, alert_id=new_id, event="opened", route=route, now=now)
    created = get_alert(connection, new_id)
    if created is None:
        raise RuntimeError(f"alert {new_id} vanished inside its own transaction")
    return created, True


def acknowledge_alert(connection: Connection, alert_id: int, *, by: str, now: datetime) -> bool:
    """Marks an open alert acknowledged.

    Returns:
        Whether it changed (``False`` when it was not open).
    """
    result = connection.execute(
        update(_ALERTS)
        .where(and_(_ALERTS.c.id == alert_id, _ALERTS.c.state == AlertState.OPEN.value))
        .values(state=AlertState.ACKNOWLEDGED.value, acknowledged_at_utc=now, acknowledged_by=by)
    )
    return result.rowcount == 1


def resolve_alert(
    connection: Connection, alert_id: int, *, now: datetime, routes: Iterable[str] = ()
) -> bool:
    """Resolves an active alert and queues a ``"resolved"`` delivery per route.

    Returns:
        Whether it changed (``False`` when it was already resolved or unknown).
    """
    result = connection.execute(
        update(_ALERTS)
        .where(and_(_ALERTS.c.id == alert_id, _ALERTS.c.state != AlertState.RESOLVED.value))
        .values(state=AlertState.RESOLVED.value, resolved_at_utc=now)
    )
    if result.rowcount != 1:
        return False
    for route in routes:
        enqueue_delivery(connection, alert_id=alert_id, event="resolved", route=route, now=now)
    return True


def enqueue_delivery(
    connection: Connection,
    *,
    alert_id: int,
    event: str,
    route: str,
    now: datetime,
    not_before_utc: datetime | None = None,
) -> bool:
    """Queues one notification unless the same (alert, event, route) is already queued.

    Args:
        connection: A connection inside a write transaction.
        alert_id: The alert.
        event: What happened to it (``"opened"``, ``"resolved"``, ``"reminder:3"``...).
        route: The route or channel name.
        now: The queuing time.
        not_before_utc: First due time (``now`` when ``None``).

    Returns:
        Whether a new row was queued.
    """
    statement = (
        dialect_insert(connection, _DELIVERIES)
        .values(
            alert_id=alert_id,
            event=event,
            route=route,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            created_at_utc=now,
            next_attempt_at_utc=not_before_utc or now,
            idempotency_key=f"certvigil-{uuid.uuid4()}",
        )
        .on_conflict_do_nothing(index_elements=["alert_id", "event", "route"])
        .returning(_DELIVERIES.c.id)
    )
    return connection.execute(statement).scalar_one_or_none() is not None


def _delivery_record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        alert_id=row.alert_id,
        event=row.event,
        route=row.route,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        created_at_utc=row.created_at_utc,
        next_attempt_at_utc=row.next_attempt_at_utc,
        lease_until_utc=row.lease_until_utc,
        last_error=row.last_error,
        sent_at_utc=row.sent_at_utc,
        claimed_by=row.claimed_by,
        idempotency_key=row.idempotency_key or f"certvigil-delivery-{row.id}",
    )


def claim_due_deliveries(
    connection: Connection,
    *,
    now: datetime,
    limit: int = 50,
    lease_s: float = DEFAULT_LEASE_S,
    owner: WorkerId | None = None,
) -> tuple[DeliveryRecord, ...]:
    """Claims up to ``limit`` due deliveries for this sender, oldest due first.

    Due means ``pending`` with ``next_attempt_at_utc <= now``, or ``sending`` whose
    lease has lapsed (its sender died). Each claimed row becomes ``sending`` with a
    lease of ``lease_s`` seconds, ``owner`` as ``claimed_by`` and one more attempt.
    Commit promptly: on SQLite the claim holds the write lock until the transaction
    ends.

    Args:
        connection: A connection inside a write transaction.
        now: The current time.
        limit: At most this many.
        lease_s: How long the claim lasts.
        owner: The claiming worker (this process's id when ``None``).

    Returns:
        The claimed deliveries.
    """
    d = _DELIVERIES.c
    due = (
        select(d.id)
        .where(
            or_(
                and_(
                    d.status == DeliveryStatus.PENDING.value,
                    d.next_attempt_at_utc <= now,
                ),
                and_(
                    d.status == DeliveryStatus.SENDING.value,
                    d.lease_until_utc <= now,
                ),
            )
        )
        .order_by(d.next_attempt_at_utc, d.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(_DELIVERIES)
        .where(d.id.in_(due))
        .values(
            status=DeliveryStatus.SENDING.value,
            lease_until_utc=now + timedelta(seconds=lease_s),
            attempts=d.attempts + 1,
            claimed_by=str(owner or this_worker()),
        )
        .returning(*_DELIVERIES.c)
    )
    records = [_delivery_record(r) for r in connection.execute(statement)]
    records.sort(key=lambda r: (r.next_attempt_at_utc, r.id))
    return tuple(records)


def _claimed(delivery_id: int, owner: WorkerId | None) -> Any:
    d = _DELIVERIES.c
    return and_(
        d.id == delivery_id,
        d.status == DeliveryStatus.SENDING.value,
        d.claimed_by == str(owner or this_worker()),
    )


def mark_delivered(
    connection: Connection, delivery_id: int, *, now: datetime, owner: WorkerId | None = None
) -> bool:
    """Records a delivery claimed by ``owner`` (this process when ``None``) as sent.

    Returns:
        Whether it changed (``False`` when it was not ``sending`` under that claim).
    """
    result = connection.execute(
        update(_DELIVERIES)
        .where(_claimed(delivery_id, owner))
        .values(
            status=DeliveryStatus.SENT.value,
            sent_at_utc=now,
            lease_until_utc=None,
            claimed_by=None,
        )
    )
    return result.rowcount == 1


def mark_failed(
    connection: Connection,
    delivery_id: int,
    *,
    next_attempt_at: datetime,
    error: str,
    give_up: bool = False,
    owner: WorkerId | None = None,
) -> bool:
    """Records a failed attempt: due again at ``next_attempt_at``, or given up on.

    Args:
        connection: A connection inside a write transaction.
        delivery_id: The claimed delivery.
        next_attempt_at: When to try again.
        error: What went wrong, kept in ``last_error``.
        give_up: Mark it ``failed`` for good instead.
        owner: The worker holding the claim (this process when ``None``).

    Returns:
        Whether it changed (``False`` when it was not ``sending`` under that claim).
    """
    status = DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING
    result = connection.execute(
        update(_DELIVERIES)
        .where(_claimed(delivery_id, owner))
        .values(
            status=status.value,
            next_attempt_at_utc=next_attempt_at,
            last_error=error,
            lease_until_utc=None,
            claimed_by=None,
        )
    )
    return result.rowcount == 1


def release_claims(connection: Connection, *, now: datetime, owner: WorkerId | None = None) -> int:
    """Makes claims that no live worker holds due again at once.

    Released are the ``sending`` rows claimed by ``owner`` (this process when
    ``None``) and those claimed by a process on this host that no longer runs (a
    daemon killed mid-delivery). A claim of a worker that may still be running (on
    another host, or a live process here) is left to its lease, so it is never sent
    twice by two live workers.

    Args:
        connection: A connection inside a write transaction.
        now: When they are due again.
        owner: The worker whose own claims are released too.

    Returns:
        How many deliveries were released.
    """
    d = _DELIVERIES.c
    me = str(owner or this_worker())
    holders = connection.execute(
        select(d.claimed_by).where(d.status == DeliveryStatus.SENDING.value).distinct()
    ).scalars()
    releasable = []
    for holder in holders:
        worker = WorkerId.parse(holder)
        if holder == me or (worker is not None and worker.is_gone()):
            releasable.append(holder)
    if not releasable:
        return 0
    result = connection.execute(
        update(_DELIVERIES)
        .where(and_(d.status == DeliveryStatus.SENDING.value, d.claimed_by.in_(releasable)))
        .values(
            status=DeliveryStatus.PENDING.value,
            lease_until_utc=None,
            next_attempt_at_utc=now,
            claimed_by=None,
        )
    )
    return result.rowcount


def list_deliveries(
    connection: Connection,
    *,
    alert_id: int | None = None,
    statuses: Iterable[DeliveryStatus] | None = None,
    limit: int | None = None,
) -> tuple[DeliveryRecord, ...]:
    """Queued deliveries, oldest first, optionally for one alert or in some states."""
    d = _DELIVERIES.c
    statement = select(_DELIVERIES)
    if alert_id is not None:
        statement = statement.where(d.alert_id == alert_id)
    if statuses is not None:
        statement = statement.where(d.status.in_([s.value for s in statuses]))
    statement = statement.order_by(d.created_at_utc, d.id)
    if limit is not None:
        statement = statement.limit(limit)
    return tuple(_delivery_record(r) for r in connection.execute(statement))


def count_failing(connection: Connection) -> int:
    """Deliveries still failing: pending again after a failed attempt (a retry is due)."""
    d = _DELIVERIES.c
    statement = (
        select(func.count())
        .select_from(_DELIVERIES)
        .where(and_(d.status == DeliveryStatus.PENDING.value, d.last_error.is_not(None)))
    )
    return int(connection.execute(statement).scalar_one())
