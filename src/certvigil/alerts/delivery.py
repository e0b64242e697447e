"""The outbox worker: claim due deliveries, send each through its channel, record the outcome.

The protocol, and what it guarantees across a crash (kill -9 at any instant):

1. **Claim** (one transaction): due rows become ``sending`` with a lease
   (``lease_until_utc``), the claiming worker's id (``claimed_by``: host, process id,
   start nonce) and one more attempt. A crash before this commit leaves the rows
   ``pending``: nothing lost.
2. **Send** through the channel, bounded by the channel's time-out (shorter than the
   lease). A crash here leaves the row ``sending``; when the lease lapses (or at once,
   when a daemon starting on the same host finds the claiming process gone, see
   :func:`release_claims`) it is claimed again and sent: nothing lost.
3. **Mark** (one transaction per delivery, right after its send, and only while the
   claim is still this worker's): ``sent``, or ``pending`` again with an exponential
   back-off and jitter, or ``failed`` for good after a permanent error,
   ``max_attempts`` attempts or ``max_age_s`` seconds. A failed delivery stays in the
   table with its last error: never silently dropped. Every attempt is logged: a sent
   one at info, a failed one at warning with the channel (secrets masked), the alert,
   the error and the next attempt's time.

Delivery is **at least once**. The window that can duplicate is from the moment the
receiver has the request until the commit of step 3: the receiver's own answer time
(a slow receiver holds it open for as long as it takes to answer) plus a few
milliseconds of local database work. A crash there sends the message again after
restart. No protocol can close it without the receiver's help, because "sent" and
"recorded" cannot be one atomic act across two systems; so every message carries an
idempotency key, the same on every attempt of one delivery (the ``Idempotency-Key``
header and the ``idempotency_key`` body field of webhooks, the ``Idempotency-Key``
e-mail header, and a line of the text body), and receivers that keep the keys they have
seen drop the repeats. ``docs/alerts.md`` gives the measured figures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from certvigil.alerts.channels import Channel, OutgoingMessage, channel_for
from certvigil.alerts.engine import action_of_event
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import EventAction
from certvigil.analysis.model import Severity
from certvigil.errors import DeliveryError, StoreError
from certvigil.store import AlertRecord, DeliveryRecord, DeliveryStatus, Store
from certvigil.store import outbox as outbox_rows
from certvigil.store.outbox import WorkerId, this_worker

log = logging.getLogger("certvigil.delivery")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When to try a failed delivery again, and when to give up.

    Attributes:
        first_delay_s: Delay after the first failed attempt.
        multiplier: Each further failure multiplies the delay by this.
        max_delay_s: The delay never exceeds this.
        jitter: Each delay is scaled by a random factor in ``[1 - jitter, 1 + jitter]``,
            so that many deliveries failing together do not retry together.
        max_attempts: Give up after this many attempts.
        max_age_s: Give up on a delivery queued longer ago than this.
        lease_s: How long a claim lasts; must exceed the channel time-out.
    """

    first_delay_s: float = 30.0
    multiplier: float = 2.0
    max_delay_s: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = 12
    max_age_s: float = 2 * 86400.0
    lease_s: float = 300.0

    def __post_init__(self) -> None:
        if self.first_delay_s < 0 or self.max_delay_s < self.first_delay_s:
            raise ValueError("delays must satisfy 0 <= first_delay_s <= max_delay_s")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), not {self.jitter}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.lease_s <= 0:
            raise ValueError(f"lease_s must be positive, not {self.lease_s}")

    def delay_s(self, attempts: int, rng: random.Random) -> float:
        """The back-off after ``attempts`` failed attempts (1 for the first failure)."""
        base = self.first_delay_s * self.multiplier ** max(attempts - 1, 0)
        capped = min(base, self.max_delay_s)
        return capped * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryStats:
    """What one pass of the worker did.

    Attributes:
        claimed: Deliveries claimed.
        sent: Delivered and recorded sent.
        retried: Failed and scheduled again.
        failed: Given up on (recorded ``failed`` with the reason).
    """

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


def channels_for_routes(
    routes: Iterable[AlertRoute], *, timeout_s: float = 30.0
) -> dict[str, Channel]:
    """One channel per route key, as :func:`deliver_due` looks them up."""
    return {route.key: channel_for(route.url, timeout_s=timeout_s) for route in routes}


def outgoing_message(delivery: DeliveryRecord, alert: AlertRecord) -> OutgoingMessage:
    """The message for one delivery of one alert event.

    Raises:
        ValueError: The delivery's event is not one the engine queues.
    """
    action = action_of_event(delivery.event)
    details = alert.details
    if action is EventAction.RESOLVE:
        text = str(details.get("resolution") or "The condition is gone.")
        occurred = alert.resolved_at_utc or alert.opened_at_utc
    else:
        text = str(details.get("message") or alert.summary)
        occurred = alert.opened_at_utc
    endpoint = str(alert.target) if alert.target is not None else details.get("endpoint")
    return OutgoingMessage(
        delivery_id=delivery.id,
        idempotency_key=delivery.idempotency_key or f"certvigil-delivery-{delivery.id}",
        alert_id=alert.id,
        event=action,
        kind=alert.kind,
        severity=alert.severity,
        state=alert.state.value,
        dedup_key=alert.dedup_key,
        endpoint=str(endpoint) if endpoint is not None else None,
        certificate_sha256=alert.certificate_sha256,
        title=alert.summary,
        message=text,
        opened_at_utc=alert.opened_at_utc,
        occurred_at_utc=occurred,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def deliver_due(
    store: Store,
    channels: Mapping[str, Channel],
    now: datetime,
    *,
    retry: RetryPolicy | None = None,
    limit: int = 50,
    concurrency: int = 8,
    rng: random.Random | None = None,
    clock: Callable[[], datetime] | None = None,
    owner: WorkerId | None = None,
) -> DeliveryStats:
    """One pass of the outbox: claim what is due at ``now``, send it, record the outcomes.

    Args:
        store: The inventory holding the outbox.
        channels: Channel per route key (see :func:`channels_for_routes`). A delivery
            whose route is not here is recorded ``failed`` ("route not configured").
        now: The claim time (aware UTC): what is due, and the lease start.
        retry: Back-off and give-up rules.
        limit: Claim at most this many.
        concurrency: Send at most this many at once.
        rng: Random source for the jitter (tests pass a seeded one).
        clock: Time of the outcome records; ``now`` is used when ``None``.
        owner: The worker claiming (this process's id when ``None``).

    Returns:
        What the pass did.

    Raises:
        StoreError: The claim could not be written (the deliveries stay due).
    """
    policy = retry or RetryPolicy()
    random_source = rng or random.Random()
    tell_time = clock or (lambda: now)
    worker = owner or this_worker()
    claimed = await asyncio.to_thread(
        store.claim_due_deliveries, now=now, limit=limit, lease_s=policy.lease_s, owner=worker
    )
    if not claimed:
        return DeliveryStats()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(delivery: DeliveryRecord) -> DeliveryStatus:
        async with gate:
            return await _deliver_one(
                store, channels, delivery, policy, random_source, tell_time, worker
            )

    outcomes = await asyncio.gather(*(one(d) for d in claimed))
    return DeliveryStats(
        claimed=len(claimed),
        sent=sum(o is DeliveryStatus.SENT for o in outcomes),
        retried=sum(o is DeliveryStatus.PENDING for o in outcomes),
        failed=sum(o is DeliveryStatus.FAILED for o in outcomes),
    )


async def _deliver_one(
    store: Store,
    channels: Mapping[str, Channel],
    delivery: DeliveryRecord,
    policy: RetryPolicy,
    rng: random.Random,
    clock: Callable[[], datetime],
    owner: WorkerId,
) -> DeliveryStatus:
    channel = channels.get(delivery.route)
    alert = await asyncio.to_thread(store.get_alert, delivery.alert_id)
    fields = {
        "route": delivery.route.rpartition("#")[0] or delivery.route,
        "channel": channel.label if channel is not None else "(not configured)",
        "alert": delivery.alert_id,
        "delivery": delivery.id,
        "event": delivery.event,
        "attempt": delivery.attempts,
    }
    try:
        if channel is None:
            raise DeliveryError(delivery.route, "route not configured any more", is_permanent=True)
        if alert is None:
            raise DeliveryError(delivery.route, "the alert no longer exists", is_permanent=True)
        try:
            message = outgoing_message(delivery, alert)
        except ValueError as exc:
            raise DeliveryError(delivery.route, str(exc), is_permanent=True) from exc
        await channel.send(message)
    except DeliveryError as exc:
        at = clock()
        age_s = (at - delivery.created_at_utc).total_seconds()
        give_up = (
            exc.is_permanent
            or delivery.attempts >= policy.max_attempts
            or age_s >= policy.max_age_s
        )
        reason = f"attempt {delivery.attempts}: {exc}"
        if give_up and not exc.is_permanent:
            reason += " (giving up)"
        next_at = at + timedelta(seconds=policy.delay_s(delivery.attempts, rng))
        log.warning(
            "delivery failed",
            extra={
                **fields,
                "error": exc.reason,
                "next_attempt_at": "never (given up)" if give_up else next_at.isoformat(),
            },
        )
        await asyncio.to_thread(
            store.mark_failed,
            delivery.id,
            next_attempt_at=next_at,
            error=reason,
            give_up=give_up,
            owner=owner,
        )
        return DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING
    # Mark at once, per delivery: this commit ends the window in which a crash re-sends.
    log.info("delivery sent", extra=fields)
    await asyncio.to_thread(store.mark_delivered, delivery.id, now=clock(), owner=owner)
    return DeliveryStatus.SENT


def release_claims(store: Store, *, now: datetime, owner: WorkerId | None = None) -> int:
    """Makes due again at once the claims that no live worker holds (at start-up).

    Only the claims of ``owner`` (this process when ``None``) and those of processes on
    this host that no longer run (a daemon killed mid-delivery) are released; the claims
    of a worker that may still be sending are left to their lease, so a second daemon
    never sends what the first one has in flight.

    Returns:
        How many deliveries were released.
    """
    with store.write() as connection:
        return outbox_rows.release_claims(connection, now=now, owner=owner)


async def deliver_forever(
    store: Store,
    channels: Mapping[str, Channel],
    stop: asyncio.Event,
    *,
    poll_interval_s: float = 5.0,
    retry: RetryPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
    owner: WorkerId | None = None,
) -> DeliveryStats:
    """Run :func:`deliver_due` until ``stop`` is set; a full batch is followed at once.

    A database that refuses the claim or the outcome (a full disk) does not end the
    loop: the pass is logged and tried again at the next poll; what was due stays due.

    Returns:
        The totals over every pass.
    """
    total = DeliveryStats()
    limit = 50
    while not stop.is_set():
        try:
            stats = await deliver_due(
                store, channels, clock(), retry=retry, limit=limit, clock=clock, owner=owner
            )
        except StoreError as exc:
            log.warning("outbox not readable or writable; retrying", extra={"error": str(exc)})
            stats = DeliveryStats()
        total = DeliveryStats(
            claimed=total.claimed + stats.claimed,
            sent=total.sent + stats.sent,
            retried=total.retried + stats.retried,
            failed=total.failed + stats.failed,
        )
        if stats.claimed >= limit:
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_interval_s)
        except TimeoutError:
            pass
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteTestResult:
    """What one route did with a test notification.

    Attributes:
        route: The route's name.
        key: The route's key (name and URL digest; names need not be unique).
        channel: Its URL, secrets removed.
        error: Why it failed, ``None`` when the receiver took it.
    """

    route: str
    key: str
    channel: str
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the receiver took it."""
        return self.error is None


def sample_notification(now: datetime) -> OutgoingMessage:
    """The message ``certvigil alerts test`` sends (no alert, no outbox row)."""
    return OutgoingMessage(
        delivery_id=0,
        idempotency_key=f"certvigil-test-{uuid.uuid4()}",
        alert_id=0,
        event=EventAction.NOTIFY,
        kind="test",
        severity=Severity.INFO,
        state="resolved",
        dedup_key="test",
        endpoint=None,
        certificate_sha256=None,
        title="Test notification",
        message="This is a test notification from certvigil: this route works.",
        opened_at_utc=now,
        occurred_at_utc=now,
    )


async def send_direct(
    routes: Iterable[AlertRoute],
    message: OutgoingMessage,
    *,
    channels: Mapping[str, Channel] | None = None,
    timeout_s: float = 30.0,
) -> tuple[RouteTestResult, ...]:
    """Sends one message through every route at once, bypassing the outbox.

    For what cannot wait for (or be kept in) the outbox: a test notification, or the
    alert that the store itself is not writable.

    Args:
        routes: The routes (each route key once).
        message: What to send.
        channels: Channel per route key; made from the routes when ``None``.
        timeout_s: Time-out of each channel made here.

    Returns:
        One result per route, in the order given.
    """
    chosen = {route.key: route for route in routes}
    by_key = channels or channels_for_routes(chosen.values(), timeout_s=timeout_s)

    async def one(route: AlertRoute) -> RouteTestResult:
        channel = by_key.get(route.key) or channel_for(route.url, timeout_s=timeout_s)
        try:
            await channel.send(message)
        except DeliveryError as exc:
            return RouteTestResult(
                route=route.name, key=route.key, channel=channel.label, error=exc.reason
            )
        return RouteTestResult(route=route.name, key=route.key, channel=channel.label, error=None)

    return tuple(await asyncio.gather(*(one(route) for route in chosen.values())))
